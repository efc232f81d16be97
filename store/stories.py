"""Story assignment, inside the transaction that stores items: a new item joins the story of the most similar item
published within ``WINDOW_DAYS`` (pipelines/cluster.py decides what is similar), else it starts its own story,
whose id is the item's own id. Candidates are found through the items' LSH band keys (table ``story_keys``), then
confirmed with the exact similarity of their features.

Cost stays linear in the number of items however many outlets carry one story: an item that joins a story as a
near-copy (``DUPLICATE`` similarity, published within ``DUPLICATE_SLACK``) of an item that is already a candidate
records no band keys of its own. That item stands for it: whatever is similar to the copy is about as similar to it
(Jaccard distance is a metric: a copy at distance d changes a later item's similarity by at most d). So 18 outlets
carrying one wire story give one set of band keys, not 18 sets that every later copy loads and compares again.
Beside its band keys an item records an exact key (a hash of its whole feature set, in the same table, so no
schema change): a new item with a stored exact copy finds it with one lookup, joins it (similarity 1 beats any
other candidate) and reads no other candidates. Stored candidates are read with one query for their keys and one
for their text (not once per shared key), in spans of the new items' dates, and the features of recently seen texts
are kept (``_profile``). The stories given are those comparing with every candidate would give (same P/R on
tests/test_cluster.py), except that a later item compares with a copy's stand-in instead of the copy.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from pipelines.cluster import WINDOW_DAYS, band_keys, features, same_story, signature, similarity
from store import models as m

WINDOW = timedelta(days=WINDOW_DAYS)
DUPLICATE = 0.9  # a new item this similar to a candidate it joins is a copy: it records no band keys
DUPLICATE_SLACK = timedelta(hours=12)  # ... when published this close to it (so the time window barely moves)
PER_KEY = 24  # candidates per band key, the latest: a key that hundreds of items share stands for a common word
_CHUNK = 500  # values in one IN list
_Profile = tuple[frozenset[str], tuple[int, ...], int | None]  # features, band keys, exact key


@dataclass
class _Known:
    """An item that others may join: its story, source, date and features."""

    story: int
    source: str
    when: datetime
    feats: AbstractSet[str] = field(repr=False)


@dataclass
class _New:
    """An item to assign: what clustering needs of it (an ORM Item or a row of the items table)."""

    id: int
    source: str
    when: datetime
    title: str
    summary: str
    story: int | None = None


def assign_stories(session: Session, items: Sequence[m.Item]) -> int:
    """Give each item that has no story one (and record its band keys); returns how many joined another item's
    story. Items are taken in publication order, so items of one batch can join each other."""
    todo = [i for i in items if i.story_id is None]
    if not todo:
        return 0
    session.flush()  # new items need their ids
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
    new: list[_New] = []
    wanted = list(dict.fromkeys(item_keys))
    for chunk in (wanted[i:i + _CHUNK] for i in range(0, len(wanted), _CHUNK)):
        rows = session.execute(select(items.c.id, items.c.source_id,
                                      func.coalesce(items.c.published, items.c.fetched),  # untyped: cheaper
                                      items.c.title, items.c.summary)
                               .where(items.c.key.in_(chunk), items.c.story_id.is_(None)))
        new.extend(_New(i, source, _utc(at), title or "", summary or "")
                   for i, source, at, title, summary in rows)
    if not new:
        return 0
    joined = _assign(session, new)
    session.connection().execute(
        update(items).where(items.c.id == bindparam("item")).values(story_id=bindparam("story")),
        [{"item": n.id, "story": n.story} for n in new])
    return joined


def _assign(session: Session, new: list[_New]) -> int:
    """Set ``story`` of each of ``new`` and record the keys of those that do not merely copy a candidate."""
    new.sort(key=lambda n: (n.when, n.id))
    profiles = {n.id: _profile(n.title, n.summary) for n in new}
    known = _stored_copies(session, new, profiles)
    copies: defaultdict[frozenset[str], list[_Known]] = defaultdict(list)  # candidates by their exact features
    for other in known.values():
        copies[other.feats].append(other)
    rest = [n for n in new if _copy(copies.get(profiles[n.id][0], ()), n.when) is None]
    index, loaded = _candidates(session, rest, profiles)  # what items with a stored copy need not read
    for item_id, other in loaded.items():
        if item_id not in known:
            known[item_id] = other
            copies[other.feats].append(other)
    joined = 0
    rows: list[dict[str, int]] = []
    for item in new:
        feats, keys, exact = profiles[item.id]
        best, score = _copy(copies.get(feats, ()), item.when), 1.0  # nothing beats an exact copy
        if best is None:
            best, score = _best(feats, item.source, item.when, (known[o] for o in {o for k in keys
                                                                                   for o in _latest(index, k)}))
        item.story = best.story if best else item.id
        joined += best is not None
        if best is not None and score >= DUPLICATE and abs(best.when - item.when) <= DUPLICATE_SLACK:
            continue  # a copy of a candidate: that one stands for it
        known[item.id] = mine = _Known(item.story, item.source, item.when, feats)
        if keys:
            copies[feats].append(mine)
        for k in keys:
            index[k].append(item.id)
        rows.extend({"key": k, "item_id": item.id} for k in (*keys, exact) if k is not None)
    if rows:  # items without features have no keys; an empty executemany would insert one empty row
        session.connection().execute(insert(m.StoryKey.__table__), rows)  # Core: no ORM objects needed
    return joined


def _latest(index: dict[int, list[int]], key: int) -> list[int]:
    """The candidates of one band key: its latest ``PER_KEY`` items. A story's copies share many keys, so capping
    one key loses no real match, while a key shared by every item of a feed ("Item 1", "Item 2", ...) would
    otherwise make each new item compare with all earlier ones (quadratic)."""
    return index.get(key, [])[-PER_KEY:]


def _stored_copies(session: Session, new: Sequence[_New], profiles: dict[int, _Profile]) -> dict[int, _Known]:
    """Stored items with exactly the features of one of ``new`` (found by their exact key, confirmed by their
    features), near it in time: such a new item joins one of them and needs no other candidates."""
    exact = {profiles[n.id][2]: profiles[n.id][0] for n in new if profiles[n.id][2] is not None}
    if not exact:
        return {}
    items, keys = m.Item.__table__, m.StoryKey.__table__
    when = func.coalesce(items.c.published, items.c.fetched)
    found: dict[int, _Known] = {}
    wanted = sorted(exact)
    lo, hi = new[0].when - WINDOW, new[-1].when + WINDOW
    for chunk in (wanted[i:i + _CHUNK] for i in range(0, len(wanted), _CHUNK)):
        rows = session.execute(
            select(keys.c.key, items.c.id, items.c.story_id, items.c.source_id, when, items.c.title,
                   items.c.summary).join(items, items.c.id == keys.c.item_id)
            .where(keys.c.key.in_(chunk), when >= lo, when <= hi, items.c.story_id.is_not(None))).all()
        for key, item_id, story_id, source_id, at, title, summary in rows:
            feats = _profile(title or "", summary or "")[0]
            if feats == exact[key]:
                found[item_id] = _Known(story_id, source_id, _utc(at), feats)
    return found


def _copy(others: Iterable[_Known], when: datetime) -> _Known | None:
    """A candidate with the very same features (similarity 1: the same story whatever the sources), near in time."""
    return next((other for other in others if abs(other.when - when) <= WINDOW), None)


def _best(feats: AbstractSet[str], source: str, when: datetime, others: Iterable[_Known]
          ) -> tuple[_Known | None, float]:
    """The most similar of ``others`` that is near enough in time and similar enough to be the same story."""
    best, best_score = None, 0.0
    for other in others:
        if abs(other.when - when) > WINDOW:
            continue
        score = similarity(feats, other.feats)
        if score > best_score and same_story(score, other.source == source):
            best, best_score = other, score
    return best, best_score


@lru_cache(maxsize=4096)  # ~8 KB an entry (its features are strings): ~33 MB at most
def _profile(title: str, summary: str) -> _Profile:
    """Features, band keys and exact key of a text, cached: the same recent items are candidates for many new ones,
    and many outlets carry the same wire text. The exact key (a hash of the whole feature set, stored in
    ``story_keys`` beside the band keys) finds stored copies with one lookup each."""
    feats = frozenset(features(title, summary))
    if not feats:
        return feats, (), None
    exact = int.from_bytes(hashlib.blake2b("\x1f".join(sorted(feats)).encode(), digest_size=8,
                                          person=b"exact").digest(), "little") >> 1
    return feats, tuple(dict.fromkeys(band_keys(signature(feats)))), exact


def _utc(at: datetime | str) -> datetime:
    """coalesce() loses the column's type: SQLite hands back its text, PostgreSQL an aware datetime."""
    dt = datetime.fromisoformat(at) if isinstance(at, str) else at
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _when(item: m.Item) -> datetime:
    return item.published or item.fetched


