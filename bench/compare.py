"""talentwatch, newsboat and rss2email polling the same 1,000 loopback feeds, side by side in one run (issue 9).

    .venv/bin/python bench/compare.py [--feeds 1000] [--latency-ms 50] [--only talentwatch,newsboat,rss2email]

The feeds and their server are bench/feedfarm.py's, as for bench/poll.py: N feeds built from the real corpus (feed
i is corpus file i % 57 with its URL hosts prefixed by "c<i>."), served by a separate process on 64 loopback
addresses with a fixed latency, ETag and Last-Modified, answering 304 to a matching If-None-Match. Each poller
runs twice, as its users run it: the full cycle (every feed new), then the unchanged cycle (nothing changed since).
Each run is a fresh child process; the table gives its wall time, its CPU (user and system, its own and its
children's, from os.wait4; "tree CPU": every process of its tree, sampled from /proc, so that pool workers whose
fork server is not waited for count too), and its peak memory: the largest sum of RSS (and of PSS, which counts
shared pages once) over the process and all its descendants, sampled every 0.1 s (PSS 0.5 s), beside ru_maxrss
(its largest process).

- newsboat 2.21: ``newsboat -x reload`` with ``reload-threads 16`` (apt-get install newsboat);
- rss2email 3.13: ``r2e run --no-send`` (apt-get install rss2email): fetches one feed after another with feedparser
  and builds each entry's message, but sends none;
- talentwatch: ``talentwatch crawl`` with ``[crawl] concurrency = 16`` into a fresh SQLite database.

Also printed: feedparser's own CPU per stored item and the fast path's (in this process), the network floor
(N x latency / 16) and the load average, since the 2-core machine is shared. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import feedfarm as farm

from crawler.fastparse import parse_fast
from crawler.feedparse import parse_with_feedparser
from pipelines.normalize import normalize_entries

POLLERS = ("newsboat", "rss2email", "talentwatch")


@dataclass
class Run:
    poller: str
    cycle: str
    wall: float
    user: float
    system: float
    rss_mb: float  # peak of the summed RSS of the process tree
    pss_mb: float  # peak of the summed PSS of the process tree
    maxrss_mb: float  # ru_maxrss: the largest single process
    load: float
    code: int
    note: str = ""
    items: int = 0  # items stored after the run
    tree_cpu: float = 0.0  # user + system of every process of the tree (sampled: orphaned workers included)


class TreeMemory(threading.Thread):
    """Samples the summed RSS (every 0.1 s) and PSS (every 0.5 s) of a process and its descendants until stopped;
    keeps the peaks. Cheap enough not to slow what it measures on a small machine."""

    def __init__(self, pid: int, every: float = 0.1, pss_every: int = 5) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.pss_every = pid, every, pss_every
        self.rss = self.pss = 0
        self.cpu: dict[int, float] = {}  # pid -> its own user + system seconds, last seen
        self.done = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.done.wait(self.every):
            pids = self.tree()
            self.rss = max(self.rss, sum(_kb(p, "status", "VmRSS:") for p in pids))
            for p in pids:
                self.cpu[p] = max(self.cpu.get(p, 0.0), _cpu(p))
            if n % self.pss_every == 0:
                self.pss = max(self.pss, sum(_kb(p, "smaps_rollup", "Pss:") for p in pids))
            n += 1

    def tree(self) -> list[int]:
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            try:
                for task in os.scandir(f"/proc/{pid}/task"):
                    with open(f"{task.path}/children", encoding="ascii") as f:
                        todo.extend(int(c) for c in f.read().split())
            except OSError:
                pass
        return out


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    """A process's own user + system CPU seconds (not its children's: they are sampled themselves)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="latin-1") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        return 0.0


