"""Stories on the labelled story set (tests/data/stories/set.jsonl, put through the real store by tests/storyset.py),
and re-clustering: an edited item, a re-crawled range, document frequencies that stay right.

The held-out part of the set (events of families the method was never tuned on) must keep its figures: FLOORS
below are the measured figures, rounded down; tests/data/stories/set.jsonl's composition is checked too.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import storyset
from conftest import need_corpus
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawler.items import Article, FeedFetch
from store import models as m
from store.db import open_database
from store.queries import save_fetches
from store.recrawl import recluster

# held-out figures the method must keep (with a background archive), rounded down: measured 0.86, 0.60, 0.52 before
# fresh-stories-3 joined the held-out part, 0.75, 0.61, 0.55 with it, 0.75, 0.59, 0.52 with fresh-stories-4 too,
# 0.765, 0.600, 0.527 with fresh-stories-5 too (dense weeks of one company's news, often in Chinese, chain hard
# negatives); average link instead of the centroid's cosine: 0.782, 0.620, 0.539 on the same items, and 0.795, 0.609,
# 0.527 with fresh-stories-6 too, and 0.794, 0.610, 0.538 with fresh-stories-7 too, where one stored story holds
# four labelled ones (a dense September 2025 week of Nvidia news: PPU, Nscale, the CAC's halt, Intel). The issue's
# targets (precision 0.90, recall 0.75, cross-language recall 0.50, no story of more than 3 events) are not all
# reached; on the fresh batches, which the method never saw: fresh-stories-2 0.87, 0.54, 0.34; fresh-stories-3 0.74,
# 0.77, 0.81; fresh-stories-4 0.77, 0.50, 0.45; fresh-stories-5 0.83, 0.69, 0.61; fresh-stories-6 (average link)
# 0.96, 0.63, 0.56; fresh-stories-7 0.90, 0.70, 0.71; fresh-stories-8 0.97, 0.74, 0.70, and with the English glosses
# of Chinese words 0.97, 0.84, 0.84. With fresh-stories-8 in the held-out part: 0.820, 0.621, 0.554 and 4 events
# without the glosses, 0.877, 0.710, 0.702 and 3 events with them. Decaying by e every two days instead of every day:
# fresh-stories-9 0.987, 0.609, 0.488 -> 0.988, 0.641, 0.535; with it in the held-out part 0.878, 0.701, 0.681 ->
# 0.859, 0.747, 0.735, 3 events. The shipped method on fresh-stories-10 (dense families of hard negatives): 0.77, 0.76,
# 0.62; with it in the held-out part 0.856, 0.746, 0.725, 3 events.
FLOORS = {"precision": 0.85, "recall": 0.74, "xlang_recall": 0.72}
MAX_EVENTS = 3  # no stored story may join more labelled stories than this (the target)


def test_the_set_has_the_stories_the_targets_need() -> None:
    items = storyset.load()
    assert len(items) >= 400 and len({i["url"] for i in items}) == len(items)
    stories: defaultdict[str, list[dict]] = defaultdict(list)
    for i in items:
        stories[i["story"]].append(i)
        assert i["date"][:4].isdigit() and i["url"].startswith("http") and i["outlet"], i
    assert sum(len(v) > 1 for v in stories.values()) >= 80
    xlang = sum(1 for v in stories.values() for a in v for b in v if (a["language"], b["language"]) == ("zh", "en"))
    assert xlang >= 60
    for story, members in stories.items():  # held-out stories are kept apart: no story straddles the split
        assert len({i["split"] for i in members}) == 1, story


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> storyset.Figures:
    """The held-out stories, stored after a background archive (the shared corpus's items, for document
    frequencies: a real store holds thousands of items)."""
    items = storyset.load(split="holdout")
    background = storyset.background(need_corpus())
    stories = storyset.store_stories(items, tmp_path_factory.mktemp("stories") / "holdout.db", background)
    return storyset.figures(items, stories)


def test_held_out_figures(held_out: storyset.Figures) -> None:
    print(f"\n{storyset.Figures.header()}\n{held_out.row('holdout')}")
    assert held_out.precision >= FLOORS["precision"], held_out
    assert held_out.recall >= FLOORS["recall"], held_out
    assert held_out.xlang_recall >= FLOORS["xlang_recall"], held_out
    assert held_out.max_events <= MAX_EVENTS, held_out


WHEN = datetime(2026, 3, 2, 9, tzinfo=UTC)
H20 = ("Nvidia wins licence to resume H20 chip sales to China", "The US Commerce Department granted Nvidia licences "
       "to ship its H20 accelerators to Chinese customers, the company said on Monday.")
H20_AGAIN = ("Nvidia gets US licences to resume H20 sales to China", "Nvidia said the Commerce Department granted it "
             "licences to ship H20 accelerators to Chinese customers.")
MANUS = ("Meta's Manus deal draws Beijing review", "China's commerce ministry is reviewing Meta's purchase of the "
         "agent start-up Manus, weighing export rules on technology and talent.")
MANUS_AGAIN = ("Beijing reviews Meta's deal for Manus", "China's commerce ministry opened a review of Meta's "
               "purchase of the agent start-up Manus under its export rules.")


def _save(engine, source: str, key: str, title: str, summary: str, when: datetime) -> None:  # noqa: ANN001
    article = Article(key=hashlib.sha1(key.encode()).hexdigest(), url=f"https://{source}.example/{key}", guid=None,
                      title=title, summary=summary, published=when)
    fetch = FeedFetch(feed_id=None, source_id=source, url=f"https://{source}.example/feed", fetched=when,
                      interval=1800, status=200, articles=[article])
    assert not any(isinstance(r, Exception) for r in save_fetches(engine, [fetch]))


def _stories(engine) -> dict[str, int]:  # noqa: ANN001
    with Session(engine) as session:
        return {url.rsplit("/", 1)[1]: story for url, story in session.execute(select(m.Item.url, m.Item.story_id))}


def _counted(engine) -> tuple[int, int]:  # noqa: ANN001
    """Items counted in term_counts, and items that recorded keys: always equal."""
    with Session(engine) as session:
        total = session.scalar(select(m.TermCount.df).where(m.TermCount.key == 0)) or 0
        keyed = session.scalar(select(func.count(func.distinct(m.StoryKey.item_id))))
    return total, keyed


FILLER = 60  # earlier items of other news: document frequencies need an archive


def _archive(engine) -> None:  # noqa: ANN001
    with Session(engine) as session, session.begin():
        session.add_all(m.Source(id=s, name=s) for s in ("a", "b", "c", "old"))
    rng = random.Random(3)
    words = ("council budget river bridge school teachers strike election mayor harbour festival museum storm rail "
             "hospital nurses court ruling football coach wages housing rents airport tourism farmers drought "
             "police vote tax park library orchestra").split()
    for i in range(FILLER):
        title, summary = " ".join(rng.sample(words, 6)), " ".join(rng.sample(words, 12))
        _save(engine, "old", f"old{i}", title, summary, WHEN - timedelta(days=30, hours=i))


@pytest.fixture
def engine(tmp_path: Path):  # noqa: ANN201
    engine = open_database(f"sqlite:///{tmp_path / 'tw.db'}")
    _archive(engine)
    yield engine
    engine.dispose()


def test_an_edited_item_moves_to_the_story_it_now_reports(engine) -> None:  # noqa: ANN001
    _save(engine, "a", "h20", *H20, WHEN)
    _save(engine, "b", "manus", *MANUS, WHEN + timedelta(hours=1))
    _save(engine, "c", "x", *H20_AGAIN, WHEN + timedelta(hours=2))
    before = _stories(engine)
    assert before["x"] == before["h20"] != before["manus"]
    _save(engine, "c", "x", *MANUS_AGAIN, WHEN + timedelta(hours=2))  # the same URL, another text: an edit
    after = _stories(engine)
    assert after["x"] == after["manus"] != after["h20"]
    assert _counted(engine) == (FILLER + 3, FILLER + 3)  # the old text's counts were taken back


def test_recluster_recomputes_a_range_and_keeps_unchanged_story_ids(engine) -> None:  # noqa: ANN001
    _save(engine, "a", "h20", *H20, WHEN)
    _save(engine, "b", "manus", *MANUS, WHEN + timedelta(hours=1))
    _save(engine, "c", "h20b", *H20_AGAIN, WHEN + timedelta(hours=2))
    _save(engine, "c", "manusb", *MANUS_AGAIN, WHEN + timedelta(hours=3))
    before = _stories(engine)
    assert recluster(engine, ["a", "b", "c"], WHEN - timedelta(days=1), WHEN + timedelta(days=1)) == 2
    assert _stories(engine) == before  # same items, same stories: same ids
    assert _counted(engine) == (FILLER + 4, FILLER + 4)
    with engine.begin() as conn:  # as an older method might have left them: everything in one story
        conn.execute(m.Item.__table__.update().where(m.Item.source_id != "old").values(story_id=before["h20"]))
    recluster(engine, ["a", "b", "c"], WHEN - timedelta(days=1), WHEN + timedelta(days=1))
    assert _stories(engine) == before and _counted(engine) == (FILLER + 4, FILLER + 4)


def test_items_stored_by_an_earlier_method_recluster_with_todays_features(engine, monkeypatch) -> None:  # noqa: ANN001
    """Chinese items stored before their words had English glosses: forgetting them takes back counts they never
    added (a stored count may go below 0: it reads as 0, never as a broken weight, which would fail the store), and
    reclustering counts them again with today's features."""
    from pipelines import cluster
    from store import stories

    zh = ("英伟达获美国许可恢复向中国出售H20芯片", "美国商务部向英伟达发放许可证,允许其向中国客户出口H20加速器。")
    zh_again = ("美国批准英伟达向中国出售H20芯片", "英伟达表示,美国商务部已批准其向中国客户出口H20加速器的许可证。")
    with monkeypatch.context() as old_method:
        old_method.setattr(cluster, "glosses", lambda text: [])
        stories._text.cache_clear()
        _save(engine, "a", "zh", *zh, WHEN)
        _save(engine, "c", "zh-old", *zh_again, WHEN + timedelta(minutes=30))
    stories._text.cache_clear()
    _save(engine, "b", "en", *H20, WHEN + timedelta(hours=1))
    recluster(engine, ["a", "c"], WHEN - timedelta(days=1), WHEN + timedelta(days=1))
    with engine.begin() as conn:  # both forgotten again, as an edit or a second recrawl would
        stories.forget(Session(bind=conn), [i for i, in conn.execute(
            select(m.Item.id).where(m.Item.source_id.in_(["a", "c"])))])
        stored = dict(conn.execute(select(m.TermCount.key, m.TermCount.df)).all())
        df, _ = stories._counts(Session(bind=conn), cluster.features(*zh))
    assert min(stored.values()) < 0 <= min(df.values())  # below 0 in the table, read as 0
    recluster(engine, ["a", "b", "c"], WHEN - timedelta(days=1), WHEN + timedelta(days=1))
    assert _counted(engine) == (FILLER + 3, FILLER + 3)
    with Session(engine) as session:
        df, _ = stories._counts(session, cluster.features(*zh))
    assert min(df.values()) >= 0 and df["h20"] == 3  # what all three share is counted once for each


def test_document_frequencies_on_postgresql(pg_url: str) -> None:
    """The upsert of term_counts is dialect-specific: the same counts on PostgreSQL."""
    engine = open_database(pg_url)
    _archive(engine)
    _save(engine, "a", "h20", *H20, WHEN)
    _save(engine, "b", "manus", *MANUS, WHEN + timedelta(hours=1))
    _save(engine, "c", "x", *H20_AGAIN, WHEN + timedelta(hours=2))
    _save(engine, "c", "x", *MANUS_AGAIN, WHEN + timedelta(hours=2))
    stories = _stories(engine)
    assert stories["x"] == stories["manus"] != stories["h20"] and _counted(engine) == (FILLER + 3, FILLER + 3)
    engine.dispose()
