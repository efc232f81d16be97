"""Several daemons on one PostgreSQL database share the feeds through leases on the feed rows themselves.

A daemon (a *worker*, id host:pid) takes a batch of due feeds with ``SELECT ... FOR UPDATE SKIP LOCKED`` and, in
the same transaction, writes its id and a lease expiry on them; another daemon's select skips the locked rows while
that transaction runs and the leased ones after it commits. The worker renews its leases while its crawl runs
(``heartbeat``); recording a feed's poll clears the feed's lease (store/queries.py); a worker that stops cleanly
releases the rest at once. Items whose articles a worker fetches for full text are leased the same way
(store/texts.py). A worker killed with ``kill -9`` renews nothing: once its leases expire, the feeds are
due for any other worker. Every lease time is the database's own clock (``now()``), never a worker's, so machines
with skewed clocks still agree. SQLite keeps one daemon (store/lock.py) and needs none of this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from crawler.items import FeedState
from crawler.sources import Source
from store import models as m

LIVE = 3  # a worker whose heartbeat is older than this many leases is shown as gone


def _configured(sources: Sequence[Source]) -> tuple[ColumnElement[bool], ...]:
    """The enabled feeds of ``sources``."""
    return m.Feed.url.in_([u for s in sources for u in s.feeds]), m.Feed.disabled.is_(False)


def _unleased() -> ColumnElement[bool]:
    """No live lease holds the feed (none, or one that ran out by the database's clock)."""
    return or_(m.Feed.lease_until.is_(None), m.Feed.lease_until < func.now())


def lease_due(session: Session, sources: Sequence[Source], worker: str, lease: float, batch: int,
              now: datetime) -> list[FeedState]:
    """Take up to ``batch`` of the due feeds that no live lease holds: leased to ``worker`` for ``lease`` seconds.
    Call in a transaction; the lease is visible to other workers when it commits."""
    intervals = {s.id: s.interval for s in sources}
    query = (select(m.Feed)
             .where(*_configured(sources), or_(m.Feed.next_due.is_(None), m.Feed.next_due <= now), _unleased())
             .order_by(m.Feed.next_due.nulls_first(), m.Feed.id).limit(batch)
             .with_for_update(skip_locked=True))
    feeds = list(session.scalars(query))
    if feeds:
        session.execute(update(m.Feed).where(m.Feed.id.in_([f.id for f in feeds]))
                        .values(leased_by=worker, lease_until=func.now() + timedelta(seconds=lease)))
    return [FeedState(f.id, f.source_id, f.url, intervals[f.source_id], f.etag, f.last_modified, f.body_hash,
                      f.fetch_url) for f in feeds]


def next_look(session: Session, sources: Sequence[Source], now: datetime) -> datetime | None:
    """When a feed of ``sources`` is next due for some worker, in the clock of ``now``: the earliest due time of a
    feed that no live lease holds, or the end of the earliest live lease (a killed worker's feeds are due again then;
    the database's clock, moved into the worker's by their difference at this instant)."""
    configured = _configured(sources)
    free = session.scalar(select(func.min(m.Feed.next_due)).where(*configured, _unleased()))
    db_now, lease_end = session.execute(select(func.now(), func.min(m.Feed.lease_until)).where(
        *configured, m.Feed.lease_until >= func.now())).one()
    held = None if lease_end is None else now + (lease_end - db_now)
    return min((t for t in (free, held) if t is not None), default=None)


def heartbeat(engine: Engine, worker: str, lease: float) -> int:
    """Renew the worker's leases and say it is alive; returns how many leases it holds."""
    with Session(engine) as session, session.begin():
        session.execute(insert(m.Worker).values(id=worker, started=func.now(), heartbeat=func.now())
                        .on_conflict_do_update(index_elements=[m.Worker.id], set_={"heartbeat": func.now()}))
        until = func.now() + timedelta(seconds=lease)
        # rows that the store is writing right now are skipped, not waited for (their lease ends with that write,
        # and two transactions locking the same rows in different orders could deadlock)
        feeds = select(m.Feed.id).where(m.Feed.leased_by == worker).with_for_update(skip_locked=True)
        renewed = session.execute(update(m.Feed).where(m.Feed.id.in_(feeds)).values(lease_until=until))
        items = (select(m.Item.id).where(m.Item.text_leased_by == worker, m.Item.text_status.is_(None))
                 .with_for_update(skip_locked=True))
        texts = session.execute(update(m.Item).where(m.Item.id.in_(items)).values(text_lease_until=until))
        return renewed.rowcount + texts.rowcount


def release(engine: Engine, worker: str, stopping: bool = False) -> int:
    """Give back the worker's leases (those its crawl did not record); ``stopping``: also remove the worker."""
    with Session(engine) as session, session.begin():
        released = session.execute(update(m.Feed).where(m.Feed.leased_by == worker)
                                   .values(leased_by=None, lease_until=None)).rowcount
        released += session.execute(update(m.Item).where(m.Item.text_leased_by == worker)
                                    .values(text_leased_by=None, text_lease_until=None)).rowcount
        if stopping:
            session.execute(delete(m.Worker).where(m.Worker.id == worker))
        return released


@dataclass
class WorkerStatus:
    id: str
    started: datetime
    heartbeat: datetime
    live: bool
    feeds_hour: int  # feeds whose last recorded poll is this worker's, within the last hour
    leases: int


def workers(session: Session, lease: float) -> list[WorkerStatus]:
    """The workers of this database: live first, then those whose heartbeat stopped (killed, or a lost host).
    PostgreSQL only (SQLite has one daemon and no worker rows)."""
    now = session.scalar(select(func.now()))
    gone = now - timedelta(seconds=LIVE * lease)
    polled = dict(session.execute(select(m.Feed.polled_by, func.count()).where(m.Feed.last_fetch >= now - timedelta(
        hours=1)).group_by(m.Feed.polled_by)).all())
    leases = dict(session.execute(select(m.Feed.leased_by, func.count()).where(m.Feed.leased_by.is_not(None))
                                  .group_by(m.Feed.leased_by)).all())
    rows = [WorkerStatus(w.id, w.started, w.heartbeat, w.heartbeat >= gone, polled.get(w.id, 0), leases.get(w.id, 0))
            for w in session.scalars(select(m.Worker))]
    return sorted(rows, key=lambda w: (not w.live, w.id))
