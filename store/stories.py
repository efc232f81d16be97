"""Story assignment, inside the transaction that stores items: a new item joins the story it scores best with
(pipelines/cluster.py: the mean cosine with its reports, TF-IDF weighted), if that story began at most
``WINDOW_DAYS`` before it; else it starts its own story, whose id is the item's own id.

- Document frequencies: ``term_counts`` holds, per feature key, how many stored items have the feature (key 0: how
  many items were counted). Each item that records keys adds its features; ``forget`` takes them back.
- Candidates: each item records the keys of its ``index_terms`` (its entities and rarest words) in ``story_keys``;
  a new item reads the stored items of the window that share one of its keys (the latest ``PER_KEY`` a key, so a
  common word costs no more than a rare one), then the reports of their stories (the latest ``REPORTS`` different
  texts each) to build the stories' centroids. Cost per item does not grow with the archive.
- Copies: beside its index keys an item records an exact key (a hash of its whole feature set): a new item with a
  stored exact copy published within the window joins that copy's story with one lookup, and records no keys nor
  counts of its own (18 outlets carrying one wire text are one text to compare, not 18).
- Re-clustering: ``forget`` clears items' stories, keys and counts (an edited item, a re-crawled range) so that
  ``assign_stories`` gives them stories anew; ``recluster`` does it for a range and keeps a story's id when its
  items are the same as before.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache

from sqlalchemy import bindparam, delete, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pipelines import cluster
from store import models as m

WINDOW = timedelta(days=cluster.WINDOW_DAYS)
PER_KEY = 24  # candidates per key, the latest: a key that hundreds of items share stands for a common word
REPORTS = 8  # a story's latest different texts that make its centroid
_CHUNK = 500  # values in one IN list
_TOTAL = 0  # the term_counts row that counts the items


@dataclass
class _New:
    """An item to assign: what clustering needs of it (an ORM Item or a row of the items table)."""

    id: int
    source: str
    when: datetime
    title: str
    summary: str
    entities: tuple[str, ...] = ()
    story: int | None = None

    @cached_property
    def text(self) -> tuple[frozenset[str], int | None]:
        """The features of its title and lead, and their exact key: a copy has the same."""
        return _text(self.title, self.summary)

    @cached_property
    def feats(self) -> frozenset[str]:
        """All its features: the text's and its entities' (read ``entities`` first)."""
        return _features(self.title, self.summary, self.entities)


@dataclass
class _Story:
    """A story as the new items see it: its first report's date and its centroid."""

    first: datetime
    centroid: cluster.Centroid = field(default_factory=cluster.Centroid)


def assign_stories(session: Session, items: Sequence[m.Item]) -> int:
    """Give each item that has no story one (and record its keys); returns how many joined another item's story.
    Items are taken in publication order, so items of one batch can join each other."""
    todo = [i for i in items if i.story_id is None]
    if not todo:
        return 0
    session.flush()  # new items need their ids (and their entity links must be in the table)
    new = [_New(i.id, i.source_id, _when(i), i.title or "", i.summary or "") for i in todo]
    joined = _assign(session, new)
    by_id = {n.id: n.story for n in new}
    for item in todo:
        item.story_id = by_id[item.id]
    return joined


def assign_new(session: Session, item_keys: Sequence[str]) -> int:
    """Assign stories to the stored items with these identity keys that have none yet (``save_fetch`` calls this
    for each fetch, so new items are clustered in the transaction that stores them). Works on rows, not ORM
    objects: the items were inserted with Core statements, and their stories are written the same way."""
    if not item_keys:
        return 0
    items = m.Item.__table__
    rows = []
    wanted = list(dict.fromkeys(item_keys))
    for chunk in _chunks(wanted):
        rows.extend(session.execute(select(items.c.id, items.c.source_id,
                                           func.coalesce(items.c.published, items.c.fetched),  # untyped: cheaper
                                           items.c.title, items.c.summary)
                                    .where(items.c.key.in_(chunk), items.c.story_id.is_(None))))
    if not rows:
        return 0
    new = [_New(i, source, _utc(at), title or "", summary or "") for i, source, at, title, summary in rows]
    joined = _assign(session, new)
    session.connection().execute(
        update(items).where(items.c.id == bindparam("item")).values(story_id=bindparam("story")),
        [{"item": n.id, "story": n.story} for n in new])
    return joined


