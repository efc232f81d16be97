"""Benchmark a poll cycle (DESIGN.md section 4): N feeds built from the real corpus, served on loopback.

    .venv/bin/python bench/poll.py [--feeds 1000] [--latency-ms 50] [--keep DIR]

Feed i is corpus file i % 57 with every URL's host prefixed by "c<i>." (namespace URIs left alone), so each copy
stores its own items. A separate process serves them with a fixed latency, ETag and Last-Modified, and answers 304
to a matching If-None-Match. `talentwatch crawl` then runs twice as users run it (full cycle, then the unchanged
all-304 cycle), each in a fresh child process measured with os.wait4 (CPU, peak RSS). Finally feedparser's own
cost for the same documents is measured in this process. Prints figures; asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import feedparser

from crawler.feedparse import parse_feed
from pipelines.normalize import normalize_entries

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds"
NOT_FEEDS = {"bloomberg-news-sitemap-2026-03.xml"}  # a sitemap, not a feed
CONTENT_TYPES = {"atom": "application/atom+xml", "rdf": "application/rdf+xml"}  # else application/rss+xml
URL = re.compile(rb"""(xmlns(?::[\w.-]+)?\s*=\s*["'])?(https?://)(?=[^/"'<>\s])""")
FAST = {"sanitize_html": False, "resolve_relative_uris": False}


@dataclass
class Doc:
    name: str
    body: bytes
    content_type: str


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


def load_corpus(folder: Path) -> list[Doc]:
    with open(folder / "MANIFEST.tsv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["file"] not in NOT_FEEDS]
    return [Doc(r["file"], (folder / r["file"]).read_bytes(), CONTENT_TYPES.get(r["format"], "application/rss+xml"))
            for r in sorted(rows, key=lambda r: r["file"])]


def feed_body(doc: Doc, i: int) -> bytes:
    """The document with every URL host (but no namespace URI) prefixed by c<i>., so its item URLs are unique."""
    tag = b"c%d." % i
    return URL.sub(lambda m: m.group(0) if m.group(1) else m.group(2) + tag, doc.body)


# ---- the feed server (runs in its own process) ------------------------------------------------------------------

def serve(corpus: list[Doc], n: int, hosts: list[str], latency: float, conn: multiprocessing.connection.Connection
          ) -> None:
    asyncio.run(_serve(corpus, n, hosts, latency, conn))


async def _serve(corpus: list[Doc], n: int, hosts: list[str], latency: float, conn) -> None:
    modified = formatdate(time.time() - 3600, usegmt=True)
    feeds = {}
    for i in range(n):
        doc = corpus[i % len(corpus)]
        body = feed_body(doc, i)
        feeds[f"/feed/{i}.xml"] = (body, f'"{hashlib.sha1(body).hexdigest()[:16]}"', doc.content_type)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # HTTP/1.1 keep-alive: one GET after another on the connection
                lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                path = lines[0].split()[1]
                headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                await asyncio.sleep(latency)
                body, etag, ctype = feeds.get(path, (b"not found", "", "text/plain"))
                status = "404 Not Found" if not etag else "200 OK"
                if etag and headers.get("if-none-match") == etag:
                    status, body = "304 Not Modified", b""
                head = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                        f"ETag: {etag}\r\nLast-Modified: {modified}\r\n\r\n")
                writer.write(head.encode("latin-1") + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(handle, host, 0) for host in hosts]
    conn.send([s.sockets[0].getsockname()[1] for s in servers])
    await asyncio.Event().wait()  # until the parent terminates this process


# ---- the measured crawls ------------------------------------------------------------------------------------------

def write_config(work: Path, urls: list[str], per_source: int = 20) -> Path:
    with open(work / "sources.toml", "w", encoding="utf-8") as f:
        for k in range(0, len(urls), per_source):
            feeds = ", ".join(f'"{u}"' for u in urls[k:k + per_source])
            f.write(f'[[source]]\nid = "bench-{k // per_source:03d}"\nfeeds = [{feeds}]\n\n')
    config = work / "talentwatch.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{work / "talentwatch.db"}"\n\n'
                      '[crawl]\nsources = "sources.toml"\nconcurrency = 16\n', encoding="utf-8")
    return config


def talentwatch_command() -> list[str]:
    script = Path(sys.executable).with_name("talentwatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "talentwatch.cli"]


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


def query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


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

    hosts = [f"127.0.0.{k}" for k in range(1, min(args.hosts, n, 254) + 1)]
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(corpus, n, hosts, args.latency_ms / 1000, child),
                                     daemon=True)
    server.start()
    ports = parent.recv()
    urls = [f"http://{hosts[i % len(hosts)]}:{ports[i % len(hosts)]}/feed/{i}.xml" for i in range(n)]
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
