"""Article texts on the store side: which items the articles spider should fetch, and writing back what it found.

An item of a fulltext source is fetched once: while its ``text_status`` is NULL and it was fetched from its feed
recently (``RECENT``), the next crawl picks it up, newest first, at most ``LIMIT`` a crawl; any outcome (ok,
paywalled, blocked, failed, skipped) is final until `recrawl`, which fetches every item of its range that has no
text. On PostgreSQL, where several daemons (or a daemon and `recrawl`) may look at once, the items a crawl takes are
leased to its worker as feeds are (store/leases.py): skipped by the others until the lease ends, the outcome is
saved, or the worker gives them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, Select, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from crawler.items import ArticleText
from store import models as m
from store.queries import utcnow
from store.recrawl import apply_tags

LIMIT = 200  # items a crawl fetches at most: the rest wait for the next one
RECENT = timedelta(days=7)  # a poll does not reach back further: turning fulltext on does not fetch the archive


@dataclass(frozen=True)
class PendingText:
    """One item whose article the spider should fetch."""

    item_id: int
    source_id: str
    key: str
    url: str
    title: str
    summary: str
    published: datetime | None


_COLUMNS = (m.Item.id, m.Item.source_id, m.Item.key, m.Item.url, m.Item.title, m.Item.summary, m.Item.published)


@dataclass(frozen=True)
class Lease:
    worker: str
    seconds: float


def texts_to_fetch(session: Session, source_ids: Sequence[str], now: datetime | None = None,
                   limit: int = LIMIT, lease: Lease | None = None) -> list[PendingText]:
    """Items of ``source_ids`` never tried (``text_status`` NULL) with a link, fetched from their feeds in the
    last ``RECENT``; newest first. With ``lease`` (PostgreSQL; call in a transaction), those no other worker holds,
    leased to this one."""
    since = (now or utcnow()) - RECENT
    query = select(*_COLUMNS).where(m.Item.source_id.in_(source_ids), m.Item.text_status.is_(None),
                                    m.Item.url.is_not(None), m.Item.fetched >= since)
    return _pending(session, query, limit, lease)


def texts_missing(session: Session, source_ids: Sequence[str], start: datetime, end: datetime,
                  limit: int | None = None, lease: Lease | None = None) -> list[PendingText]:
    """`recrawl`: items of ``source_ids`` published in [start, end) (fetched in it when undated) with a link and no
    text, whatever was tried before; newest first. ``lease`` as for ``texts_to_fetch``."""
    when = func.coalesce(m.Item.published, m.Item.fetched)
    query = select(*_COLUMNS).where(m.Item.source_id.in_(source_ids), m.Item.text.is_(None),
                                    m.Item.url.is_not(None), when >= start, when < end)
    return _pending(session, query, limit, lease)


def _pending(session: Session, query: Select, limit: int | None, lease: Lease | None) -> list[PendingText]:
    when = func.coalesce(m.Item.published, m.Item.fetched)
    query = query.order_by(when.desc(), m.Item.id.desc())
    if limit is not None:
        query = query.limit(limit)
    if lease is None or session.get_bind().dialect.name != "postgresql":
        return [PendingText(*row) for row in session.execute(query)]
    query = query.where(or_(m.Item.text_lease_until.is_(None), m.Item.text_lease_until < func.now()),
                        ).with_for_update(skip_locked=True)
    pending = [PendingText(*row) for row in session.execute(query)]
    if pending:
        session.execute(update(m.Item).where(m.Item.id.in_([p.item_id for p in pending]))
                        .values(text_leased_by=lease.worker,
                                text_lease_until=func.now() + timedelta(seconds=lease.seconds)))
    return pending


def save_text(engine: Engine, page: ArticleText) -> bool:
    """Write one page's outcome onto its item in one transaction: the status; with a text, the text, the page's
    date or title where the item had none, and (when re-tagged) its tags, evidence and entities. Returns whether
    the item has tags. An item deleted meanwhile is skipped."""
    article = page.article
    with Session(engine) as session, session.begin():
        item = session.get(m.Item, page.item_id, options=[selectinload(m.Item.tags), selectinload(m.Item.entities)])
        if item is None:
            return False
        item.text_status, item.text_leased_by, item.text_lease_until = article.text_status, None, None
        if article.text_status == "ok":
            item.text, item.updated = article.text, utcnow()
            if item.published is None and article.published is not None:
                item.published = article.published
            if not item.title and article.title:
                item.title = article.title
            if page.tagged:
                apply_tags(item, article)
        return bool(item.tags)