def _assign(session: Session, new: list[_New]) -> int:
    """Set ``story`` of each of ``new``; record keys and counts of those that do not copy an item of their story."""
    new.sort(key=lambda n: (n.when, n.id))
    copies = _stored_copies(session, new)  # text features -> (story, date) of stored items
    rest = [n for n in new if _copy(copies.get(n.text[0], ()), n.when) is None]
    entities = _entities(session, [n.id for n in rest])  # copies need none: their text decides
    for n in rest:
        n.entities = entities.get(n.id, ())
    df, total = _counts(session, {f for n in rest for f in n.feats})
    for n in rest:  # the batch counts too: a first crawl into an empty database has nothing else to go by
        for f in n.feats:
            df[f] = df.get(f, 0) + 1
    total += len(rest)
    keys = {n.id: [cluster.term_key(f) for f in cluster.index_terms(n.feats, df)] for n in rest}
    stories, by_key = _candidates(session, rest, keys, df, total)
    joined = 0
    recorded: list[_New] = []
    for item in new:
        copy = _copy(copies.get(item.text[0], ()), item.when)
        if copy is not None:  # an exact copy in the window: its story, nothing to record
            item.story = copy[0]
            joined += 1
            continue
        feats = item.feats
        vec = cluster.vector(feats, df, total)
        is_cjk = cluster.cjk(feats)
        best, best_score = None, 0.0
        for story_id in dict.fromkeys(s for k in keys[item.id] for s in by_key.get(k, ())[-PER_KEY:]):
            story = stories[story_id]
            days = abs((item.when - story.first).total_seconds()) / 86400
            if days > cluster.WINDOW_DAYS:
                continue
            s = cluster.score(vec, is_cjk, item.source, story.centroid, days)
            if s >= cluster.THRESHOLD and s > best_score:
                best, best_score = story_id, s
        item.story = best if best is not None else item.id
        joined += best is not None
        story = stories.setdefault(item.story, _Story(item.when))
        story.first = min(story.first, item.when)
        story.centroid.add(vec, is_cjk, item.source)
        copies.setdefault(item.text[0], []).append((item.story, item.when))
        for k in keys[item.id]:
            by_key.setdefault(k, []).append(item.story)
        recorded.append(item)
    _record(session, recorded, keys)
    return joined


def _record(session: Session, items: Sequence[_New], keys: dict[int, list[int]]) -> None:
    """Store the items' index and exact keys, and add their features to the document frequencies."""
    rows = [{"key": k, "item_id": n.id} for n in items
            for k in dict.fromkeys((*keys[n.id], *([n.text[1]] if n.text[1] is not None else [])))]
    if rows:  # items without features have no keys; an empty executemany would insert one empty row
        session.connection().execute(insert(m.StoryKey.__table__), rows)
    _add_counts(session, Counter(cluster.term_key(f) for n in items for f in n.feats), len(items))


def _add_counts(session: Session, counts: Counter[int], items: int) -> None:
    """Add to ``term_counts`` (an upsert per key, in key order so that concurrent writers cannot deadlock)."""
    if not items:
        return
    counts[_TOTAL] += items
    table = m.TermCount.__table__
    dialect = session.get_bind().dialect.name
    stmt = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))
    stmt = stmt.on_conflict_do_update(index_elements=[table.c.key], set_={"df": table.c.df + stmt.excluded.df})
    session.connection().execute(stmt, [{"key": k, "df": n} for k, n in sorted(counts.items())])


def _counts(session: Session, feats: Iterable[str]) -> tuple[dict[str, int], int]:
    """Document frequencies of ``feats`` and the number of items counted."""
    by_key = {cluster.term_key(f): f for f in feats}
    table = m.TermCount.__table__
    df: dict[str, int] = {}
    total = 0
    for chunk in _chunks(sorted([_TOTAL, *by_key])):
        for key, n in session.execute(select(table.c.key, table.c.df).where(table.c.key.in_(chunk))):
            if key == _TOTAL:
                total = n
            else:  # never below 0: items stored by an earlier method may be forgotten with today's features
                df[by_key[key]] = max(n, 0)
    return df, total


def _candidates(session: Session, new: Sequence[_New], keys: dict[int, list[int]], df: dict[str, int],
                total: int) -> tuple[dict[int, _Story], dict[int, list[int]]]:
    """The stored stories that ``new`` may join: those of stored items of the window that share a key with one of
    them (the latest ``PER_KEY`` a key), with their centroids; and the stories of each key."""
    if not new:
        return {}, {}
    items, story_keys = m.Item.__table__, m.StoryKey.__table__
    when = func.coalesce(items.c.published, items.c.fetched)
    hits: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)  # key -> (item id, story id)
    start = 0
    while start < len(new):  # spans of WINDOW, each with its own date range (a first poll brings years of items)
        end = start
        while end < len(new) and new[end].when - new[start].when <= WINDOW:
            end += 1
        lo, hi = new[start].when - WINDOW, new[end - 1].when + WINDOW
        wanted = sorted({k for n in new[start:end] for k in keys[n.id]})
        for chunk in _chunks(wanted):
            hits_rows = session.execute(
                select(story_keys.c.key, items.c.id, items.c.story_id).join(items, items.c.id == story_keys.c.item_id)
                .where(story_keys.c.key.in_(chunk), when >= lo, when <= hi, items.c.story_id.is_not(None)))
            for key, item_id, story_id in hits_rows:
                hits[key].append((item_id, story_id))
        start = end
    by_key: dict[int, list[int]] = {}
    for key, found in hits.items():
        found.sort()  # ids grow with time: the latest last
        by_key[key] = list(dict.fromkeys(story for _, story in found[-PER_KEY:]))
    return _load_stories(session, sorted({s for ids in by_key.values() for s in ids}), df, total), by_key


