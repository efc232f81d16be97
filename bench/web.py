"""The workbench at archive scale: response times of its pages and of searches over N items (issue 20).

    .venv/bin/python bench/web.py [--items 200000] [--database sqlite|postgresql] [--requests 20] [--keep PATH|NAME]

Builds a database of N items from the real corpus (bench/feedfarm.py's documents: feed i is corpus file i % 57 with
its URL hosts prefixed by "c<i>.", so each corpus item recurs with its own URL), stored with the real store
(story clustering included) and tagged with the shipped topics; indexes it (store.search.catch_up); serves the app
with uvicorn on 127.0.0.1 and times each URL REQUESTS times with httpx (sequential; p50 and p95 in ms). Figures
only; nothing is asserted. PostgreSQL: a scratch database on 127.0.0.1:5432 (TALENTWATCH_TEST_PG), dropped after;
vacuumed and analyzed once built, as autovacuum (on by default) would have it by then: without statistics the
planner guesses (/items took 48 ms instead of 20, /api/items?entity=china 80 instead of 11).

--keep keeps the built database for the next run instead: a file for SQLite, a database name for PostgreSQL. If it
already exists it is reused as it is (migrated to the latest revision first; --items is then ignored), which saves
the minutes of building while iterating on the app.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

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
    corpus = farm.load_corpus(farm.CORPUS)
    rules = load_rules(DEFAULTS_DIR / "topics.toml")
    tagger = rules.tagger()
    engine = open_database(url)
    feeds = 0
    with Session(engine) as session, session.begin():
        sync_config(session, [], rules.topics, rules.entities)
    stored = 0
    started = time.process_time()
    batch: list[FeedFetch] = []
    while stored < n:
        doc = corpus[feeds % len(corpus)]
        parsed = parse_feed(farm.feed_body(doc, feeds), {"content-type": doc.content_type,
                                                         "content-location": f"http://127.0.0.1/feed/{feeds}.xml"})
        articles = normalize_entries(parsed.entries)
        for a in articles:
            tag_article(tagger, a)
        source = f"bench-{feeds // 20:04d}"
        if feeds % 20 == 0:
            with Session(engine) as session, session.begin():
                session.add(m.Source(id=source, name=source))
        batch.append(FeedFetch(feed_id=None, source_id=source, url=f"http://x/{feeds}", fetched=datetime.now(UTC),
                               interval=1800, status=200, articles=articles[:n - stored]))
        stored += len(batch[-1].articles)
        feeds += 1
        if len(batch) == 16 or stored >= n:
            save_fetches(engine, batch)
            batch = []
    print(f"stored {stored} items from {feeds} feeds: {time.process_time() - started:.1f} s CPU", flush=True)
    started = time.perf_counter()
    indexed = catch_up(engine)
    print(f"indexed {indexed} items: {time.perf_counter() - started:.1f} s", flush=True)
    if engine.dialect.name == "postgresql":  # what autovacuum (on by default; off on the test server) does after a load
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def measure(url: str, requests: int) -> None:
    from test_web import Server

    server = Server(create_app(open_database(url), DEFAULTS_DIR / "topics.toml"))
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
        measure(url, args.requests)
        return 0
    if args.database == "postgresql":
        from conftest import scratch_database

        with scratch_database("tw_bench_web") as url:
            build(url, args.items)
            measure(url, args.requests)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'web.db'}"
        build(url, args.items)
        measure(url, args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
