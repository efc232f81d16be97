"""The queries the crawler, CLI and digest need. Each function takes a Session and leaves committing to the caller,
except ``save_fetch``, which is one transaction of its own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload

from crawler.due import next_due
from crawler.items import Article, FeedFetch, FeedState
from crawler.sources import Source
from store import models as m
from store.lock import SYNC_KEY
from store.stories import assign_new, forget


def utcnow() -> datetime:
    return datetime.now(UTC)


def sync_config(session: Session, sources: Sequence[Source], topics: Iterable, entities: Iterable) -> None:
    """Mirror the configured sources, feeds, topics and entities into their tables (rows are never deleted:
    stored items keep their references). On PostgreSQL, daemons starting together take turns (the lock ends with
    the caller's transaction)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("select pg_advisory_xact_lock(:k)"), {"k": SYNC_KEY})
    for s in sources:
        session.merge(m.Source(id=s.id, name=s.name, site=s.site, language=s.language))
    session.flush()
    known = {f.url: f for f in session.scalars(select(m.Feed))}
    for s in sources:
        for url in s.feeds:
            if url not in known:
                session.add(m.Feed(url=url, source_id=s.id))
            elif known[url].source_id != s.id:
                known[url].source_id = s.id
    for t in topics:
        session.merge(m.Topic(id=t.id, name=t.name, query=t.query))
    for e in entities:
        session.merge(m.Entity(id=e.id, name=e.name, kind=e.kind, aliases=list(e.aliases)))


def feeds_to_poll(session: Session, sources: Sequence[Source], now: datetime | None = None) -> list[FeedState]:
    """The configured feeds of ``sources`` that are enabled and, when ``now`` is given, due by then."""
    intervals = {s.id: s.interval for s in sources}
    urls = [u for s in sources for u in s.feeds]
    query = select(m.Feed).where(m.Feed.url.in_(urls), m.Feed.disabled.is_(False))
    if now is not None:
        query = query.where((m.Feed.next_due.is_(None)) | (m.Feed.next_due <= now))
    return [
        FeedState(f.id, f.source_id, f.url, intervals[f.source_id], f.etag, f.last_modified, f.body_hash, f.fetch_url)
        for f in session.scalars(query.order_by(m.Feed.next_due.nulls_first(), m.Feed.id))
    ]


@dataclass
class SaveResult:
    new: int = 0
    updated: int = 0
    tagged: int = 0


def save_fetch(engine: Engine, fetch: FeedFetch, worker: str | None = None) -> SaveResult:
    """Store a fetch's articles (idempotently) and the feed's new state, in one transaction.

    A concurrent writer may insert the same article between our read and our write; the unique key then
    rejects ours and the whole fetch is retried once, finding the row this time.
    """
    for attempt in (1, 2):
        try:
            with Session(engine) as session, session.begin():
                return _save(session, fetch, worker)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def save_fetches(engine: Engine, fetches: Sequence[FeedFetch], worker: str | None = None
                 ) -> list[SaveResult | Exception]:
    """Store several fetches in one transaction, each as ``save_fetch`` would, one after the other, then give
    their new items stories together (``assign_new`` takes a batch in publication order); when that transaction
    fails, store each in its own (``save_fetch``), so that one bad fetch fails alone, unless the database itself
    refused (locked, read-only: each would wait and fail the same; all fail with that error). Each fetch's
    articles and feed state are always committed together. ``worker`` (host:pid) is recorded as the feeds' poller;
    their leases (store/leases.py) end with the commit."""
    try:
        with Session(engine) as session, session.begin():
            results = [_save_articles(session, fetch) for fetch in fetches]
            assign_new(session, [a.key for fetch in fetches for a in fetch.articles])  # stories: store/stories.py
            _record_fetches(session, fetches, worker)
            return results
    except OperationalError as e:  # the database refuses writes (locked, read-only, full): so would it each fetch's
        if not e.connection_invalidated:  # ... unless the connection was lost (a fresh one may do)
            return [e] * len(fetches)
    except Exception:  # a bad fetch, maybe: each fetch again, alone
        pass
    return [_attempt(engine, fetch, worker) for fetch in fetches]


def _attempt(engine: Engine, fetch: FeedFetch, worker: str | None) -> SaveResult | Exception:
    try:
        return save_fetch(engine, fetch, worker)
    except Exception as e:  # handed to the caller, which reports it for this fetch only
        return e


def _save(session: Session, fetch: FeedFetch, worker: str | None) -> SaveResult:
    result = _save_articles(session, fetch)
    assign_new(session, [a.key for a in fetch.articles])  # stories: store/stories.py
    _record_fetches(session, [fetch], worker)
    return result


_ROW = (m.Item.id, m.Item.key, m.Item.guid, m.Item.url, m.Item.title, m.Item.summary, m.Item.published, m.Item.via)
# Built once, lists bound at run time (an IN of literals costs a coercion per value, each time)
_BY_KEY = select(*_ROW).where(m.Item.key.in_(bindparam("keys", expanding=True)))
_BY_GUID = select(*_ROW).where(m.Item.source_id == bindparam("source"),
                               m.Item.guid.in_(bindparam("guids", expanding=True)))


def _save_articles(session: Session, fetch: FeedFetch) -> SaveResult:
    """New articles become rows, changed ones update theirs (tags and entities replaced): a few statements per
    fetch, whatever its size."""
    result = SaveResult()
    if not fetch.articles:
        return result
    by_key = {r.key: r for r in session.execute(_BY_KEY, {"keys": [a.key for a in fetch.articles]})}
    guids = _stable_guids(fetch.articles)
    by_guid = {r.guid: r for r in session.execute(
        _BY_GUID, {"source": fetch.source_id, "guids": list(guids)})} if guids else {}
    used: set[int] = set()
    new: list[tuple[Article, str | None]] = []
    changed: list[tuple[Any, Article]] = []
    for article in fetch.articles:
        row = by_key.get(article.key) or (by_guid.get(article.guid) if article.guid in guids else None)
        if row is not None and row.id in used:  # two entries claim one row: keep them apart
            row = None
        if row is None:
            new.append((article, article.guid if article.guid in guids and article.guid not in by_guid else None))
            result.new += 1
        else:
            used.add(row.id)
            if not _changed(row, article):
                continue
            changed.append((row, article))
            result.updated += 1
        result.tagged += bool(article.tags)
    ids = _update_items(session, changed, fetch.fetched) + _insert_items(session, fetch, new)
    _insert_links(session, ids, [a for _, a in changed] + [a for a, _ in new])
    return result


def _update_items(session: Session, changed: list[tuple[Any, Article]], now: datetime) -> list[int | None]:
    """Copy changed articles onto their rows (the key too: it differs when the GUID matched and the URL changed)
    and drop their tags and entity links, which ``_insert_links`` writes anew; an item whose text changed loses its
    story, and ``assign_new`` clusters it again (it may join another story). Updates go first, as the ORM's
    flush did, so a key an updated row gives up is free for a new row."""
    if not changed:
        return []
    forget(session, [row.id for row, a in changed if (row.title, row.summary) != (a.title, a.summary)])
    session.execute(update(m.Item), [
        {"id": row.id, "key": a.key, "url": a.url, "title": a.title, "summary": a.summary, "updated": now,
         "published": a.published or row.published, "via": row.via or a.via} for row, a in changed])
    ids: list[int | None] = [row.id for row, _ in changed]
    session.execute(delete(m.Tag).where(m.Tag.item_id.in_(ids)))
    session.execute(delete(m.ItemEntity).where(m.ItemEntity.item_id.in_(ids)))
    return ids


def _insert_items(session: Session, fetch: FeedFetch, new: list[tuple[Article, str | None]]) -> list[int | None]:
    """Insert new articles in one executemany (no RETURNING: SQLite would then insert row by row); the ids are
    read back only for the articles that have tags or entities to link."""
    if not new:
        return []
    items = m.Item.__table__  # a Core insert: the ORM's bulk path costs more per row than the row itself
    session.execute(insert(items), [
        {"key": a.key, "source_id": fetch.source_id, "feed_id": fetch.feed_id, "fetched": fetch.fetched,
         "guid": guid, "url": a.url, "title": a.title, "summary": a.summary, "updated": fetch.fetched,
         "published": a.published, "via": a.via} for a, guid in new])
    linked = [a.key for a, _ in new if a.tags or a.entities]
    ids = {key: i for key, i in session.execute(
        select(items.c.key, items.c.id).where(items.c.key.in_(linked)))} if linked else {}
    return [ids.get(a.key) for a, _ in new]


def _insert_links(session: Session, ids: list[int | None], articles: list[Article]) -> None:
    pairs = list(zip(ids, articles, strict=True))
    tags = [{"item_id": i, "topic_id": t, "evidence": ev} for i, a in pairs for t, ev in a.tags.items()]
    entities = [{"item_id": i, "entity_id": e} for i, a in pairs for e in a.entities]
    if tags:
        session.execute(insert(m.Tag.__table__), tags)
    if entities:
        session.execute(insert(m.ItemEntity.__table__), entities)


def _stable_guids(articles: Sequence[Article]) -> set[str]:
    """GUIDs that identify one entry each in this document: only those may carry identity across URL changes."""
    seen: dict[str, int] = {}
    for a in articles:
        if a.guid:
            seen[a.guid] = seen.get(a.guid, 0) + 1
    return {g for g, n in seen.items() if n == 1}


def _changed(item: Any, a: Article) -> bool:
    return (item.title, item.summary, item.url) != (a.title, a.summary, a.url) or (
        a.published is not None and item.published != a.published)


def _record_fetches(session: Session, fetches: Sequence[FeedFetch], worker: str | None = None) -> None:
    """Write each fetch's outcome onto its feed row (status, error, validators, next due time, the worker; the
    lease ends): one read and one update for all of them."""
    ids = {f.feed_id for f in fetches if f.feed_id is not None}  # None: an archive fetch (recrawl), no feed state
    if not ids:
        return
    feeds = {r.id: r._asdict() for r in session.execute(
        select(m.Feed.id, m.Feed.failures, m.Feed.last_success, m.Feed.etag, m.Feed.last_modified, m.Feed.body_hash,
               m.Feed.fetch_url, m.Feed.disabled).where(m.Feed.id.in_(ids)))}
    rows = []
    for fetch in fetches:
        feed = feeds.get(fetch.feed_id)  # type: ignore[arg-type]
        if feed is None:
            continue
        feed.update(last_fetch=fetch.fetched, last_status=fetch.status, polled_by=worker, leased_by=None,
                    lease_until=None)
        if fetch.error:
            feed.update(failures=feed["failures"] + 1, last_error=fetch.error)
        else:
            feed.update(failures=0, last_error=None, last_success=fetch.fetched,
                        etag=fetch.etag or feed["etag"], last_modified=fetch.last_modified or feed["last_modified"],
                        body_hash=fetch.body_hash or feed["body_hash"])
        if fetch.moved_to:
            feed["fetch_url"] = fetch.moved_to
        if fetch.status == 410:
            feed["disabled"] = True
        feed["next_due"] = next_due(fetch.fetched, fetch.interval, feed["failures"], fetch.server_delay)
        rows.append(dict(feed))
    if rows:
        session.execute(update(m.Feed), rows)


@dataclass
class ItemFilter:
    tag: str | None = None
    entity: str | None = None
    sources: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    tagged: bool = False


def items_query(f: ItemFilter, dialect: str = "") -> Select[tuple[m.Item]]:
    """Items matching the filter, newest first (by publication date, else fetch time). ``dialect``: the
    database's, for a page of the list (the workbench)."""
    when = func.coalesce(m.Item.published, m.Item.fetched)
    q = select(m.Item).options(selectinload(m.Item.tags), selectinload(m.Item.entities))
    return q.where(*_conditions(f, dialect)).order_by(when.desc(), m.Item.id.desc())


def items_count(f: ItemFilter, dialect: str = "") -> Select[tuple[int]]:
    """How many items match the filter. A topic's or an entity's items are counted in its link table, whose index
    holds them together, not item by item (18,000 rows from all over the items table for a common entity); the
    link rows always have their item (foreign keys, ON DELETE CASCADE)."""
    links = [select(m.Tag.item_id.label("id")).where(m.Tag.topic_id == f.tag)] if f.tag else []
    if f.entity:
        links.append(select(m.ItemEntity.item_id.label("id")).where(m.ItemEntity.entity_id == f.entity))
    if not links:
        return select(func.count()).select_from(m.Item).where(*_conditions(f, dialect))
    ids = links[0].subquery()
    q = select(func.count()).select_from(ids).where(*(ids.c.id.in_(other) for other in links[1:]))
    rest = _conditions(replace(f, tag=None, entity=None), dialect)
    return q.where(ids.c.id.in_(select(m.Item.id).where(*rest))) if rest else q


def _conditions(f: ItemFilter, dialect: str) -> list[ColumnElement[bool]]:
    when = func.coalesce(m.Item.published, m.Item.fetched)
    # IN over the indexed link tables: a rare topic or entity reads its few rows, not every item. SQLite, which
    # knows no topic's or entity's frequency, would also read each of a common one's items (18,000 rows, slow
    # from disk) to sort them: "id + 0" has it walk the date index (ix_items_when) and look each id up in the
    # link table's list instead, at most one pass over that index
    item = m.Item.id + 0 if dialect == "sqlite" else m.Item.id
    conditions = []
    if f.tag:
        conditions.append(item.in_(select(m.Tag.item_id).where(m.Tag.topic_id == f.tag)))
    if f.entity:
        conditions.append(item.in_(select(m.ItemEntity.item_id).where(m.ItemEntity.entity_id == f.entity)))
    if f.sources:
        conditions.append(m.Item.source_id.in_(f.sources))
    if f.since:
        conditions.append(when >= f.since)
    if f.until:
        conditions.append(when < f.until)
    if f.tagged:
        conditions.append(m.Item.tags.any())
    return conditions


def feed_status(session: Session, now: datetime) -> list[tuple[m.Feed, int]]:
    """Every feed with the number of items it brought in the last seven days."""
    week = (select(m.Item.feed_id, func.count().label("n")).where(m.Item.fetched >= now - timedelta(days=7))
            .group_by(m.Item.feed_id).subquery())
    rows = session.execute(select(m.Feed, func.coalesce(week.c.n, 0)).outerjoin(week, week.c.feed_id == m.Feed.id)
                           .order_by(m.Feed.source_id, m.Feed.url))
    return [(feed, n) for feed, n in rows]
