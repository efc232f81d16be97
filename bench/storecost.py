"""The store's cost alone (store/queries.save_fetches with story clustering), in this process: the feed farm's N
documents (corpus file i % 57, URL hosts prefixed by "c<i>.", so every copy is its own items but the same story)
parsed and normalized once, then saved in batches as the store pipeline groups them. Prints seconds per 100 feeds
as the database fills, so that a cost growing with the number of stored copies shows.

    .venv/bin/python bench/storecost.py [--feeds 1000] [--batch 16] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import feedfarm as farm

from crawler.feedparse import parse_feed
from crawler.items import FeedFetch
from pipelines.normalize import normalize_entries
from store import models as m
from store.db import open_database
from store.queries import save_fetches


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feeds", type=int, default=1000)
    p.add_argument("--batch", type=int, default=16, help="fetches per transaction")
    p.add_argument("--profile", action="store_true", help="cProfile the saving; print the top functions")
    args = p.parse_args()
    corpus = farm.load_corpus(farm.CORPUS)
    fetches = []
    for i in range(args.feeds):
        doc = corpus[i % len(corpus)]
        parsed = parse_feed(farm.feed_body(doc, i), {"content-type": doc.content_type,
                                                      "content-location": f"http://127.0.0.1/feed/{i}.xml"})
        fetches.append(FeedFetch(feed_id=None, source_id=f"bench-{i // 20:03d}", url=f"http://x/{i}",
                                 fetched=datetime.now(UTC), interval=1800, status=200,
                                 articles=normalize_entries(parsed.entries)))
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        from sqlalchemy.orm import Session
        with Session(engine) as session, session.begin():
            for sid in sorted({f.source_id for f in fetches}):
                session.add(m.Source(id=sid, name=sid))
        profiler = cProfile.Profile() if args.profile else None
        started = lap = time.process_time()
        for k in range(0, len(fetches), args.batch):
            if profiler:
                profiler.enable()
            save_fetches(engine, fetches[k:k + args.batch])
            if profiler:
                profiler.disable()
            if (k + args.batch) // 100 != k // 100:
                now = time.process_time()
                print(f"  feeds {k + args.batch:>5}: {now - lap:6.2f} s CPU for the last ~100", flush=True)
                lap = now
        total = time.process_time() - started
        with engine.connect() as conn:
            items = conn.exec_driver_sql("select count(*) from items").scalar()
            stories = conn.exec_driver_sql("select count(distinct story_id) from items").scalar()
            keys = conn.exec_driver_sql("select count(*) from story_keys").scalar()
        print(f"{args.feeds} feeds: {items} items, {stories} stories, {keys} story keys; "
              f"{total:.2f} s CPU saving ({total / items * 1e3:.3f} ms/item)")
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
