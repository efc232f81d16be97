"""Run the CLI in a subprocess and measure it: wall time, the process's peak RSS (VmHWM, its own high-water mark,
read every 50 ms from /proc and last just before it ends), and the peak RSS of its whole process tree (parse workers
included), sampled every 50 ms from /proc.

Not wait4's ru_maxrss: on Linux a child created by fork starts with its parent's high-water mark and keeps it
across exec, so a CLI started by a test process of 400 MB reported 400 MB whatever it used itself."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import Home


@dataclass
class Measured:
    code: int
    out: str
    err: str
    seconds: float
    rss_mb: float  # the CLI process's high-water mark
    tree_mb: float  # the CLI and its descendants together, sampled


def run_measured(home: Home, *args: str, timeout: float = 300) -> Measured:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALENTWATCH_")}
    env["TALENTWATCH_HOME"] = str(home.path)
    out, err = home.path / "stdout.txt", home.path / "stderr.txt"
    started = time.monotonic()
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "talentwatch", "--config", str(home.config), *args],
                                stdout=o, stderr=e, env=env, cwd=home.path)
    sampler = _TreeSampler(proc.pid)
    sampler.start()
    deadline = threading.Timer(timeout, proc.kill)
    deadline.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        deadline.cancel()
        sampler.done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    sampler.join()
    # its own high-water mark; wait4's only when it ended before the first sample (an upper bound, see above)
    rss = (sampler.hwm_kb or usage.ru_maxrss) / 1024  # KiB on Linux
    return Measured(proc.returncode, out.read_text(errors="replace"), err.read_text(errors="replace"), seconds,
                    rss, max(rss, sampler.peak_kb / 1024))


class _TreeSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.hwm_kb, self.done = pid, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.hwm_kb = max(self.hwm_kb, _status_kb(self.pid, "VmHWM:"))
            self.peak_kb = max(self.peak_kb, sum(_status_kb(p, "VmRSS:") for p in _tree(self.pid)))

    @staticmethod
    def children() -> dict[int, list[int]]:
        kids: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                kids.setdefault(ppid, []).append(int(entry.name))
        return kids


def _tree(pid: int) -> list[int]:
    kids, todo, found = _TreeSampler.children(), [pid], []
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(kids.get(p, []))
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
