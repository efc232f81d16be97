"""`recrawl` backfilling from archives played by loopback servers over a real feed history
(../shared/corpus/feed-history/arstechnica: 100 captures of Ars Technica's feed, January to March 2025)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from archives import Answer, LoopbackServer
from archives.gdelt import FakeGdelt
from archives.gnews import PUBLISHER, FakeGoogleNews
from archives.history import FeedHistory
from archives.sitemap import NEWS_MONTH, FakeOutlet
from archives.wayback import FakeWayback
from conftest import Home, need_corpus

from pipelines.normalize import canonical_url

FEED = "https://arstechnica.com/feed/"
SOURCES = f'[[source]]\nid = "ars"\nname = "Ars Technica"\nfeeds = ["{FEED}"]\nsite = "arstechnica.com"\n'


@pytest.fixture(scope="module")
def history() -> FeedHistory:
    return FeedHistory(need_corpus() / "feed-history" / "arstechnica")


@pytest.fixture
def servers() -> Iterator[list[LoopbackServer]]:
    started: list[LoopbackServer] = []
    yield started
    for server in started:
        server.stop()


def serve(servers: list[LoopbackServer], archive: object) -> LoopbackServer:
    server = LoopbackServer(archive).start()  # type: ignore[arg-type]
    servers.append(server)
    return server


def configure(home: Home, archive: dict[str, str], sources: str = SOURCES) -> None:
    (home.path / "sources.toml").write_text(sources)
    home.config.write_text(
        f'[database]\nurl = "{home.database_url}"\n\n[crawl]\ntimeout = "10s"\nsources = "sources.toml"\n\n'
        '[archive]\ndelay = "0.01s"\n' + "".join(f'{k} = "{v}"\n' for k, v in archive.items()))


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def recrawl(home: Home, first: str, last: str, *args: str) -> dict:
    result = home.run("recrawl", "--from", first, "--to", last, *args, "--format", "json")
    assert result.code == 0, result.err
    return json.loads(result.out)  # stdout is the summary and nothing else


def snapshot(home: Home) -> set[tuple]:
    """The stored items with their tags and entities, without row ids and update times."""
    items = home.sql("select key, url, title, summary, published, fetched, via, guid, source_id, feed_id from items")
    tags = home.sql("select i.key, t.topic_id, t.evidence from tags t join items i on i.id = t.item_id")
    entities = home.sql("select i.key, e.entity_id from item_entities e join items i on i.id = e.item_id")
    return {("item", *r) for r in items} | {("tag", *r) for r in tags} | {("entity", *r) for r in entities}


def test_wayback_recovers_every_item_published_in_the_range_and_none_outside(
        home: Home, history: FeedHistory, servers: list[LoopbackServer]) -> None:
    wayback = serve(servers, FakeWayback(history, FEED))
    configure(home, {"wayback_url": wayback.url("")})
    start, end = day("2025-02-01"), day("2025-02-15")
    expected = history.published_in(start, end)

    summary = recrawl(home, "2025-02-01", "2025-02-14", "--archive", "wayback")

    rows = home.sql("select url, title, published, fetched, via, feed_id from items")
    dated = {url: title for url, title, published, *_ in rows if published}
    assert set(dated) == set(expected)  # every item published in the range, from any capture, and nothing else
    assert all(dated[u] == item.title for u, item in expected.items())  # as the newest capture had it
    assert {(via, feed_id) for *_, via, feed_id in rows} == {("wayback", None)}
    for _, _, published, fetched, *_ in rows:  # an undated entry counts when the capture carrying it is in range
        assert published or start <= datetime.fromisoformat(fetched).replace(tzinfo=UTC) < end
    late = [u for u, item in expected.items() if min(item.captures) >= end]
    assert late and set(late) <= set(dated)  # first captured after --to: found thanks to the grace days
    assert summary["rows"] == [{"source": "ars", "provider": "wayback", "candidates": len(rows), "new": len(rows),
                                "updated": 0, "retagged": 0, "errors": 0}]
    (cdx,) = wayback.requests("/cdx/")
    assert cdx.query == {"url": FEED, "from": "20250201", "to": "20250221", "output": "json",
                         "filter": "statuscode:200", "collapse": "digest"}
    in_window = [c for c in history.captures if start <= c.when < end + timedelta(days=7)]
    assert len(wayback.requests("/web/")) == len(in_window)
    print(f"wayback: {len(dated)} items recovered of {len(expected)} published in the range "
          f"({len(late)} only in later captures), {len(in_window)} captures read")

    before = snapshot(home)
    again = recrawl(home, "2025-02-01", "2025-02-14", "--archive", "wayback")
    assert again["total"]["new"] == 0 and again["total"]["updated"] == 0
    assert snapshot(home) == before


INTERRUPTED = ("--from", "2025-01-13", "--to", "2025-01-24", "--archive", "wayback")


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory, history: FeedHistory) -> set[tuple]:
    """The database after one uninterrupted recrawl."""
    path = tmp_path_factory.mktemp("one-run")
    home = Home(path, f"sqlite:///{path / 'talentwatch.db'}")
    server = LoopbackServer(FakeWayback(history, FEED)).start()
    try:
        configure(home, {"wayback_url": server.url("")})
        assert home.run("recrawl", *INTERRUPTED).code == 0
        return snapshot(home)
    finally:
        server.stop()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_interrupted_recrawl_finishes_on_rerun_like_one_run(
        home: Home, history: FeedHistory, servers: list[LoopbackServer], one_run: set[tuple],
        how: signal.Signals) -> None:
    slow = serve(servers, FakeWayback(history, FEED, delay=0.25))
    configure(home, {"wayback_url": slow.url("")})
    proc = _start(home, "recrawl", *INTERRUPTED)
    deadline = time.monotonic() + 60
    while len(slow.requests("/web/")) < 8 or not _count(home):
        assert proc.poll() is None and time.monotonic() < deadline, "the recrawl ended before it was interrupted"
        time.sleep(0.05)
    proc.send_signal(how)
    assert proc.wait(timeout=60) != 0
    partial, full = _count(home), sum(1 for row in one_run if row[0] == "item")
    assert 0 < partial < full
    print(f"{how.name}: {partial} of {full} items stored when interrupted")

    again = home.run("recrawl", *INTERRUPTED)
    assert again.code == 0, again.err
    assert snapshot(home) == one_run


def _start(home: Home, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALENTWATCH_")}
    env["TALENTWATCH_HOME"] = str(home.path)
    return subprocess.Popen([sys.executable, "-m", "talentwatch", "--config", str(home.config), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=home.path)


def _count(home: Home) -> int:
    try:
        return home.sql("select count(*) from items")[0][0]
    except Exception:  # not created yet, or locked for a moment
        return 0


def test_gnews_one_search_per_day_links_resolved_range_respected(
        home: Home, history: FeedHistory, servers: list[LoopbackServer]) -> None:
    fake = FakeGoogleNews(list(history.items.values()), fail_first=1)
    google = serve(servers, fake)
    configure(home, {"google_news_url": google.url("")})
    expected = history.published_in(day("2025-02-03"), day("2025-02-06"))

    summary = recrawl(home, "2025-02-03", "2025-02-05", "--archive", "gnews")

    rows = home.sql("select url, title, via, guid from items")
    assert {u for u, *_ in rows} == set(expected)  # publisher URLs: every Google link resolved
    assert all(t == expected[u].title and not t.endswith(f" - {PUBLISHER}") for u, t, *_ in rows)
    assert {via for _, _, via, _ in rows} == {"gnews"} and all(guid for *_, guid in rows)
    searches = google.requests("/rss/search")
    assert len(searches) == 4  # three days, one of them asked twice: the first answer was a 429
    assert searches[1].at - searches[0].at >= 0.9  # ... and the retry waited (Retry-After: 1)
    days = sorted({(s.query["q"].split("after:")[1].split()[0], s.query["q"].split("before:")[1]) for s in searches})
    assert days == [("2025-02-03", "2025-02-04"), ("2025-02-04", "2025-02-05"), ("2025-02-05", "2025-02-06")]
    assert all(s.query["q"].startswith("site:arstechnica.com (") for s in searches)  # the site and key terms
    resolved = google.requests("/rss/articles/")
    decoded_offline = sum(1 for aid, item in fake.ids.items() if item.url in expected and aid.startswith("CBMi"))
    assert len(resolved) == len(expected) - decoded_offline > 0 and decoded_offline > 0
    assert summary["total"]["new"] == len(expected) and summary["total"]["errors"] == 0

    assert recrawl(home, "2025-02-03", "2025-02-05", "--archive", "gnews")["total"]["new"] == 0
    assert len(home.sql("select id from items")) == len(expected)


def test_sitemaps_from_robots_txt_by_publication_date(
        home: Home, history: FeedHistory, servers: list[LoopbackServer]) -> None:
    fake = FakeOutlet(list(history.items.values()))
    outlet = serve(servers, fake)
    configure(home, {}, SOURCES + f'sitemaps = ["{outlet.url("/robots.txt")}"]\n')
    in_range = history.published_in(day("2025-01-30"), day("2025-02-03"))  # plain sitemap (Jan), news (Feb)
    expected = {canonical_url(fake.url(i)): i.title for i in in_range.values()}

    summary = recrawl(home, "2025-01-30", "2025-02-02", "--archive", "sitemap")

    rows = home.sql("select url, title, summary, via from items")
    assert {u: t for u, t, *_ in rows} == expected
    assert {via for *_, via in rows} == {"sitemap"}
    plain = [i for i in in_range.values() if not i.published.strftime("%Y-%m") == NEWS_MONTH]  # type: ignore[union-attr]
    assert 0 < len(plain) < len(in_range)
    assert len(outlet.requests("/a/")) == len(plain)  # pages read only for titles the sitemap lacks, in range
    plain_urls = {canonical_url(fake.url(i)) for i in plain}
    assert all(s.startswith("What ") for u, _, s, _ in rows if u in plain_urls)  # and their description
    assert not outlet.requests("/sitemap-2024-12.xml")  # unchanged since before the range: not read
    assert summary["total"]["new"] == len(expected) and summary["total"]["errors"] == 0

    assert recrawl(home, "2025-01-30", "2025-02-02", "--archive", "sitemap")["total"]["new"] == 0


def test_gdelt_per_day_one_request_per_five_seconds(
        home: Home, history: FeedHistory, servers: list[LoopbackServer]) -> None:
    gdelt = serve(servers, FakeGdelt(list(history.items.values())))
    configure(home, {"gdelt_url": gdelt.url("")})
    expected = history.published_in(day("2025-02-10"), day("2025-02-12"))

    recrawl(home, "2025-02-10", "2025-02-11", "--archive", "gdelt")

    rows = home.sql("select url, title, via from items")
    assert {u: t for u, t, _ in rows} == {u: i.title for u, i in expected.items()}
    assert {via for *_, via in rows} == {"gdelt"}
    first, second = gdelt.requests("/api/")
    assert second.at - first.at >= 4.9  # GDELT asks for one request per 5 seconds
    assert sorted((r.query["startdatetime"], r.query["enddatetime"]) for r in (first, second)) == [
        ("20250210000000", "20250210235959"), ("20250211000000", "20250211235959")]
    assert first.query["mode"] == "ArtList" and first.query["format"] == "json"
    assert first.query["query"].endswith(" domainis:arstechnica.com")


def test_all_archives_in_turn_each_item_stored_once_as_the_first_had_it(
        home: Home, history: FeedHistory, servers: list[LoopbackServer]) -> None:
    outlet = FakeOutlet(list(history.items.values()))
    bases = {"wayback_url": serve(servers, FakeWayback(history, FEED)).url(""),
             "google_news_url": serve(servers, FakeGoogleNews(list(history.items.values()))).url(""),
             "gdelt_url": serve(servers, FakeGdelt(list(history.items.values()))).url("")}
    configure(home, bases, SOURCES + f'sitemaps = ["{serve(servers, outlet).url("/sitemap_index.xml")}"]\n')
    expected = history.published_in(day("2025-02-04"), day("2025-02-05"))

    result = home.run("recrawl", "--from", "2025-02-04", "--to", "2025-02-04")  # every archive that applies

    assert result.code == 0, result.err
    for phase in ("stored", "wayback", "sitemap", "gdelt", "gnews"):  # progress bars, on stderr
        assert phase in result.err
    for column in ("candidates", "new", "updated", "re-tagged", "errors"):
        assert column in result.out
    rows = home.sql("select url, via from items")
    assert len(rows) == len({u for u, _ in rows}) == 2 * len(expected)  # the feed's items, and the outlet's copies
    assert {u for u, via in rows if via == "wayback"} == set(expected)  # gdelt and gnews found them again: no new row
    assert {u for u, via in rows if via == "sitemap"} == {canonical_url(outlet.url(i)) for i in expected.values()}
    again = json.loads(home.run("recrawl", "--from", "2025-02-04", "--to", "2025-02-04", "--format", "json").out)
    assert {(r["provider"], r["candidates"] > 0, r["new"]) for r in again["rows"]} == {
        ("stored", True, 0), ("wayback", True, 0), ("sitemap", True, 0), ("gdelt", True, 0), ("gnews", True, 0)}


class CountingWayback(FakeWayback):
    """A wayback whose answers take a while, counting how many are being answered at once."""

    def __init__(self, history: FeedHistory, feed_url: str) -> None:
        super().__init__(history, feed_url)
        self.lock, self.busy, self.most = threading.Lock(), 0, 0

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        with self.lock:
            self.busy += 1
            self.most = max(self.most, self.busy)
        try:
            time.sleep(0.05)
            return super().answer(path, query)
        finally:
            with self.lock:
                self.busy -= 1


def test_two_recrawls_on_one_postgresql_ask_the_archives_one_after_the_other(
        pg_home: Home, history: FeedHistory, servers: list[LoopbackServer]) -> None:
    wayback = CountingWayback(history, FEED)
    configure(pg_home, {"wayback_url": serve(servers, wayback).url("")})
    args = ("recrawl", "--from", "2025-02-01", "--to", "2025-02-14", "--archive", "wayback", "--format", "json")
    assert pg_home.run("status").code == 0  # the schema, before two processes race to create it
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TALENTWATCH_")},
           "TALENTWATCH_HOME": str(pg_home.path)}
    procs = [subprocess.Popen([sys.executable, "-m", "talentwatch", "--config", str(pg_home.config), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=pg_home.path)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert wayback.most == 1  # never two requests at once: each process asks one at a time, and one process asks
    assert sum("another recrawl is asking the archives" in err for _, err in outs) == 1
    totals = [json.loads(out)["total"]["new"] for out, _ in outs]
    assert min(totals) == 0 and max(totals) == pg_home.sql("select count(*) from items")[0][0] > 0
