"""Soak the daemon: `talentwatch run` against N loopback feeds with a short interval, for many poll cycles.

    .venv/bin/python bench/soak.py [--feeds 500] [--cycles 50] [--interval 10s] [--keep DIR]

The feeds come from bench/feedfarm.py (the real corpus, 50 ms latency, ETag/304), and they change over time: every
Kth request of a feed (staggered, so about 1/K of the feeds per round; K = --change-every, 10) first adds a new
item to it; the other requests get 304. RSS <ttl> elements are removed, so every feed is due every --interval.
The daemon runs in its own process with its SQLite database in a temp dir. This script follows the daemon's log:
each "poll:" line is one cycle (it covers the feeds due then, not necessarily all). After each cycle it reads the
daemon's resident memory (VmRSS), the proportional memory (Pss) of the daemon and its descendants (the parse
workers), and their CPU time (utime + stime + cutime + cstime), from /proc; it prints them at cycles 0 (started),
1, 10, 20, ... and the last, then stops the daemon with SIGTERM. Prints figures; asserts nothing about timing.
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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from feedfarm import CORPUS, load_corpus, query, start_farm, talentwatch_command, write_config

POLL = re.compile(r"poll: (\d+) feeds, (\d+) parsed, (\d+) unchanged, (\d+) errors; (\d+) new items.*; ([\d.]+) s$")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    cycle: int
    elapsed: float  # seconds since the daemon started
    feeds: int = 0
    parsed: int = 0
    errors: int = 0
    new: int = 0
    seconds: float = 0.0  # the cycle's own duration, from its log line
    rss_mb: float = 0.0  # the daemon process
    tree_mb: float = 0.0  # Pss of the daemon and its descendants
    procs: int = 0
    cpu: float = 0.0  # cumulative CPU seconds of the daemon and its descendants
    load: float = 0.0


def mem_mb(pid: int, file: str, key: str) -> float:
    for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # fields from the 3rd (state) on


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                pass  # gone meanwhile
    found = list(children.get(pid, []))
    for child in found:
        found.extend(children.get(child, []))
    return found


def measure(pid: int, cycle: int, elapsed: float) -> Sample:
    s = Sample(cycle, elapsed, rss_mb=mem_mb(pid, "status", "VmRSS:"), load=os.getloadavg()[0])
    for p in [pid, *descendants(pid)]:
        try:
            fields, pss = stat(p), mem_mb(p, "smaps_rollup", "Pss:")
        except OSError:
            continue
        s.tree_mb, s.procs = s.tree_mb + pss, s.procs + 1
        s.cpu += sum(int(x) for x in fields[11:15]) / TICKS  # utime, stime, cutime, cstime
    return s


def follow(path: Path, proc: subprocess.Popen, timeout: float):
    """The log's lines as they are written, until the daemon exits or nothing comes for `timeout` s."""
    while not path.exists() and proc.poll() is None:
        time.sleep(0.1)
    with open(path, encoding="utf-8", errors="replace") as f:
        last, partial = time.monotonic(), ""
        while proc.poll() is None and time.monotonic() - last < timeout:
            partial += f.readline()
            if partial.endswith("\n"):
                last = time.monotonic()
                yield partial.rstrip("\n")
                partial = ""
            else:
                time.sleep(0.2)


def watch(proc: subprocess.Popen, log: Path, cycles: int, started: float) -> tuple[list[Sample], list[str]]:
    """A sample when the daemon has started (cycle 0) and after each poll line; the log's warnings and errors.
    Gives up after 600 s without a log line, or after 5 errors without a poll line between them."""
    samples: list[Sample] = []
    problems: list[str] = []
    errors = 0
    for line in follow(log, proc, timeout=600):
        if " WARNING " in line or " ERROR " in line:
            problems.append(line)
            errors += " ERROR " in line
        if "talentwatch.daemon: started" in line:
            samples.append(measure(proc.pid, 0, time.monotonic() - started))
        elif m := POLL.search(line):
            s = measure(proc.pid, len([x for x in samples if x.cycle]) + 1, time.monotonic() - started)
            s.feeds, s.parsed, _, s.errors, s.new = map(int, m.groups()[:5])
            s.seconds, errors = float(m[6]), 0
            samples.append(s)
            print(f"  cycle {s.cycle:3} {s.elapsed:5.0f} s  RSS {s.rss_mb:5.1f} MB  CPU {s.cpu:6.1f} s  "
                  f"{line.split('talentwatch.daemon: ')[-1]}", flush=True)
            if s.cycle >= cycles:
                return samples, problems
        if errors >= 5:
            break
    print(f"the daemon stopped completing poll cycles (exit status {proc.poll()}, {errors} errors since the last)")
    return samples, problems


def stop(proc: subprocess.Popen) -> tuple[float, int | None]:
    """SIGTERM; seconds until the daemon exited and its exit status (None: killed after 60 s)."""
    tree, started = descendants(proc.pid), time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        status = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        status = None
    seconds = time.monotonic() - started
    time.sleep(3)
    left = [p for p in tree if Path(f"/proc/{p}").exists()]
    print(f"\nSIGTERM -> exit status {status} after {seconds:.1f} s; of its {len(tree)} descendant processes, "
          f"still running 3 s later: {left or 'none'}")
    return seconds, status


