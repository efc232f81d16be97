"""Profile `talentwatch crawl` over the loopback feed farm with py-spy (pip install py-spy): the full cycle, then
the unchanged one, each sampled with its subprocesses (parse workers included); prints the top functions by
inclusive and by own samples, per process kind.

    .venv/bin/python bench/pyspy.py [--feeds 200] [--latency-ms 50] [--keep DIR] [--top 25] [--native]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import feedfarm as farm

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def summarise(raw: Path, top: int) -> None:
    """py-spy's raw (collapsed) output: one stack a line, frames separated by ';', then a sample count."""
    total: Counter[str] = Counter()
    own: Counter[str] = Counter()
    by_process: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        process = frames[0][:60]
        by_process["worker" if "process_body" in stack or "forkserver" in stack else process] += n
        names = []
        for frame in frames[1:]:
            m = _FRAME.match(frame)
            name = f"{m['fn']} ({Path(m['file']).name})" if m else frame
            names.append(name)
        for name in set(names):
            total[name] += n
        if names:
            own[names[-1]] += n
        samples += n
    print(f"  {samples} samples; by process: " + ", ".join(f"{p} {n / samples:.0%}" for p, n in
                                                         by_process.most_common(4)))
    print(f"  {'inclusive':>9} {'own':>6}  function")
    for name, n in total.most_common(top):
        print(f"  {n / samples:>9.1%} {own[name] / samples:>6.1%}  {name}")
    print("  top own: " + "; ".join(f"{name} {n / samples:.1%}" for name, n in own.most_common(8)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feeds", type=int, default=200)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--hosts", type=int, default=64)
    p.add_argument("--keep", metavar="DIR")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--rate", type=int, default=100)
    p.add_argument("--cycles", default="full,unchanged")
    p.add_argument("--gil", action="store_true", help="only samples of threads holding the GIL (CPU, not waits)")
    args = p.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    corpus = farm.load_corpus(farm.CORPUS)
    server, _, urls = farm.start_farm(corpus, args.feeds, args.hosts, args.latency_ms / 1000)
    try:
        with tempfile.TemporaryDirectory(prefix="talentwatch-profile-") as tmp:
            work = Path(args.keep or tmp)
            work.mkdir(parents=True, exist_ok=True)
            (work / "talentwatch.db").unlink(missing_ok=True)
            config = farm.write_config(work, urls)
            env = {**os.environ, "TALENTWATCH_HOME": str(work), "COLUMNS": "200"}
            for cycle in args.cycles.split(","):
                raw = work / f"{cycle}.raw.txt"
                command = [pyspy, "record", "--subprocesses", "--format", "raw", "--rate", str(args.rate),
                           *(["--gil"] if args.gil else []),
                           "-o", str(raw), "--", *farm.talentwatch_command(), "--config", str(config), "crawl"]
                started = time.perf_counter()
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
                wall = time.perf_counter() - started
                print(f"{cycle}: {wall:.1f} s wall (under py-spy), exit {done.returncode}, load "
                      f"{os.getloadavg()[0]:.2f}; {done.stdout.strip().splitlines()[0] if done.stdout.strip() else ''}")
                if done.returncode:
                    print(done.stderr[-2000:])
                summarise(raw, args.top)
    finally:
        server.terminate()
        server.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
