"""The workbench at archive scale: response times of its pages and of searches over N items (issue 20).

    .venv/bin/python bench/web.py [--items 200000] [--database sqlite|postgresql] [--requests 20]
                                  [--keep PATH|NAME] [--no-crawl]

Builds a database of N items from the real corpus (bench/feedfarm.py's documents: feed i is corpus file i % 57 with
its URL hosts prefixed by "c<i>.", so each corpus item recurs with its own URL), stored with the real store
(story clustering included) and tagged with the shipped topics; indexes it (store.search.catch_up); serves the app
with uvicorn on 127.0.0.1 and times each URL REQUESTS times with httpx (sequential; p50 and p95 in ms), while a
crawl's writes go on beside it (another process storing new items as fast as the store takes them, indexed every
2,000; ``--no-crawl`` measures without). Figures
only; nothing is asserted. PostgreSQL: a scratch database on 127.0.0.1:5432 (TALENTWATCH_TEST_PG), dropped after;
vacuumed and analyzed once built, as autovacuum (on by default) would have it by then: without statistics the
planner guesses (/items took 48 ms instead of 20, /api/items?entity=china 80 instead of 11).

--keep keeps the built database for the next run instead: a file for SQLite, a database name for PostgreSQL. If it
already exists it is reused as it is (migrated to the latest revision first; --items is then ignored), which saves
the minutes of building while iterating on the app.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: this file's name would hide the web package
sys.path[1:1] = [str(ROOT / "tests"), str(ROOT / "bench")]

import feedfarm as farm  # noqa: E402
import httpx  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from crawler.feedparse import parse_feed  # noqa: E402
from crawler.items import FeedFetch  # noqa: E402
from pipelines.normalize import normalize_entries  # noqa: E402
from pipelines.tag import tag_article  # noqa: E402
from pipelines.tagging.rules import load_rules  # noqa: E402
from store import models as m  # noqa: E402
from store.db import make_engine, open_database, upgrade  # noqa: E402
from store.queries import save_fetches, sync_config  # noqa: E402
from store.search import catch_up  # noqa: E402
from talentwatch.config import DEFAULTS_DIR  # noqa: E402
from web.app import create_app  # noqa: E402

URLS = [
    "/", "/items", "/items?page=40", "/items?tag=poaching", "/api/items", "/api/items?entity=china",
    "/trends", "/sources",
    "/api/items?q=deepseek", "/api/items?q=" + httpx.QueryParams({"x": '"export controls"'})["x"],
    "/api/items?q=" + "(talent OR engineer*) NEAR/5 (poach* OR recruit*)",
    "/api/items?q=" + "chip* NEAR/3 export*", "/api/items?q=英伟达", "/items?q=" + "nvidia AND licen*",
]


def build(url: str, n: int) -> None:
    rules = load_rules(DEFAULTS_DIR / "topics.toml")
    engine = open_database(url)
    with Session(engine) as session, session.begin():
        sync_config(session, [], rules.topics, rules.entities)
    started = time.process_time()
    stored, feeds = store_feeds(engine, rules.tagger(), 0, lambda stored: stored >= n, limit=n)
    print(f"stored {stored} items from {feeds} feeds: {time.process_time() - started:.1f} s CPU", flush=True)
    started = time.perf_counter()
    indexed = catch_up(engine)
    print(f"indexed {indexed} items: {time.perf_counter() - started:.1f} s", flush=True)
    if engine.dialect.name == "postgresql":  # what autovacuum (on by default; off on the test server) does after a load
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def store_feeds(engine: Any, tagger: Any, first: int, done: Any, limit: int | None = None) -> tuple[int, int]:
    """Store the farm's feeds from number ``first`` on (16 to a transaction, as a crawl does) until ``done(stored)``;
    returns the items stored and the feeds read."""
    corpus = farm.load_corpus(farm.CORPUS)
    stored, feeds = 0, first
    batch: list[FeedFetch] = []
    while not done(stored):
        doc = corpus[feeds % len(corpus)]
        parsed = parse_feed(farm.feed_body(doc, feeds), {"content-type": doc.content_type,
                                                         "content-location": f"http://127.0.0.1/feed/{feeds}.xml"})
        articles = normalize_entries(parsed.entries)
        for a in articles:
            tag_article(tagger, a)
        source = f"bench-{feeds // 20:04d}"
        if feeds % 20 == 0 or feeds == first:
            with Session(engine) as session, session.begin():
                session.merge(m.Source(id=source, name=source))
        keep = articles if limit is None else articles[:limit - stored]
        batch.append(FeedFetch(feed_id=None, source_id=source, url=f"http://x/{feeds}", fetched=datetime.now(UTC),
                               interval=1800, status=200, articles=keep))
        stored += len(keep)
        feeds += 1
        if len(batch) == 16 or done(stored):
            save_fetches(engine, batch)
            batch = []
    return stored, feeds - first


def crawl_beside(url: str, stop: Any, counted: Any) -> None:
    """A crawl's writes beside the server (a process of its own, as `talentwatch run` is): new items of feeds the
    build did not use, stored as fast as the store takes them, indexed every 2,000 items, until ``stop``."""
    rules = load_rules(DEFAULTS_DIR / "topics.toml")
    engine = open_database(url)
    total, feed = 0, 1_000_000
    while not stop.is_set():
        stored, feeds = store_feeds(engine, rules.tagger(), feed, lambda n: n >= 2000 or stop.is_set())
        catch_up(engine)
        total, feed = total + stored, feed + feeds
        counted.value = total
    engine.dispose()


def measure(url: str, requests: int, crawl: bool = True) -> None:
    from test_web import Server

    server = Server(create_app(open_database(url), DEFAULTS_DIR / "topics.toml"))
    context = multiprocessing.get_context("spawn")
    stop, counted = context.Event(), context.Value("q", 0)
    writer = context.Process(target=crawl_beside, args=(url, stop, counted), daemon=True) if crawl else None
    started = time.perf_counter()
    if writer:
        writer.start()
        time.sleep(5)  # the writer under way
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            print(f"{'URL':<72} {'p50 ms':>8} {'p95 ms':>8} {'result':>10}")
            for path in URLS:
                times = []
                for _ in range(requests):
                    t = time.perf_counter()
                    response = client.get(path)
                    times.append((time.perf_counter() - t) * 1e3)
                result = response.json().get("total", "") if path.startswith("/api") else response.status_code
                p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]
                print(f"{path[:72]:<72} {statistics.median(times):>8.0f} {p95:>8.0f} {result!s:>10}", flush=True)
    finally:
        server.stop()
        if writer:
            stop.set()
            writer.join(300)
            print(f"beside it, a crawl stored {counted.value} new items in {time.perf_counter() - started:.0f} s",
                  flush=True)


def reuse(url: str) -> None:
    """Bring a kept database to the latest revision and say how many items it holds."""
    engine = make_engine(url)
    before, after = upgrade(engine)
    with engine.connect() as conn:
        n = conn.scalar(select(func.count()).select_from(m.Item))
    print(f"reusing {url}: {n} items (revision {before} -> {after})", flush=True)
    engine.dispose()


def kept_postgresql(name: str) -> tuple[str, bool]:
    """The URL of the kept PostgreSQL database NAME, created if it does not exist, and whether it was."""
    from conftest import PG_ADMIN_URL

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("select 1 from pg_database where datname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", not exists


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=200_000)
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--no-crawl", action="store_true", help="measure without a crawl storing items beside the server")
    p.add_argument("--keep", metavar="PATH|NAME",
                   help="keep the database (SQLite file, PostgreSQL database name) and reuse it if it exists")
    args = p.parse_args()
    if args.keep:
        if args.database == "postgresql":
            url, new = kept_postgresql(args.keep)
        else:
            path = Path(args.keep).resolve()
            url, new = f"sqlite:///{path}", not path.exists()
        if new:
            build(url, args.items)
        else:
            reuse(url)
        measure(url, args.requests, not args.no_crawl)
        return 0
    if args.database == "postgresql":
        from conftest import scratch_database

        with scratch_database("tw_bench_web") as url:
            build(url, args.items)
            measure(url, args.requests, not args.no_crawl)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'web.db'}"
        build(url, args.items)
        measure(url, args.requests, not args.no_crawl)
    return 0


if __name__ == "__main__":
    sys.exit(main())
