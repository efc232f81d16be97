"""Hostile servers: one route per fault (tests/data/hostile/routes.toml), each crawled by a real `talentwatch crawl`
alongside a healthy feed, which must still be stored. Each fault is recorded on its feed row (status, error,
next due time) within bounded time and memory; the measurements are printed as a table (`pytest -s`)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import Home
from hostileserver import HostileServer
from measure import Measured, run_measured

ROUTES = tomllib.loads((Path(__file__).parent / "data" / "hostile" / "routes.toml").read_text())["route"]
TIMEOUT = 2  # seconds: the crawl's download timeout
INTERVAL = 1800.0  # the default poll interval
MAX_SECONDS = 30.0  # a crawl of one fault and its healthy twin (a bare crawl takes about 2 s), unless the route says
MAX_RSS_MB = 400.0  # peak RSS of the crawl process (a bare crawl: about 120 MB)
MAX_TREE_MB = 550.0  # ... and of its whole process tree, parse workers included (a bare crawl: about 280 MB)
PARALLEL = 3  # crawls at a time


@pytest.fixture(scope="module")
def server():
    s = HostileServer(ROUTES).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def crawls(server: HostileServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Crawled]]:
    """One crawl per fault, a few at a time (they mostly wait on sockets): the fault's feed and its healthy twin."""
    def crawl(route: dict) -> Crawled:
        tmp = tmp_path_factory.mktemp(route["name"])
        home = Home(tmp, f"sqlite:///{tmp / 'talentwatch.db'}")
        fault, healthy = server.url(f"/fault/{route['name']}"), server.url(f"/healthy/{route['name']}")
        home.write_config([("hostile", [fault]), ("healthy", [healthy])], timeout=f"{TIMEOUT}s")
        return Crawled(home, fault, healthy, run_measured(home, "crawl"))

    with ThreadPoolExecutor(PARALLEL) as pool:
        done = dict(zip([r["name"] for r in ROUTES], pool.map(crawl, ROUTES), strict=True))
    yield done
    print(f"\n{'fault':<31} {'recorded on the feed row':<64} {'time':>6} {'RSS':>6} {'tree':>6}")
    for name, c in done.items():
        m = c.measured
        print(f"{name:<31} {c.outcome[:64]:<64} {m.seconds:5.1f}s {m.rss_mb:4.0f}MB {m.tree_mb:4.0f}MB")


@dataclass
class Crawled:
    home: Home
    fault: str
    healthy: str
    measured: Measured
    outcome: str = ""


def _due(route: dict) -> float:
    due = route["due"]
    return {"interval": INTERVAL, "backoff": 2 * INTERVAL}.get(due, due)


@pytest.mark.parametrize("route", ROUTES, ids=[r["name"] for r in ROUTES])
def test_fault_is_recorded_and_the_healthy_feed_stored(route: dict, server: HostileServer,
                                                       crawls: dict[str, Crawled]) -> None:
    crawled = crawls[route["name"]]
    home, fault, healthy, measured = crawled.home, crawled.fault, crawled.healthy, crawled.measured
    assert measured.code == 0, measured.err  # failing feeds are a successful crawl that says so
    rows = {url: rest for url, *rest in home.sql(
        "select url, last_status, last_error, failures, last_fetch, next_due, disabled from feeds")}
    status, error, failures, fetched, due, disabled = rows[fault]
    stored = len(home.sql("select 1 from items i join feeds f on f.id = i.feed_id where f.url = :u", u=fault))
    crawled.outcome = f"{status or '-'} {error or f'ok, {stored} items'}"

    assert status == route.get("expect_status")
    if "expect_error" in route:
        assert error and route["expect_error"] in error and failures == 1, error
        assert f"failed {fault}" in " ".join(measured.out.split())  # the crawl's summary names it
    else:
        assert error is None and failures == 0
    expected_due = _due(route)
    waited = datetime.fromisoformat(due) - datetime.fromisoformat(fetched)
    assert timedelta(seconds=expected_due - 1) <= waited <= timedelta(seconds=expected_due + 1)
    assert bool(disabled) == route.get("disabled", False)
    items = home.sql("select i.title from items i join feeds f on f.id = i.feed_id where f.url = :u", u=fault)
    assert len(items) == route.get("expect_items", 0)
    if "expect_title" in route:
        assert items[0][0] == route["expect_title"]
    assert all(len(t) < 2000 for (t,) in items)  # nothing expanded (billion laughs)
    assert home.sql("select count(*) from items i join feeds f on f.id = i.feed_id where f.url = :u",
                    u=healthy) == [(3,)], "the healthy feed next to the fault was not stored"
    assert measured.seconds < route.get("max_seconds", MAX_SECONDS)
    assert measured.rss_mb < MAX_RSS_MB and measured.tree_mb < MAX_TREE_MB

    if route.get("disabled") or "moved" in route:
        _second_crawl(home, server, route, fault)


def _second_crawl(home: Home, server: HostileServer, route: dict, fault: str) -> None:
    path = f"/fault/{route['name']}"
    before_old, before_new = server.count(path), server.count(path + "/new")
    assert home.run("crawl").code == 0
    if route.get("disabled"):  # no longer polled; `status` says so
        assert server.count(path) == before_old
        (record,) = [r for r in home.run("status", "--format", "json").json_lines() if r["feed_url"] == fault]
        assert record["disabled"] is True and "410" in record["last_error"]
        assert "disabled: HTTP 410 Gone" in home.run("status", env={"COLUMNS": "400"}).out
    if route.get("moved"):  # the new URL is remembered: polled directly
        assert server.count(path) == before_old and server.count(path + "/new") == before_new + 1
        assert home.sql("select fetch_url from feeds where url = :u", u=fault) == [(server.url(path + "/new"),)]
    if route.get("moved") is False:  # a temporary redirect: the old URL is asked again
        assert server.count(path) == before_old + 1
        assert home.sql("select fetch_url from feeds where url = :u", u=fault) == [(None,)]
