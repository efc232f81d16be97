"""Benchmark a poll cycle (DESIGN.md section 4): N feeds built from the real corpus, served on loopback.

    .venv/bin/python bench/poll.py [--feeds 1000] [--latency-ms 50] [--keep DIR]

Feed i is corpus file i % 57 with every URL's host prefixed by "c<i>." (namespace URIs left alone), so each copy
stores its own items. A separate process (bench/feedfarm.py) serves them with a fixed latency, ETag and
Last-Modified, and answers 304 to a matching If-None-Match. `talentwatch crawl` then runs twice as users run it
(full cycle, then the unchanged all-304 cycle), each in a fresh child process measured with os.wait4 (CPU, peak
RSS). Finally feedparser's own cost for the same documents is measured in this process. Prints figures; asserts
nothing about timing.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import feedparser
from feedfarm import CORPUS, Doc, feed_body, load_corpus, query, start_farm, talentwatch_command, write_config

from crawler.feedparse import parse_feed
from pipelines.normalize import normalize_entries

FAST = {"sanitize_html": False, "resolve_relative_uris": False}


@dataclass
class Cycle:
    label: str
    wall: float
    cpu: float
    rss_mb: float
    new_items: int
    statuses: str
    errors: int
    summary: str
    load: float  # 1-minute load average when the cycle ended: other work on the machine inflates wall times


# ---- the measured crawls ------------------------------------------------------------------------------------------

def run_cycle(label: str, work: Path, config: Path) -> Cycle:
    db = work / "talentwatch.db"
    before = query(db, "select count(*) from items")[0][0] if db.exists() else 0
    log = work / f"{label}.log"
    env = {**os.environ, "TALENTWATCH_HOME": str(work), "COLUMNS": "200"}
    with open(log, "w", encoding="utf-8") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([*talentwatch_command(), "--config", str(config), "crawl"], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU and peak RSS
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text(encoding="utf-8")
    if proc.returncode != 0:
        print(f"{label}: talentwatch exited {proc.returncode}:\n{output[-3000:]}", file=sys.stderr)
    statuses = query(db, "select coalesce(last_status, 'none'), count(*) from feeds group by 1 order by 1")
    return Cycle(label, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                 query(db, "select count(*) from items")[0][0] - before,
                 ", ".join(f"{n} x {s}" for s, n in statuses),
                 query(db, "select count(*) from feeds where last_error is not null")[0][0],
                 output.strip().splitlines()[0] if output.strip() else "(no output)", os.getloadavg()[0])


# ---- feedparser's own cost ------------------------------------------------------------------------------------------

def feedparser_cost(corpus: list[Doc], n: int) -> dict[str, float]:
    """CPU seconds of feedparser over the N documents (each distinct one parsed once, times its multiplicity),
    plus the entries feedparser finds and the items talentwatch should store (distinct normalized keys)."""
    totals = {"default": 0.0, "fast": 0.0, "entries": 0, "expected": 0, "bytes": 0}
    for j, doc in enumerate(corpus):
        copies = len(range(j, n, len(corpus)))
        if not copies:
            continue
        body = feed_body(doc, j)
        headers = {"content-type": doc.content_type, "content-location": f"http://127.0.0.1/feed/{j}.xml"}
        for label, options in (("default", {}), ("fast", FAST)):
            started = time.process_time()
            parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, **options)
            totals[label] += (time.process_time() - started) * copies
        totals["entries"] += len(parsed.entries) * copies
        totals["expected"] += len(normalize_entries(parse_feed(body, headers).entries)) * copies
        totals["bytes"] += len(body) * copies
    return totals


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feeds", type=int, default=1000, metavar="N", help="number of feeds (default 1000)")
    p.add_argument("--latency-ms", type=float, default=50.0, help="added to every response (default 50)")
    p.add_argument("--hosts", type=int, default=64, help="loopback addresses 127.0.0.1..K to spread feeds over")
    p.add_argument("--keep", metavar="DIR", help="keep config, database and logs in DIR (else a temp dir)")
    p.add_argument("--corpus", type=Path, default=CORPUS, help=f"corpus feeds folder (default {CORPUS})")
    args = p.parse_args()
    n, corpus = args.feeds, load_corpus(args.corpus)

    print(f"feedparser {feedparser.__version__}: parsing the {n} documents in-process ...", flush=True)
    fp = feedparser_cost(corpus, n)
    print(f"{n} feeds from {len(corpus)} corpus files: {fp['bytes'] / n / 1024:.0f} KB and "
          f"{fp['entries'] / n:.1f} entries per feed on average; {fp['expected']} items expected.")

    server, hosts, urls = start_farm(corpus, n, args.hosts, args.latency_ms / 1000)
    print(f"serving on {len(hosts)} loopback addresses ({hosts[0]}..{hosts[-1]}), {args.latency_ms:g} ms latency: "
          "Scrapy allows 4 concurrent requests per host (CONCURRENT_REQUESTS_PER_DOMAIN), so [crawl] concurrency "
          "= 16 is the only limit, as with many real outlets.", flush=True)

    with tempfile.TemporaryDirectory(prefix="talentwatch-bench-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / "talentwatch.db").unlink(missing_ok=True)
        config = write_config(work, urls)
        try:
            cycles = [run_cycle("full", work, config), run_cycle("all-304", work, config)]
        finally:
            server.terminate()
            server.join()
        floor = n * args.latency_ms / 1000 / 16

    print(f"\n{'cycle':<9}{'wall s':>8}{'feeds/s':>9}{'new items':>11}{'items/s':>9}{'CPU s':>8}"
          f"{'CPU ms/item':>13}{'peak RSS MB':>13}")
    for c in cycles:
        per_item = f"{c.cpu / c.new_items * 1000:.2f}" if c.new_items else "-"
        print(f"{c.label:<9}{c.wall:>8.2f}{n / c.wall:>9.1f}{c.new_items:>11}{c.new_items / c.wall:>9.0f}"
              f"{c.cpu:>8.2f}{per_item:>13}{c.rss_mb:>13.0f}")
    print(f"\nfeedparser, in-process, same {n} documents ({fp['entries']} entries):")
    for label, what in (("default", "defaults"), ("fast", "sanitize_html=False, resolve_relative_uris=False")):
        print(f"  {what:<50} {fp[label]:7.2f} s CPU  {fp[label] / n * 1000:7.2f} ms/feed  "
              f"{fp[label] / fp['entries'] * 1000:6.3f} ms/entry")
    print(f"\nnetwork floor ({n} x {args.latency_ms:g} ms at concurrency 16): {floor:.2f} s")
    for c in cycles:
        print(f"{c.label}: {c.summary}\n  feeds by last HTTP status: {c.statuses}; feeds with an error: {c.errors}; "
              f"load average at the end {c.load:.2f} on {os.cpu_count()} CPUs")
    if cycles[0].new_items != fp["expected"] or cycles[1].new_items:
        print(f"WARNING: expected {fp['expected']} new items in the full cycle and 0 in the all-304 cycle, "
              f"got {cycles[0].new_items} and {cycles[1].new_items}")
    if args.keep:
        print(f"config, database and logs kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
