"""Story assignment, inside the transaction that stores items: a new item joins the story of the most similar item
published within ``WINDOW_DAYS`` (pipelines/cluster.py decides what is similar), else it starts its own story,
whose id is the item's own id. Candidates are found through the items' LSH band keys (table ``story_keys``), then
confirmed with the exact similarity of their features."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from pipelines.cluster import WINDOW_DAYS, band_keys, features, same_story, signature, similarity
from store import models as m

WINDOW = timedelta(days=WINDOW_DAYS)


@dataclass
class _Known:
    """An item that others may join: its story, source, date and features."""

    story: int
    source: str
    when: datetime
    feats: AbstractSet[str] = field(repr=False)


def assign_stories(session: Session, items: Sequence[m.Item]) -> int:
    """Give each item that has no story one (and record its band keys); returns how many joined another item's
    story. Items are taken in publication order, so items of one batch can join each other."""
    todo = sorted((i for i in items if i.story_id is None), key=_when)
    if not todo:
        return 0
    session.flush()  # new items need their ids
    mine = {i.id: (features(i.title, i.summary), i) for i in todo}
    keys = {item_id: band_keys(signature(feats)) for item_id, (feats, _) in mine.items()}
    index, known = _candidates(session, todo, keys)
    joined = 0
    for item in todo:
        feats, when = mine[item.id][0], _when(item)
        others = [known[o] for o in {o for k in keys[item.id] for o in index.get(k, ())}]
        best = _best(feats, item.source_id, when, others)
        item.story_id = best.story if best else item.id
        joined += best is not None
        known[item.id] = _Known(item.story_id, item.source_id, when, feats)
        for k in keys[item.id]:
            index[k].append(item.id)
    rows = [{"key": k, "item_id": item_id} for item_id, ks in keys.items() for k in set(ks)]
    if rows:  # items without features have no keys; an empty executemany would insert one empty row
        session.connection().execute(insert(m.StoryKey.__table__), rows)  # Core: no ORM objects needed
    return joined


def _best(feats: AbstractSet[str], source: str, when: datetime, others: Sequence[_Known]) -> _Known | None:
    """The most similar of ``others`` that is near enough in time and similar enough to be the same story."""
    best, best_score = None, 0.0
    for other in others:
        if abs(other.when - when) > WINDOW:
            continue
        score = similarity(feats, other.feats)
        if score > best_score and same_story(score, other.source == source):
            best, best_score = other, score
    return best


@lru_cache(maxsize=8192)
def _features(title: str, summary: str) -> frozenset[str]:
    """Features of stored items, cached: the same recent items are candidates for many new ones."""
    return frozenset(features(title, summary))


def _utc(at: datetime | str) -> datetime:
    """coalesce() loses the column's type: SQLite hands back its text, PostgreSQL an aware datetime."""
    dt = datetime.fromisoformat(at) if isinstance(at, str) else at
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _when(item: m.Item) -> datetime:
    return item.published or item.fetched


def _candidates(session: Session, todo: Sequence[m.Item], keys: dict[int, list[int]]
                ) -> tuple[defaultdict[int, list[int]], dict[int, _Known]]:
    """Stored items that share a band key with one of ``todo`` and were published near them."""
    wanted = sorted({k for ks in keys.values() for k in ks})
    lo, hi = _when(todo[0]) - WINDOW, _when(todo[-1]) + WINDOW
    when = func.coalesce(m.Item.published, m.Item.fetched)
    index: defaultdict[int, list[int]] = defaultdict(list)
    known: dict[int, _Known] = {}
    columns = (m.StoryKey.key, m.Item.id, m.Item.story_id, m.Item.source_id, when, m.Item.title, m.Item.summary)
    for chunk in (wanted[i:i + 500] for i in range(0, len(wanted), 500)):
        rows = session.execute(
            select(*columns).join(m.Item, m.Item.id == m.StoryKey.item_id)
            .where(m.StoryKey.key.in_(chunk), when >= lo, when <= hi, m.Item.story_id.is_not(None)))
        for key, item_id, story_id, source_id, at, title, summary in rows:
            index[key].append(item_id)
            if item_id not in known:
                known[item_id] = _Known(story_id, source_id, _utc(at), _features(title, summary))
    return index, known


def unassigned(session: Session, since: datetime, until: datetime) -> list[m.Item]:
    """Items of a period without a story (stored before clustering existed): the digest assigns them first."""
    when = func.coalesce(m.Item.published, m.Item.fetched)
    return list(session.scalars(select(m.Item).where(m.Item.story_id.is_(None), when >= since, when < until)))


def assign_new(session: Session, item_keys: Sequence[str]) -> int:
    """Assign stories to the stored items with these identity keys that have none yet (``save_fetch`` calls this
    for each fetch, so new items are clustered in the transaction that stores them)."""
    if not item_keys:
        return 0
    items = session.scalars(select(m.Item).where(m.Item.key.in_(list(item_keys)), m.Item.story_id.is_(None)))
    return assign_stories(session, list(items))
