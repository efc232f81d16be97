"""Story clustering: items about the same event from several outlets share one story.

Pure functions; the store calls them when it saves items (``store/stories.py``), so that every writer (feed polls,
archive backfills, re-crawls) clusters the same way, in the transaction that stores the item.

- ``features``: the content words of the title and the lead (its first ``LEAD_WORDS`` words), case- and
  accent-folded, stop words dropped, plural and -ed/-ing endings stripped; Chinese, Japanese and Korean text as
  character bigrams; plus the title's adjacent word pairs, so that near-identical headlines weigh more than
  words that merely co-occur.
- ``signature``: a MinHash of those features (``NUM_HASHES`` values, one hash per feature); ``band_keys`` cuts it
  into ``BANDS`` LSH bands of ``ROWS`` values. Two items whose features have Jaccard similarity s share a band
  key with probability 1 - (1 - s**ROWS)**BANDS: 0.96 at the threshold s = 0.18, 0.28 at s = 0.02. On the
  corpus this finds every pair above the threshold that comparing all items would find, at 14 candidates per
  item on average (the week of 2026-02-16: 1,100 items from 21 outlets) instead of hundreds, and costs 16 rows
  of ``story_keys`` per item (plus one exact key; an item that copies one already stored records none:
  ``store/stories.py``).
- ``similarity``: the exact Jaccard similarity of two feature sets, which confirms a candidate;
  ``same_story`` applies the thresholds.

Measured on the shared corpus and on built pairs: tests/test_cluster.py.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from functools import lru_cache
from itertools import pairwise

LEAD_WORDS = 40
NUM_HASHES = 16
ROWS = 1
BANDS = NUM_HASHES // ROWS
THRESHOLD = 0.18  # another outlet's item with at least this similarity is the same story
SAME_SOURCE_THRESHOLD = 0.5  # one outlet's own items: recurring titles ("Morning Bid: ...") must not chain
WINDOW_DAYS = 3  # only items published this close are compared

_OFFSET = 1 << 64  # larger than any bin value: a borrowed value never equals an own one
EMPTY: tuple[int, ...] = ()

_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(f"[{_CJK_RANGES}]+|[^\\W_{_CJK_RANGES}]+")
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")  # diacritics
_SUFFIXES = (("ies", "y", 3), ("ing", "", 4), ("ed", "", 4), ("es", "", 4), ("s", "", 3))
STOP_WORDS = frozenset("""
a about after again against all also amid an and any are as at be been before being both but by can could day days
did do does doing don each few first for from get gets got had has have he her here his how i if in into is it its
just last make makes may might more most new news no not now of off on one only or other our out over own report
reported reports s said same say saying says she should so some such t than that the their them then there these
they this those to too two under up us very via was we week were what when where which while who why will with
would year years you amp
""".split())


def _fold(text: str) -> str:
    """Lower case without accents ("Jerí" and "Jeri" match); CJK and Hangul survive (NFKC recomposes them)."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", _COMBINING.sub("", unicodedata.normalize("NFKD", text))).casefold()


@lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    if word.endswith(("ss", "us", "is")):
        return word
    for suffix, replacement, keep in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            return word[: -len(suffix)] + replacement
    return word


def _tokens(text: str) -> list[str]:
    """Content words; a run of CJK characters becomes its character bigrams."""
    out: list[str] = []
    for match in _TOKEN.finditer(_fold(text)):
        token = match.group()
        if _CJK_CHAR.match(token):
            out.extend(token[i:i + 2] for i in range(max(1, len(token) - 1)))
        elif token.isdigit():
            if len(token) >= 2:
                out.append(token)
        elif len(token) >= 3 and token not in STOP_WORDS:
            out.append(_stem(token))
    return out


def features(title: str, summary: str) -> set[str]:
    """The set compared between items: content words of title and lead, and the title's word pairs."""
    head = _tokens(title)
    lead = _tokens(" ".join(summary[:LEAD_WORDS * 15].split()[:LEAD_WORDS]))
    return set(head) | set(lead) | {f"{a} {b}" for a, b in pairwise(head)}


@lru_cache(maxsize=1 << 16)
def _hash64(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")


def signature(feats: Iterable[str]) -> tuple[int, ...]:
    """MinHash by one permutation hashing (Li, Owen & Zhang 2012) with densification by rotation (Shrivastava &
    Li 2014): each feature's 64-bit hash picks one of NUM_HASHES bins and keeps the smallest value there; an empty
    bin borrows the value of the next non-empty bin to its right, offset by the distance. Two signatures agree in
    a position with probability equal to the Jaccard similarity, at the cost of one hash per feature."""
    bins: list[int | None] = [None] * NUM_HASHES
    for feature in feats:
        h = _hash64(feature)
        slot, value = h % NUM_HASHES, h // NUM_HASHES
        current = bins[slot]
        if current is None or value < current:
            bins[slot] = value
    if all(v is None for v in bins):
        return EMPTY
    out = []
    for i in range(NUM_HASHES):
        distance = 0
        while (value := bins[(i + distance) % NUM_HASHES]) is None:
            distance += 1
        out.append(value + distance * _OFFSET)
    return tuple(out)


def band_keys(sig: Sequence[int]) -> list[int]:
    """One key per LSH band of ROWS values: a non-negative 63-bit hash of the band's number and values (fits a
    BIGINT column). An item without features has no keys: it is like nothing else."""
    keys = []
    for band in range(len(sig) // ROWS):
        values = ":".join(str(v) for v in sig[band * ROWS:(band + 1) * ROWS])
        digest = hashlib.blake2b(f"{band}:{values}".encode(), digest_size=8).digest()
        keys.append(int.from_bytes(digest, "little") >> 1)
    return keys


def similarity(a: AbstractSet[str], b: AbstractSet[str]) -> float:
    """The Jaccard similarity of two feature sets (candidates found by their band keys are confirmed with it)."""
    if not (a and b):
        return 0.0
    shared = len(a & b)  # |a & b| / |a | b|, without building the union
    return shared / (len(a) + len(b) - shared)


def same_story(score: float, same_source: bool) -> bool:
    return score >= (SAME_SOURCE_THRESHOLD if same_source else THRESHOLD)
