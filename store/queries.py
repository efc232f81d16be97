"""The queries the crawler, CLI and digest need. Each function takes a Session and leaves committing to the caller,
except ``save_fetch``, which is one transaction of its own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from crawler.due import next_due
from crawler.items import Article, FeedFetch, FeedState
from crawler.sources import Source
from store import models as m


def utcnow() -> datetime:
    return datetime.now(UTC)


def sync_config(session: Session, sources: Sequence[Source], topics: Iterable, entities: Iterable) -> None:
    """Mirror the configured sources, feeds, topics and entities into their tables (rows are never deleted:
    stored items keep their references)."""
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
        FeedState(f.id, f.source_id, f.url, intervals[f.source_id], f.etag, f.last_modified, f.body_hash)
        for f in session.scalars(query.order_by(m.Feed.next_due.nulls_first(), m.Feed.id))
    ]


@dataclass
class SaveResult:
    new: int = 0
    updated: int = 0
    tagged: int = 0


def save_fetch(engine: Engine, fetch: FeedFetch) -> SaveResult:
    """Store a fetch's articles (idempotently) and the feed's new state, in one transaction.

    A concurrent writer may insert the same article between our read and our write; the unique key then
    rejects ours and the whole fetch is retried once, finding the row this time.
    """
    for attempt in (1, 2):
        try:
            with Session(engine) as session, session.begin():
                result = _save_articles(session, fetch)
                _record_fetch(session, fetch)
                return result
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _save_articles(session: Session, fetch: FeedFetch) -> SaveResult:
    result = SaveResult()
    if not fetch.articles:
        return result
    by_key = {i.key: i for i in session.scalars(
        select(m.Item).where(m.Item.key.in_([a.key for a in fetch.articles])))}
    guids = _stable_guids(fetch.articles)
    by_guid = {i.guid: i for i in session.scalars(
        select(m.Item).where(m.Item.source_id == fetch.source_id, m.Item.guid.in_(guids)))} if guids else {}
    used: set[int] = set()
    for article in fetch.articles:
        item = by_key.get(article.key) or (by_guid.get(article.guid) if article.guid in guids else None)
        if item is not None and item.id in used:  # two entries claim one row: keep them apart
            item = None
        if item is None:
            item = m.Item(key=article.key, source_id=fetch.source_id, feed_id=fetch.feed_id, fetched=fetch.fetched,
                          guid=article.guid if article.guid in guids and article.guid not in by_guid else None)
            session.add(item)
            result.new += 1
        else:
            used.add(item.id)
            if not _changed(item, article):
                continue
            result.updated += 1
        _apply(item, article, fetch.fetched)
        result.tagged += bool(article.tags)
    return result


def _stable_guids(articles: Sequence[Article]) -> set[str]:
    """GUIDs that identify one entry each in this document: only those may carry identity across URL changes."""
    seen: dict[str, int] = {}
    for a in articles:
        if a.guid:
            seen[a.guid] = seen.get(a.guid, 0) + 1
    return {g for g, n in seen.items() if n == 1}


def _changed(item: m.Item, a: Article) -> bool:
    return (item.title, item.summary, item.url) != (a.title, a.summary, a.url) or (
        a.published is not None and item.published != a.published)


def _apply(item: m.Item, a: Article, now: datetime) -> None:
    """Copy an article's fields onto its row and replace its tags and entity links."""
    item.key = a.key  # differs from the row's when the GUID matched and the URL changed
    item.url, item.title, item.summary, item.updated = a.url, a.title, a.summary, now
    item.published = a.published or item.published
    item.via = item.via or a.via
    item.tags = [m.Tag(topic_id=t, evidence=ev) for t, ev in a.tags.items()]
    item.entities = [m.ItemEntity(entity_id=e) for e in a.entities]


def _record_fetch(session: Session, fetch: FeedFetch) -> None:
    feed = session.get(m.Feed, fetch.feed_id)
    if feed is None:
        return
    feed.last_fetch, feed.last_status = fetch.fetched, fetch.status
    if fetch.error:
        feed.failures += 1
        feed.last_error = fetch.error
    else:
        feed.failures, feed.last_error, feed.last_success = 0, None, fetch.fetched
        feed.etag, feed.last_modified = fetch.etag or feed.etag, fetch.last_modified or feed.last_modified
        feed.body_hash = fetch.body_hash or feed.body_hash
    feed.next_due = next_due(fetch.fetched, fetch.interval, feed.failures, fetch.server_delay)


@dataclass
class ItemFilter:
    tag: str | None = None
    entity: str | None = None
    sources: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    tagged: bool = False


def items_query(f: ItemFilter) -> Select[tuple[m.Item]]:
    """Items matching the filter, newest first (by publication date, else fetch time)."""
    when = func.coalesce(m.Item.published, m.Item.fetched)
    q = select(m.Item).options(selectinload(m.Item.tags), selectinload(m.Item.entities))
    if f.tag:
        q = q.where(m.Item.tags.any(m.Tag.topic_id == f.tag))
    if f.entity:
        q = q.where(m.Item.entities.any(m.ItemEntity.entity_id == f.entity))
    if f.sources:
        q = q.where(m.Item.source_id.in_(f.sources))
    if f.since:
        q = q.where(when >= f.since)
    if f.until:
        q = q.where(when < f.until)
    if f.tagged:
        q = q.where(m.Item.tags.any())
    return q.order_by(when.desc(), m.Item.id.desc())


def feed_status(session: Session, now: datetime) -> list[tuple[m.Feed, int]]:
    """Every feed with the number of items it brought in the last seven days."""
    week = (select(m.Item.feed_id, func.count().label("n")).where(m.Item.fetched >= now - timedelta(days=7))
            .group_by(m.Item.feed_id).subquery())
    rows = session.execute(select(m.Feed, func.coalesce(week.c.n, 0)).outerjoin(week, week.c.feed_id == m.Feed.id)
                           .order_by(m.Feed.source_id, m.Feed.url))
    return [(feed, n) for feed, n in rows]