def _kb(pid: int, name: str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/{name}", encoding="latin-1") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


TIMEOUT = 1800.0  # seconds a run may take; then its process group is killed and the run reported as such


def measure(poller: str, cycle: str, command: list[str], log: Path, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Run:
    with open(log, "w", encoding="utf-8") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        sampler = TreeMemory(proc.pid)
        sampler.start()
        timer = threading.Timer(TIMEOUT, os.killpg, (proc.pid, signal.SIGKILL))
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        timer.cancel()
        sampler.done.set()
        sampler.join()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(f"{poller} {cycle}: exit status {code}:\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
    return Run(poller, cycle, wall, usage.ru_utime, usage.ru_stime, sampler.rss / 1024, sampler.pss / 1024,
               usage.ru_maxrss / 1024, os.getloadavg()[0], code, f"KILLED after {TIMEOUT:.0f} s" if code < 0 else "",
               tree_cpu=max(usage.ru_utime + usage.ru_stime, sum(sampler.cpu.values())))


# ---- the three pollers ----------------------------------------------------------------------------------------------

def run_talentwatch(work: Path, urls: list[str]) -> list[Run]:
    home = work / "talentwatch"
    home.mkdir()
    config = farm.write_config(home, urls)
    env = {**os.environ, "TALENTWATCH_HOME": str(home), "COLUMNS": "200"}
    command = [*farm.talentwatch_command(), "--config", str(config), "crawl"]
    runs = []
    for cycle in ("full", "unchanged"):
        runs.append(measure("talentwatch", cycle, command, home / f"{cycle}.log", env))
        runs[-1].note += (home / f"{cycle}.log").read_text(errors="replace").strip()[:110].replace("\n", " ")
        with contextlib.suppress(sqlite3.Error):  # a run that failed may have left no tables
            runs[-1].items = farm.query(home / "talentwatch.db", "select count(*) from items")[0][0]
    runs[0].note += f" [{runs[0].items} items stored]"
    return runs


def run_newsboat(work: Path, urls: list[str]) -> list[Run]:
    home = work / "newsboat"
    home.mkdir()
    (home / "urls").write_text("".join(f"{u}\n" for u in urls), encoding="utf-8")
    (home / "config").write_text("reload-threads 16\nshow-read-feeds yes\n", encoding="utf-8")
    command = ["newsboat", "-u", str(home / "urls"), "-c", str(home / "cache.db"), "-C", str(home / "config"),
               "-x", "reload"]
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home), "XDG_DATA_HOME": str(home)}
    runs = [measure("newsboat", cycle, command, home / f"{cycle}.log", env, home) for cycle in ("full", "unchanged")]
    with contextlib.suppress(sqlite3.Error):
        runs[0].note += f"[{farm.query(home / 'cache.db', 'select count(*) from rss_item')[0][0]} items in its cache]"
    return runs


def run_rss2email(work: Path, urls: list[str]) -> list[Run]:
    home = work / "rss2email"
    home.mkdir()
    sections = "".join(f"\n[feed.f{i:04d}]\nurl = {u}\n" for i, u in enumerate(urls))
    (home / "r2e.cfg").write_text("[DEFAULT]\nfrom = bench@example.org\nto = bench@example.org\n" + sections,
                                  encoding="utf-8")
    command = ["r2e", "-c", str(home / "r2e.cfg"), "-d", str(home / "r2e.json"), "run", "--no-send"]
    env = {**os.environ, "HOME": str(home)}
    return [measure("rss2email", cycle, command, home / f"{cycle}.log", env, home) for cycle in ("full", "unchanged")]


# ---- parse cost per item ---------------------------------------------------------------------------------------------

def parse_costs(corpus: list[farm.Doc], n: int) -> dict[str, float]:
    """CPU seconds over the N documents of feedparser (as talentwatch calls it) and of the fast path, with the
    items they yield after normalization, and how many documents the fast path read."""
    totals = {"feedparser": 0.0, "fast": 0.0, "items": 0, "fast_docs": 0, "fast_items": 0}
    for j, doc in enumerate(corpus):
        copies = len(range(j, n, len(corpus)))
        if not copies:
            continue
        body = farm.feed_body(doc, j)
        headers = {"content-type": doc.content_type, "content-location": f"http://127.0.0.1/feed/{j}.xml"}
        started = time.process_time()
        reference = parse_with_feedparser(body, headers)
        totals["feedparser"] += (time.process_time() - started) * copies
        started = time.process_time()
        fast = parse_fast(body, headers)
        totals["fast"] += (time.process_time() - started) * copies if fast else 0.0
        items = len(normalize_entries(reference.entries)) * copies
        totals["fast_docs"] += copies if fast else 0
        totals["fast_items"] += items if fast else 0
        totals["items"] += items
    return totals


# ---- main ---------------------------------------------------------------------------------------------------------

def print_table(runs: list[Run], n: int, floor: float) -> None:
    print(f"\n{'poller':<12}{'cycle':<11}{'wall s':>8}{'user s':>8}{'sys s':>7}{'tree CPU s':>11}{'peak RSS MB':>13}"
          f"{'peak PSS MB':>13}{'maxrss MB':>11}{'load':>6}  notes")
    for r in runs:
        print(f"{r.poller:<12}{r.cycle:<11}{r.wall:>8.2f}{r.user:>8.2f}{r.system:>7.2f}{r.tree_cpu:>11.2f}"
              f"{r.rss_mb:>13.0f}{r.pss_mb:>13.0f}{r.maxrss_mb:>11.0f}{r.load:>6.2f}  {r.note}")
    by = {(r.poller, r.cycle): r for r in runs}
    tw_full, tw_same = by.get(("talentwatch", "full")), by.get(("talentwatch", "unchanged"))
    nb_full = by.get(("newsboat", "full"))
    if tw_full and nb_full:
        print(f"\nfull cycle: newsboat / talentwatch = {nb_full.wall / tw_full.wall:.2f}x (target: at least 2x)")
    if tw_same:
        print(f"unchanged cycle: talentwatch {tw_same.wall:.2f} s = {tw_same.wall / floor:.2f}x the network floor of "
              f"{floor:.2f} s ({n} x latency / 16) (target: at most 2x)")


def main() -> int:
    global TIMEOUT
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feeds", type=int, default=1000, metavar="N", help="number of feeds (default 1000)")
    p.add_argument("--latency-ms", type=float, default=50.0, help="added to every response (default 50)")
    p.add_argument("--hosts", type=int, default=64, help="loopback addresses 127.0.0.1..K to spread feeds over")
    p.add_argument("--only", default=",".join(POLLERS), help=f"comma-separated subset of {','.join(POLLERS)}")
    p.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds a run may take (default %(default)s)")
    p.add_argument("--keep", metavar="DIR", help="keep the pollers' files and logs in DIR (else a temp dir)")
    p.add_argument("--corpus", type=Path, default=farm.CORPUS, help=f"corpus feeds folder (default {farm.CORPUS})")
    args = p.parse_args()
    n, corpus, only, TIMEOUT = args.feeds, farm.load_corpus(args.corpus), args.only.split(","), args.timeout
    missing = [tool for poller, tool in (("newsboat", "newsboat"), ("rss2email", "r2e"))
               if poller in only and not shutil.which(tool)]
    if missing:
        print(f"not installed: {', '.join(missing)} (apt-get install newsboat rss2email)", file=sys.stderr)
        return 2

    server, hosts, urls = farm.start_farm(corpus, n, args.hosts, args.latency_ms / 1000)
    floor = n * args.latency_ms / 1000 / 16
    print(f"{n} feeds from {len(corpus)} corpus files on {len(hosts)} loopback addresses, {args.latency_ms:g} ms "
          f"latency; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="talentwatch-compare-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        try:
            for poller, run in (("talentwatch", run_talentwatch), ("newsboat", run_newsboat),
                                ("rss2email", run_rss2email)):
                if poller in only:
                    shutil.rmtree(work / poller, ignore_errors=True)
                    print(f"running {poller} ...", flush=True)
                    runs += run(work, urls)
        finally:
            server.terminate()
            server.join()
    print_table(runs, n, floor)
    costs = parse_costs(corpus, n)
    print(f"\nparse CPU per stored item (in this process, the same {n} documents, {costs['items']} items):")
    print(f"  feedparser (sanitize_html=False, resolve_relative_uris=False): "
          f"{costs['feedparser'] / costs['items'] * 1e3:.3f} ms/item, {costs['feedparser']:.1f} s for all")
    print(f"  fast path, on the {costs['fast_docs']} documents it reads ({costs['fast_items']} items): "
          f"{costs['fast'] / max(1, costs['fast_items']) * 1e3:.3f} ms/item, {costs['fast']:.1f} s")
    for r in runs:
        if r.poller == "talentwatch" and r.cycle == "full" and r.items:
            print(f"  talentwatch crawl, everything (parse, normalize, tag, cluster, store, Scrapy, start-up): "
                  f"{r.tree_cpu / r.items * 1e3:.3f} ms CPU/item (every process of its tree)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
