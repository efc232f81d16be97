"""Story assignment stays linear when many outlets carry one text (store/stories.py), and parse workers end when
the process that owns their pool is killed (crawler/parsepool.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawler.items import Article, FeedFetch
from store import models as m
from store.db import open_database
from store.queries import save_fetches

WHEN = datetime(2026, 2, 16, 12, tzinfo=UTC)
WIRE = ("Peru's Congress ousts interim President Jeri after four months",
        "Lawmakers voted to remove the interim president over a corruption scandal, the latest in a run of leaders "
        "to fall in the Andean country.")
OTHER = ("Nvidia resumes H20 chip sales to China", "The chipmaker said export licences had been granted.")


def _article(n: int, title: str, summary: str, when: datetime) -> Article:
    return Article(key=f"{n:040d}", url=f"https://outlet{n}.example/{n}", guid=None, title=title, summary=summary,
                   published=when)


def _fetch(source: str, articles: list[Article]) -> FeedFetch:
    return FeedFetch(feed_id=None, source_id=source, url=f"https://{source}.example/feed", fetched=WHEN,
                     interval=1800, status=200, articles=articles)


def test_items_sharing_common_words_compare_with_a_bounded_number_of_candidates(tmp_path: Path,
                                                                               monkeypatch) -> None:
    """A feed of thousands of look-alike items ("Item 1", "Item 2", ...) shares the key of "item" across all of
    them: each new item compares with at most ``PER_KEY`` stories a key, not with every earlier item."""
    from pipelines import cluster
    from store import stories

    calls = 0
    real = cluster.score

    def counted(*args):  # noqa: ANN002, ANN202 - the real score, counted
        nonlocal calls
        calls += 1
        return real(*args)

    monkeypatch.setattr(cluster, "score", counted)
    engine = open_database(f"sqlite:///{tmp_path / 'tw.db'}")
    with Session(engine) as session, session.begin():
        session.add(m.Source(id="s", name="s"))
    n = 3000
    articles = [_article(i, f"Item {i}", f"About item {i}", WHEN - timedelta(minutes=i)) for i in range(n)]
    for first in range(0, n, 1000):  # three transactions: candidates come from the store and from the batch
        results = save_fetches(engine, [_fetch("s", articles[first:first + 1000])])
        assert not any(isinstance(r, Exception) for r in results)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).where(m.Item.story_id.is_not(None))) == n
    assert 0 < calls <= n * (cluster.INDEX_TERMS + 1) * stories.PER_KEY
    assert calls < n * n / 20  # comparing every pair would be n * n / 2
    engine.dispose()


def test_copies_join_one_story_and_record_no_keys(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'tw.db'}")
    sources = [f"s{i:02d}" for i in range(20)]
    with Session(engine) as session, session.begin():
        session.add_all(m.Source(id=s, name=s) for s in sources)
    # one wire text from 18 outlets, a few minutes apart, in three transactions; an unrelated item; a copy of the
    # wire text two weeks later (outside the window: a story of its own)
    batches = [[_fetch(sources[i], [_article(i, *WIRE, WHEN + timedelta(minutes=i))]) for i in range(k, k + 6)]
               for k in (0, 6, 12)]
    batches.append([_fetch(sources[18], [_article(18, *OTHER, WHEN)]),
                    _fetch(sources[19], [_article(19, *WIRE, WHEN + timedelta(days=14))])])
    for batch in batches:
        assert not any(isinstance(r, Exception) for r in save_fetches(engine, batch))
    with Session(engine) as session:
        stories = {key: story for key, story in session.execute(select(m.Item.key, m.Item.story_id))}
        first = session.scalar(select(m.Item.id).where(m.Item.key == f"{0:040d}"))
        keyed = session.scalar(select(func.count(func.distinct(m.StoryKey.item_id))))
    assert {stories[f"{i:040d}"] for i in range(18)} == {first}  # all copies in the first one's story
    assert stories[f"{18:040d}"] != first and stories[f"{19:040d}"] != first
    assert keyed == 3  # the first copy, the unrelated item, the late copy: the 17 copies record no keys
    engine.dispose()


def test_workers_end_when_the_pool_owner_is_killed(tmp_path: Path) -> None:
    """A daemon killed with SIGKILL cannot stop its pool: the workers and their fork server end themselves."""
    script = tmp_path / "owner.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from crawler import parsepool

        if __name__ == "__main__":
            parsepool._start(2)
            print(" ".join(str(p) for p in parsepool._executor._processes), flush=True)
            time.sleep(600)
    """))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        workers = [int(p) for p in owner.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers)
    finally:
        if owner.poll() is None:
            owner.kill()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
