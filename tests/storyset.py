"""The labelled story set (tests/data/stories/set.jsonl) put through the real store, and its pairwise figures.

Each item is tagged with the shipped topics.toml (its entities link languages), saved with ``save_fetches`` into a
SQLite file one day at a time (one fetch per outlet and day, as a crawl would store them), and its stored story id
read back. Figures are over pairs of labelled items: precision and recall of "same story", recall of the same-story
pairs between a Chinese and an English report, and the largest number of labelled stories one stored story holds
(stories that chained together). Items marked ``ambiguous`` are stored but left out of the figures.

Used by tests/test_story_set.py (which asserts the targets) and bench/stories.py (which prints the table).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.items import Article, FeedFetch
from pipelines.tagging.rules import load_rules
from store import models as m
from store.db import open_database
from store.queries import save_fetches, sync_config

SET = Path(__file__).parent / "data" / "stories" / "set.jsonl"
TOPICS = Path(__file__).parents[1] / "talentwatch" / "defaults" / "topics.toml"


def load(path: Path = SET, split: str | None = None) -> list[dict]:
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [i for i in items if split is None or i["split"] == split]


def background(corpus: Path) -> list[dict]:
    """The items of the shared corpus's feeds (real news of many outlets), as a background archive: a store holds
    thousands of items, and the set's 400 to 800 alone would give too few for document frequencies."""
    from crawler.feedparse import parse_feed
    from pipelines.normalize import normalize_entries

    items = []
    for path in sorted((corpus / "feeds").glob("*.xml")):
        if "sitemap" in path.name:
            continue
        parsed = parse_feed(path.read_bytes(), {"content-location": f"http://127.0.0.1/{path.name}"})
        items.extend({"title": a.title, "summary": a.summary, "url": f"{a.url}#{path.name}", "outlet": "background",
                      "date": "2005-01-01", "language": "", "story": f"background:{a.key}"}
                     for a in normalize_entries(parsed.entries))
    return items


def published(item: dict) -> datetime:
    """The labelled time; a day alone is taken at noon UTC, plus a few minutes by URL so that one day's items keep
    a stable order."""
    if len(item["date"]) > 10:
        return datetime.fromisoformat(item["date"]).astimezone(UTC)
    day = datetime.fromisoformat(item["date"]).replace(tzinfo=UTC)
    return day + timedelta(hours=12, minutes=int(hashlib.sha1(item["url"].encode()).hexdigest(), 16) % 240)


def store_stories(items: Sequence[dict], db: Path | str, background: Sequence[dict] = ()) -> dict[str, int]:
    """Store ``items`` through the real store, a day at a time; their story ids by URL. ``background`` items are
    stored first, as one day ten years before the set (they count for document frequencies only)."""
    items = [*({**i, "date": "2005-01-01", "outlet": "background"} for i in background), *items]
    rules = load_rules(TOPICS)
    tagger = rules.tagger(learned=False)
    engine = open_database(db if isinstance(db, str) else f"sqlite:///{db}")  # a path, or a database URL
    outlets = {i["outlet"]: f"s{n}" for n, i in enumerate(sorted(items, key=lambda i: i["outlet"]))}
    with Session(engine) as session, session.begin():
        session.add_all(m.Source(id=sid, name=name) for name, sid in outlets.items())
        sync_config(session, [], rules.topics, rules.entities)
    by_day: dict[str, dict[str, list[Article]]] = defaultdict(lambda: defaultdict(list))
    for item in sorted(items, key=published):
        when = published(item)
        result = tagger.tag(item["title"], item["summary"])
        article = Article(key=hashlib.sha1(item["url"].encode()).hexdigest(), url=item["url"], guid=None,
                          title=item["title"], summary=item["summary"], published=when,
                          tags=result.topics, entities=result.entities)
        by_day[when.date().isoformat()][outlets[item["outlet"]]].append(article)
    for day in sorted(by_day):
        fetched = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1)
        fetches = [FeedFetch(feed_id=None, source_id=sid, url=f"archive:{sid}", fetched=fetched, interval=3600,
                             status=200, articles=articles) for sid, articles in by_day[day].items()]
        for result in save_fetches(engine, fetches):
            if isinstance(result, Exception):
                raise result
    with Session(engine) as session:
        stories = {url: story for url, story in session.execute(select(m.Item.url, m.Item.story_id))}
    engine.dispose()
    return stories


@dataclass
class Figures:
    items: int
    pairs: int  # labelled same-story pairs
    precision: float
    recall: float
    xlang_pairs: int
    xlang_recall: float
    max_events: int  # the most labelled stories (events) one stored story holds

    def row(self, name: str) -> str:
        return (f"{name:<28} {self.items:>5} {self.pairs:>6} {self.precision:>9.2f} {self.recall:>6.2f} "
                f"{self.xlang_pairs:>6} {self.xlang_recall:>6.2f} {self.max_events:>10}")

    @staticmethod
    def header() -> str:
        return (f"{'':<28} {'items':>5} {'pairs':>6} {'precision':>9} {'recall':>6} {'xpairs':>6} {'xrecall':>6} "
                f"{'max events':>10}")


def figures(items: Iterable[dict], stories: dict[str, int]) -> Figures:
    """Pairwise figures of stored story ids against the labelled stories."""
    labelled = [i for i in items if not i.get("ambiguous")]
    tp = fp = fn = xl = xl_found = 0
    for a, b in itertools.combinations(labelled, 2):
        truth, found = a["story"] == b["story"], stories[a["url"]] == stories[b["url"]]
        tp += truth and found
        fp += found and not truth
        fn += truth and not found
        if truth and {a["language"], b["language"]} == {"en", "zh"}:
            xl += 1
            xl_found += found
    events: dict[int, set[str]] = defaultdict(set)  # labelled stories (events) by stored story
    for i in labelled:
        events[stories[i["url"]]].add(i["story"])
    return Figures(len(labelled), tp + fn, tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0,
                   xl, xl_found / xl if xl else 1.0, max(map(len, events.values()), default=0))