def _candidates(session: Session, new: Sequence[_New], profiles: dict[int, _Profile]
                ) -> tuple[defaultdict[int, list[int]], dict[int, _Known]]:
    """Stored items that share a band key with one of ``new`` and were published near them: which keys they hold,
    then each one's story, source, date and text (once per item). ``new`` (in time order) is read in spans of
    ``WINDOW``, each with its own date range: a first poll of old feeds brings items of many years, and one range
    for all of them would read every stored key they share."""
    items, keys = m.Item.__table__, m.StoryKey.__table__
    when = func.coalesce(items.c.published, items.c.fetched)
    index: defaultdict[int, list[int]] = defaultdict(list)
    start = 0
    while start < len(new):
        end = start
        while end < len(new) and new[end].when - new[start].when <= WINDOW:
            end += 1
        lo, hi = new[start].when - WINDOW, new[end - 1].when + WINDOW
        wanted = sorted({k for n in new[start:end] for k in profiles[n.id][1]})
        for chunk in (wanted[i:i + _CHUNK] for i in range(0, len(wanted), _CHUNK)):
            rows = session.execute(
                select(keys.c.key, keys.c.item_id).join(items, items.c.id == keys.c.item_id)
                .where(keys.c.key.in_(chunk), when >= lo, when <= hi, items.c.story_id.is_not(None))).all()
            for key, item_id in rows:
                index[key].append(item_id)
        start = end
    for members in index.values():
        members.sort()  # ids grow with time: the latest last, as _latest takes them
    ids = sorted({i for k in index for i in _latest(index, k)})
    known: dict[int, _Known] = {}
    for chunk in (ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)):
        rows = session.execute(select(items.c.id, items.c.story_id, items.c.source_id, when, items.c.title,
                                      items.c.summary).where(items.c.id.in_(chunk))).all()
        for item_id, story_id, source_id, at, title, summary in rows:
            known[item_id] = _Known(story_id, source_id, _utc(at), _profile(title or "", summary or "")[0])
    return index, known


def unassigned(session: Session, since: datetime, until: datetime) -> list[m.Item]:
    """Items of a period without a story (stored before clustering existed): the digest assigns them first."""
    when = func.coalesce(m.Item.published, m.Item.fetched)
    return list(session.scalars(select(m.Item).where(m.Item.story_id.is_(None), when >= since, when < until)))