def _load_stories(session: Session, story_ids: Sequence[int], df: dict[str, int], total: int
                  ) -> dict[int, _Story]:
    """Centroids of stored stories: their latest ``REPORTS`` different texts, weighted with document frequencies
    read now (``df`` gains those of their features)."""
    items, keys = m.Item.__table__, m.StoryKey.__table__
    when = func.coalesce(items.c.published, items.c.fetched)
    members: defaultdict[int, list[tuple[datetime, _New]]] = defaultdict(list)
    sources: defaultdict[int, set[str]] = defaultdict(set)
    for chunk in _chunks(story_ids):  # the reports that recorded keys (not copies), and every report's source
        for item_id, story_id, source, at, title, summary in session.execute(
                select(items.c.id, items.c.story_id, items.c.source_id, when, items.c.title, items.c.summary)
                .where(items.c.story_id.in_(chunk), exists().where(keys.c.item_id == items.c.id))):
            members[story_id].append((_utc(at), _New(item_id, source, _utc(at), title or "", summary or "")))
        for story_id, source in session.execute(select(items.c.story_id, items.c.source_id).distinct()
                                                .where(items.c.story_id.in_(chunk))):
            sources[story_id].add(source)
    for rows in members.values():
        rows.sort(key=lambda r: (r[0], r[1].id))
    entities = _entities(session, [n.id for rows in members.values() for _, n in [rows[0], *rows[-REPORTS * 4:]]])
    stories: dict[int, _Story] = {}
    chosen: dict[int, list[_New]] = {}
    for story_id, rows in members.items():
        stories[story_id] = _Story(rows[0][0])
        texts: dict[frozenset[str], _New] = {}
        for _, n in [rows[0], *reversed(rows[1:])]:  # the first report (the seed), then the latest
            n.entities = entities.get(n.id, ())
            texts.setdefault(n.feats, n)
            if len(texts) == REPORTS:
                break
        chosen[story_id] = list(texts.values())
    df.update(_counts(session, {f for ns in chosen.values() for n in ns for f in n.feats} - df.keys())[0])
    for story_id, ns in chosen.items():
        story = stories[story_id]
        for n in ns:
            feats = n.feats
            story.centroid.add(cluster.vector(feats, df, total), cluster.cjk(feats), n.source)
        story.centroid.sources |= sources[story_id]
    return stories


def _stored_copies(session: Session, new: Sequence[_New]) -> dict[frozenset[str], list[tuple[int, datetime]]]:
    """Stored items with exactly the features of one of ``new`` (found by their exact key, a 63-bit hash of the
    whole feature set), near it in time: their stories and dates, by their features."""
    exact = {n.text[1]: n.text[0] for n in new if n.text[1] is not None}
    found: dict[frozenset[str], list[tuple[int, datetime]]] = {}
    if not exact:
        return found
    items, keys = m.Item.__table__, m.StoryKey.__table__
    when = func.coalesce(items.c.published, items.c.fetched)
    lo, hi = new[0].when - WINDOW, new[-1].when + WINDOW
    for chunk in _chunks(sorted(exact)):
        for key, story_id, at in session.execute(
                select(keys.c.key, items.c.story_id, when).join(items, items.c.id == keys.c.item_id)
                .where(keys.c.key.in_(chunk), when >= lo, when <= hi, items.c.story_id.is_not(None))):
            found.setdefault(exact[key], []).append((story_id, _utc(at)))
    return found


def _copy(others: Iterable[tuple[int, datetime]], when: datetime) -> tuple[int, datetime] | None:
    """An item with the very same features near in time: the same story whatever the sources."""
    return next((other for other in others if abs(other[1] - when) <= WINDOW), None)


