"""Several daemons on one PostgreSQL database (issue 21): polls per second with 1, 2 and 3 daemons when polling is
bound by latency (feeds answering after 200 ms; each daemon 4 requests at a time).

    .venv/bin/python bench/workers.py [--feeds 1500] [--latency-ms 200] [--seconds 40] [--daemons 1,2,3]

The feeds are bench/feedfarm.py's server (one loopback address, so each daemon keeps to its 4 requests a host),
serving one small RSS document per feed; their interval (10 s) asks for more polls than three daemons can make, so
the figure is what the daemons achieve, not what the feeds ask. Each run: a fresh scratch PostgreSQL database, the
first cycle (every feed new) left out, then ``--seconds`` of steady polling (304 answers) counted from the
daemons' own "poll: N feeds" log lines. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import feedfarm as farm
from sqlalchemy import create_engine, text

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TINY = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>bench</title><item><title>One item</title>"
        b"<link>https://news.example.com/one</link><guid>https://news.example.com/one</guid></item></channel></rss>")
POLL = re.compile(r"^(\S+ \S+) INFO talentwatch.daemon: poll: (\d+) feeds, (\d+) parsed, (\d+) unchanged", re.M)


def scratch_database() -> str:
    name = f"tw_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'create database "{name}"'))
    engine.dispose()
    return name


def drop_database(name: str) -> None:
    engine = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'drop database if exists "{name}" with (force)'))
    engine.dispose()


def run(daemons: int, urls: list[str], seconds: float, work: Path) -> tuple[float, int]:
    """Start the daemons, wait for the first full cycle, then count polls for ``seconds``: (polls/s, polls)."""
    name = scratch_database()
    try:
        farm.write_config(work, urls, per_source=100, interval="10s")
        config = work / "talentwatch.toml"
        config.write_text(f'[database]\nurl = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"\n\n'
                          '[crawl]\nsources = "sources.toml"\nconcurrency = 4\n\n[daemon]\nbatch = 20\n')
        env = {**os.environ, "TALENTWATCH_HOME": str(work)}
        logs = [work / f"daemon-{daemons}-{k}.log" for k in range(daemons)]
        procs = [subprocess.Popen([*farm.talentwatch_command(), "--config", str(config), "run", "--log-file",
                                   str(log)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for log in logs]
        try:
            deadline = time.monotonic() + 300
            while _parsed(logs) < len(urls):  # the first cycle: every feed new
                if time.monotonic() > deadline:
                    raise SystemExit(f"{daemons} daemons: the first cycle did not end within 300 s")
                time.sleep(0.5)
            time.sleep(2)
            start = datetime.now()
            time.sleep(seconds)
            end = datetime.now()
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(120)
        polls = sum(int(n) for log in logs for at, n, _, _ in POLL.findall(log.read_text())
                    if start <= datetime.strptime(at, "%Y-%m-%d %H:%M:%S,%f") <= end)
        return polls / (end - start).total_seconds(), polls
    finally:
        drop_database(name)


def _parsed(logs: list[Path]) -> int:
    return sum(int(parsed) for log in logs if log.exists() for _, _, parsed, _ in POLL.findall(log.read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feeds", type=int, default=1500)
    ap.add_argument("--latency-ms", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--daemons", default="1,2,3")
    args = ap.parse_args()
    corpus = [farm.Doc("tiny", TINY, "application/rss+xml")]
    server, _, urls = farm.start_farm(corpus, args.feeds, hosts=1, latency=args.latency_ms / 1000)
    try:
        results = {}
        for n in (int(x) for x in args.daemons.split(",")):
            with tempfile.TemporaryDirectory(prefix="tw-workers-") as work:
                rate, polls = run(n, urls, args.seconds, Path(work))
            results[n] = rate
            print(f"{n} daemon{'s' if n > 1 else ' '}: {rate:6.1f} polls/s ({polls} polls in {args.seconds:g} s)"
                  + (f", {rate / results[1]:.2f}x one daemon" if 1 in results and n > 1 else ""), flush=True)
        ceiling = 4 / (args.latency_ms / 1000)
        print(f"ceiling of one daemon: 4 requests at a time / {args.latency_ms:g} ms = {ceiling:.1f} polls/s; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    finally:
        server.terminate()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
