"""Polling over time: conditional requests, changed feeds, edited titles, and feeds that fail."""

from __future__ import annotations

from conftest import FeedServer, Home


def rss(items: list[tuple[str, str]], extra: str = "") -> bytes:
    """An RSS 2.0 document of (guid, title) items; links derive from the guid."""
    body = "".join(
        f"<item><title>{title}</title><link>https://news.example.com/{guid}?utm_source=rss</link>"
        f"<guid isPermaLink='false'>{guid}</guid><description>About {title}</description>"
        f"<pubDate>Mon, 23 Nov 2026 10:00:00 +0800</pubDate></item>"
        for guid, title in items)
    return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>{extra}"
            f"{body}</channel></rss>").encode()


def test_second_crawl_is_conditional_and_adds_nothing(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/a.xml", rss([("a1", "One"), ("a2", "Two")]))
    feed_server.put("/b.xml", rss([("b1", "Three")]))
    home.write_config([("src", [feed_server.url("/a.xml"), feed_server.url("/b.xml")])])
    assert home.run("crawl").code == 0
    first = home.sql("select id, key, title from items order by id")
    assert len(first) == 3

    result = home.run("crawl")
    assert result.code == 0, result.err
    assert "0 parsed, 2 unchanged" in result.out
    second_requests = feed_server.requests_for("/a.xml")[1]
    assert second_requests.headers.get("If-None-Match") and second_requests.headers.get("If-Modified-Since")
    assert second_requests.status == 304
    assert home.sql("select id, key, title from items order by id") == first


def test_changed_feed_adds_only_new_entries_and_edits_update(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/a.xml", rss([("a1", "One"), ("a2", "Two")]))
    home.write_config([("src", [feed_server.url("/a.xml")])])
    assert home.run("crawl").code == 0
    before = dict(home.sql("select key, id from items"))

    feed_server.put("/a.xml", rss([("a3", "Three"), ("a1", "One, edited"), ("a2", "Two")]))
    result = home.run("crawl")
    assert result.code == 0, result.err
    assert "1 new, 1 updated" in result.out
    rows = home.sql("select id, key, title from items order by id")
    assert len(rows) == 3
    assert {k: i for i, k, _ in rows if k in before} == before  # same rows, same ids
    assert ("One, edited",) in [(t,) for _, _, t in rows]


def test_url_change_with_stable_guid_updates_the_row(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/a.xml", rss([("a1", "One")]))
    home.write_config([("src", [feed_server.url("/a.xml")])])
    assert home.run("crawl").code == 0
    (item_id,) = home.sql("select id from items")[0]
    moved = rss([("a1", "One")]).replace(b"news.example.com/a1", b"news.example.com/2026/a1-renamed")
    feed_server.put("/a.xml", moved)
    assert home.run("crawl").code == 0
    assert home.sql("select id, url from items") == [(item_id, "https://news.example.com/2026/a1-renamed")]


def test_failing_feeds_record_errors_and_others_are_stored(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/good.xml", rss([("g1", "Good")]))
    bad = {"/status/500": "HTTP 500", "/hang": "TimeoutError", "/garbage": "not a feed"}
    home.write_config([("good", [feed_server.url("/good.xml")]),
                       ("bad", [feed_server.url(p) for p in bad])])
    result = home.run("crawl")
    assert result.code == 0, result.err  # some feeds failing is still a successful crawl
    assert "1 parsed, 0 unchanged, 3 failed" in result.out
    assert home.sql("select title from items") == [("Good",)]
    rows = {url: (err, failures, due) for url, err, failures, due in home.sql(
        "select url, last_error, failures, next_due from feeds")}
    for path, error in bad.items():
        err, failures, due = rows[feed_server.url(path)]
        assert error in err and failures == 1 and due is not None
    assert rows[feed_server.url("/good.xml")][:2] == (None, 0)

    status = {r["feed_url"]: r for r in home.run("status", "--format", "json").json_lines()}
    assert status[feed_server.url("/status/500")]["last_status"] == 500
    assert status[feed_server.url("/status/500")]["failures"] == 1
    assert status[feed_server.url("/good.xml")]["items_week"] == 1
    assert status[feed_server.url("/good.xml")]["last_error"] is None