def forget(session: Session, item_ids: Sequence[int]) -> None:
    """Clear the stories of these items, their keys, and (for those that recorded keys) their document
    frequencies: for items whose text changed, or that a re-crawl clusters again."""
    if not item_ids:
        return
    items, keys = m.Item.__table__, m.StoryKey.__table__
    keyed: set[int] = set()
    for chunk in _chunks(list(item_ids)):
        keyed.update(session.scalars(select(keys.c.item_id).where(keys.c.item_id.in_(chunk)).distinct()))
    entities = _entities(session, sorted(keyed))
    counts: Counter[int] = Counter()
    for chunk in _chunks(sorted(keyed)):
        for item_id, title, summary in session.execute(
                select(items.c.id, items.c.title, items.c.summary).where(items.c.id.in_(chunk))):
            feats = _features(title or "", summary or "", entities.get(item_id, ()))
            counts.update(cluster.term_key(f) for f in feats)
    if keyed:
        _add_counts(session, Counter({k: -n for k, n in counts.items()}), -len(keyed))
    for chunk in _chunks(list(item_ids)):
        session.execute(delete(keys).where(keys.c.item_id.in_(chunk)))
        session.execute(update(items).where(items.c.id.in_(chunk)).values(story_id=None))


def recluster(session: Session, item_ids: Sequence[int]) -> int:
    """Cluster these items again with the current method; returns how many joined another item's story. A story
    whose items are the same as before keeps its id."""
    items = m.Item.__table__
    before: defaultdict[int, set[int]] = defaultdict(set)
    for chunk in _chunks(list(item_ids)):
        for item_id, story_id in session.execute(select(items.c.id, items.c.story_id).where(items.c.id.in_(chunk))):
            if story_id is not None:
                before[story_id].add(item_id)
    forget(session, item_ids)
    session.expire_all()
    todo = [i for chunk in _chunks(list(item_ids)) for i in session.scalars(select(m.Item).where(m.Item.id.in_(chunk)))]
    joined = assign_stories(session, todo)
    session.flush()
    after: defaultdict[int, set[int]] = defaultdict(set)
    for item in todo:
        after[item.story_id].add(item.id)
    old_of = {frozenset(ids): story for story, ids in before.items()}
    for story, ids in after.items():
        old = old_of.get(frozenset(ids))
        if old is not None and old != story and not _story_exists(session, old, ids):
            session.execute(update(items).where(items.c.story_id == story).values(story_id=old))
    return joined


def _story_exists(session: Session, story: int, besides: set[int]) -> bool:
    """Another item (not of ``besides``) has this story id."""
    items = m.Item.__table__
    found = session.scalars(select(items.c.id).where(items.c.story_id == story).limit(len(besides) + 1))
    return any(i not in besides for i in found)


@lru_cache(maxsize=4096)  # ~8 KB an entry (its features are strings): ~33 MB at most
def _text(title: str, summary: str) -> tuple[frozenset[str], int | None]:
    """Features and exact key of a text, cached: the same recent items are candidates for many new ones, and many
    outlets carry the same wire text. The exact key (a hash of the whole feature set, stored in ``story_keys``
    beside the index keys) finds stored copies with one lookup each."""
    feats = cluster.features(title, summary)
    if not feats:
        return feats, None
    exact = int.from_bytes(hashlib.blake2b("\x1f".join(sorted(feats)).encode(), digest_size=8,
                                          person=b"exact").digest(), "little") >> 1
    return feats, exact


def _features(title: str, summary: str, entities: tuple[str, ...]) -> frozenset[str]:
    """What an item is compared by (and counted by in ``term_counts``): its text's features and its entities'."""
    return _text(title, summary)[0] | cluster.features("", "", entities)


def _entities(session: Session, item_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    links = m.ItemEntity.__table__
    found: defaultdict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(sorted(set(item_ids))):
        for item_id, entity_id in session.execute(
                select(links.c.item_id, links.c.entity_id).where(links.c.item_id.in_(chunk))):
            found[item_id].append(entity_id)
    return {i: tuple(sorted(es)) for i, es in found.items()}


def _chunks(values: Sequence) -> Iterable[Sequence]:
    return (values[i:i + _CHUNK] for i in range(0, len(values), _CHUNK))


def _utc(at: datetime | str) -> datetime:
    """coalesce() loses the column's type: SQLite hands back its text, PostgreSQL an aware datetime."""
    dt = datetime.fromisoformat(at) if isinstance(at, str) else at
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _when(item: m.Item) -> datetime:
    return item.published or item.fetched


def unassigned(session: Session, since: datetime, until: datetime) -> list[m.Item]:
    """Items of a period without a story (stored before clustering existed): the digest assigns them first."""
    when = func.coalesce(m.Item.published, m.Item.fetched)
    return list(session.scalars(select(m.Item).where(m.Item.story_id.is_(None), when >= since, when < until)))