def report(samples: list[Sample], problems: list[str], cycles: int, n: int) -> None:
    print(f"\n{'cycle':>5}{'at s':>7}{'feeds':>7}{'parsed':>8}{'new items':>11}{'cycle s':>9}{'RSS MB':>8}"
          f"{'tree PSS MB':>13}{'procs':>6}{'CPU s':>8}{'CPU s/cycle':>13}{'load':>6}")
    previous = None
    for s in (s for s in samples if s.cycle in (0, 1, cycles) or s.cycle % 10 == 0):
        per_cycle = f"{(s.cpu - previous.cpu) / (s.cycle - previous.cycle):.2f}" if previous else "-"
        print(f"{s.cycle:>5}{s.elapsed:>7.0f}{s.feeds:>7}{s.parsed:>8}{s.new:>11}{s.seconds:>9.1f}{s.rss_mb:>8.1f}"
              f"{s.tree_mb:>13.1f}{s.procs:>6}{s.cpu:>8.1f}{per_cycle:>13}{s.load:>6.2f}")
        previous = s
    polls = samples[1:]
    if len(polls) > 1:
        feeds = [s.feeds for s in polls]
        period = (polls[-1].elapsed - polls[0].elapsed) * n / sum(feeds[1:])
        print(f"\n{len(polls)} cycles: feeds per cycle min {min(feeds)}, mean {sum(feeds) / len(feeds):.0f}, "
              f"max {max(feeds)}; {sum(feeds)} polls ({sum(feeds) / n:.1f} per feed; after cycle 1 a feed was "
              f"polled every {period:.1f} s on average), {sum(s.parsed for s in polls)} parsed, "
              f"{sum(s.errors for s in polls)} errors, {sum(s.new for s in polls)} new items")
    later = [s for s in polls if s.cycle >= 10]
    for what, key in (("daemon RSS", "rss_mb"), ("daemon + workers PSS", "tree_mb")):
        mb = [getattr(s, key) for s in later]
        if len(mb) < 2:
            print(f"{what} growth after cycle 10: n/a (fewer than 11 cycles)")
            continue
        print(f"{what} growth after cycle 10: {(mb[-1] - mb[0]) / mb[0] * 100:+.1f}% (limit 10%), "
              f"{mb[0]:.1f} -> {mb[-1]:.1f} MB; peak {max(mb):.1f} MB ({(max(mb) - mb[0]) / mb[0] * 100:+.1f}%)")
    by_logger = Counter(line.split(" ")[3].rstrip(":") for line in problems if line.count(" ") > 3)
    print(f"warnings/errors in the daemon's log: {len(problems)} {dict(by_logger) or ''}")
    for line in problems[:5]:
        print(f"  {line[:300]}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feeds", type=int, default=500, metavar="N", help="number of feeds (default 500)")
    p.add_argument("--cycles", type=int, default=50, help="poll cycles to watch (default 50)")
    p.add_argument("--interval", default="10s", help="every source's interval (default 10s)")
    p.add_argument("--change-every", type=int, default=10, metavar="K",
                   help="every Kth request of a feed gets a new item (default 10: 10%% of the feeds per round)")
    p.add_argument("--latency-ms", type=float, default=50.0, help="added to every response (default 50)")
    p.add_argument("--hosts", type=int, default=64, help="loopback addresses 127.0.0.1..K to spread feeds over")
    p.add_argument("--keep", metavar="DIR", help="keep config, database and logs in DIR (else a temp dir)")
    p.add_argument("--corpus", type=Path, default=CORPUS, help=f"corpus feeds folder (default {CORPUS})")
    args = p.parse_args()

    server, hosts, urls = start_farm(load_corpus(args.corpus), args.feeds, args.hosts, args.latency_ms / 1000,
                                     args.change_every, strip_ttl=True)
    print(f"serving {args.feeds} feeds on {len(hosts)} loopback addresses, {args.latency_ms:g} ms latency, every "
          f"{args.change_every}th request of a feed brings a new item; interval {args.interval}, {args.cycles} "
          f"cycles; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="talentwatch-soak-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in ("talentwatch.db", "daemon.log"):
            (work / name).unlink(missing_ok=True)
        config, log = write_config(work, urls, interval=args.interval), work / "daemon.log"
        command = [*talentwatch_command(), "--config", str(config), "run", "--log-file", str(log)]
        with open(work / "daemon.out", "w", encoding="utf-8") as out:
            started = time.monotonic()
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, "TALENTWATCH_HOME": str(work)})
        try:
            samples, problems = watch(proc, log, args.cycles, started)
        finally:
            _, status = stop(proc)
            server.terminate()
            server.join()
        lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        last_poll = max((k for k, line in enumerate(lines) if POLL.search(line)), default=len(lines) - 6)
        for line in lines[last_poll + 1:][:10]:  # what the daemon said after its last cycle
            print(f"  {line[:300]}")
        report(samples, problems, args.cycles, args.feeds)
        db = work / "talentwatch.db"
        print(f"items stored: {query(db, 'select count(*) from items')[0][0] if db.exists() else 0}")
        if status != 0 or len(samples) <= args.cycles:
            print(f"the daemon's output:\n{(work / 'daemon.out').read_text(encoding='utf-8')[-3000:]}")
        if args.keep:
            print(f"config, database and logs kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
