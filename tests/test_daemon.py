"""The daemon as users run it: `talentwatch run` in a subprocess against a loopback feed server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from itertools import pairwise

import pytest
from conftest import FeedServer, Home
from test_crawl_changes import rss


class Daemon:
    def __init__(self, home: Home, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.log = home.path / f"daemon-{len(list(home.path.glob('daemon-*.log')))}.log"
        self.log.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALENTWATCH_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "talentwatch", "--config", str(home.config), "run", "--log-file",
             str(self.log)], env={**env, "TALENTWATCH_HOME": str(home.path), **(extra_env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def daemons() -> Iterator[Callable[[Home], Daemon]]:
    started: list[Daemon] = []

    def start(home: Home, env: dict[str, str] | None = None) -> Daemon:
        started.append(Daemon(home, env))
        return started[-1]

    yield start
    for d in started:
        d.stop(signal.SIGKILL)


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def count(home: Home, query: str = "select count(*) from items") -> int:
    try:
        return home.sql(query)[0][0]
    except Exception:  # the database may not exist yet
        return 0


def test_new_items_arrive_and_feeds_keep_their_own_intervals(home: Home, feed_server: FeedServer, daemons) -> None:
    feed_server.put("/fast.xml", rss([("f1", "Fast one")]))
    feed_server.put("/slow.xml", rss([("s1", "Slow one")]))
    home.write_config([])
    (home.path / "sources.toml").write_text(
        f'[[source]]\nid = "fast"\nfeeds = ["{feed_server.url("/fast.xml")}"]\ninterval = "2s"\n\n'
        f'[[source]]\nid = "slow"\nfeeds = ["{feed_server.url("/slow.xml")}"]\ninterval = "30s"\n')
    d = daemons(home)
    wait_for(lambda: count(home) == 2, what="the first items")
    feed_server.put("/fast.xml", rss([("f2", "Fast two"), ("f1", "Fast one")]))
    wait_for(lambda: count(home) == 3, timeout=30, what="the new item")
    time.sleep(6)
    assert d.stop() == 0
    fast, slow = feed_server.requests_for("/fast.xml"), feed_server.requests_for("/slow.xml")
    assert len(slow) == 1 and len(fast) >= 4
    assert all(r.headers.get("If-None-Match") for r in fast[1:])
    assert any(r.status == 304 for r in fast)
    gaps = [b.at - a.at for a, b in pairwise(fast)]
    assert min(gaps) >= 1.5  # never more often than the 2 s interval (with the clock's slack)
    assert "poll: " in d.log_text()
    assert count(home, "select count(*) from items where title = 'Fast two'") == 1


def test_failing_feed_backs_off_then_recovers_and_retry_after_is_honoured(
        home: Home, feed_server: FeedServer, daemons) -> None:
    feed_server.put("/flaky.xml", b"down", status=500)
    feed_server.put("/limited.xml", b"slow down", status=429, headers={"Retry-After": "9"})
    home.write_config([("s", [feed_server.url("/flaky.xml"), feed_server.url("/limited.xml")])],
                      extra='interval = "1s"\n')  # goes into [crawl]
    d = daemons(home)
    wait_for(lambda: len(feed_server.requests_for("/flaky.xml")) >= 4, timeout=40, what="four failed polls")
    feed_server.put("/flaky.xml", rss([("r1", "Recovered")]))
    wait_for(lambda: count(home) == 1, timeout=40, what="the recovered feed's item")
    time.sleep(5)
    assert d.stop() == 0
    times = [r.at for r in feed_server.requests_for("/flaky.xml")]
    failing = [r.at for r in feed_server.requests_for("/flaky.xml") if r.status == 500]
    gaps = [b - a for a, b in pairwise(failing)]
    assert all(b > a * 1.5 for a, b in pairwise(gaps)), f"no backoff: {gaps}"
    recovered = [t for t in times if t > failing[-1]]
    assert len(recovered) >= 3, "back to its 1 s interval after recovering"
    assert recovered[-1] - recovered[-2] < 3
    limited = [r.at for r in feed_server.requests_for("/limited.xml")]
    assert len(limited) >= 1 and all(b - a >= 8.5 for a, b in pairwise(limited))
    (failures, status) = home.sql("select failures, last_status from feeds where url like '%limited%'")[0]
    assert failures >= 1 and status == 429


def test_kill_9_mid_crawl_loses_and_duplicates_nothing(home: Home, feed_server: FeedServer, daemons) -> None:
    fast = [f"/fast{i}.xml" for i in range(6)]
    slow = [f"/slow{i}.xml" for i in range(3)]
    for i, path in enumerate(fast):
        feed_server.put(path, rss([(f"fast{i}-{j}", f"Fast {i} {j}") for j in range(5)]))
    for i, path in enumerate(slow):
        feed_server.put(path, rss([(f"slow{i}-{j}", f"Slow {i} {j}") for j in range(5)]), delay=8)
    home.write_config([("s", [feed_server.url(p) for p in fast + slow])], timeout="30s")  # interval: 30 m
    first = daemons(home)
    wait_for(lambda: count(home) == 30 and len(feed_server.requests_for(slow[0])) == 1, what="the fast feeds")
    first.stop(signal.SIGKILL)
    assert count(home) == 30  # the slow feeds were still in flight: nothing of theirs, everything else
    due_before = dict(home.sql("select url, next_due from feeds where last_success is not null"))

    second = daemons(home)
    wait_for(lambda: count(home) == 45, timeout=60, what="the slow feeds after the restart")
    assert second.stop() == 0
    assert count(home, "select count(distinct key) from items") == 45
    assert all(len(feed_server.requests_for(p)) == 1 for p in fast), "a restart must not re-poll feeds not due"
    assert all(len(feed_server.requests_for(p)) == 2 for p in slow)
    due_after = dict(home.sql("select url, next_due from feeds"))
    assert all(due_after[url] == due for url, due in due_before.items()), "due times continue across restarts"


def test_sigterm_lets_the_running_crawl_commit_and_exits_0(home: Home, feed_server: FeedServer, daemons) -> None:
    feed_server.put("/slow.xml", rss([("x1", "Late item")]), delay=4)
    home.write_config([("s", [feed_server.url("/slow.xml")])], timeout="30s")
    d = daemons(home)
    wait_for(lambda: len(feed_server.requests_for("/slow.xml")) == 1, what="the request in flight")
    started = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 35
    assert home.sql("select title from items") == [("Late item",)]
    assert "SIGTERM" in d.log_text()


def test_one_daemon_per_database(home: Home, feed_server: FeedServer, daemons) -> None:
    feed_server.put("/a.xml", rss([("a1", "A")]))
    home.write_config([("s", [feed_server.url("/a.xml")])])
    first = daemons(home)
    wait_for(lambda: count(home) == 1, what="the first daemon's crawl")
    second = home.run("run")
    assert second.code == 2
    assert f"pid={first.proc.pid}" in second.err and "host=" in second.err
    first.stop(signal.SIGKILL)
    third = daemons(home)
    wait_for(lambda: "started:" in third.log_text(), what="a new daemon after kill -9")
    assert third.stop() == 0
