"""Full text (issue 7): the extract stage's verdicts, and `crawl`/`recrawl` end to end against a loopback server
whose feed links to real article pages of the shared corpus, a paywall, a non-HTML file, robots.txt, a redirect
and a private address."""

from __future__ import annotations

import gzip
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import FeedServer, Home, need_corpus

from pipelines.extract import extract_article, judge

WEWORK = "06e5123e4ef7cfb4533250dc45d1e03d0838fc66223f45c583c4d12f48b4da85"  # VentureBeat, 2019-11-18
EUROPA = "14cc2a0ca59c62a8c9f205a171e9ccf4ef4cf69b0c642f51c8c65c051b39024f"  # ScienceAlert, 2019-11-18
TOPICS = """
[[entity]]
id = "wework"
name = "WeWork"
kind = "org"
aliases = ["WeWork"]

[[topic]]
id = "founder-trademark"
name = "A founder's trademark"
query = 'Neumann AND trademark'

[[topic]]
id = "space"
name = "Space"
query = 'Europa OR Jupiter'
"""


def corpus_page(page_id: str) -> bytes:
    return gzip.decompress((need_corpus() / "article-extraction" / "html" / f"{page_id}.html.gz").read_bytes())


def rss(items: list[tuple[str, str, str, str | None]]) -> bytes:
    """RSS 2.0 of (link, title, description, RFC 822 date or None) items."""
    body = "".join(f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
                   f"<description>{text}</description>" + (f"<pubDate>{date}</pubDate>" if date else "") + "</item>"
                   for link, title, text, date in items)
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{body}</channel></rss>".encode()


@pytest.mark.parametrize(("html", "url", "text", "summary", "status"), [
    ("<p>x</p>", "https://a.example/1", "", "", "failed"),
    ("<p>x</p>", "https://consent.example.com/?continue=x", "We use cookies. Accept all to continue.", "", "blocked"),
    ("<p>x</p>", "https://a.example/gdpr/consent-rules", "The whole story on consent rules. " * 60, "", "ok"),
    ("<p>x</p>", "https://a.example/1", "We and our partners use cookies and consent. Accept", "", "blocked"),
    ('<form><input type="password" name="pw"></form>', "https://a.example/1", "Sign in to read this story.", "",
     "paywalled"),
    ('{"isAccessibleForFree": false}', "https://a.example/1", "The first paragraph only.", "", "paywalled"),
    ("<p>x</p>", "https://a.example/1", "A teaser.", "A summary that is longer than the teaser.", "paywalled"),
    ("<p>x</p>", "https://a.example/1", "The whole story. " * 100, "A summary.", "ok"),
    ('{"isAccessibleForFree": false}', "https://a.example/1", "The whole story. " * 100, "", "ok"),  # text served
])
def test_judge(html: str, url: str, text: str, summary: str, status: str) -> None:
    assert judge(html, url, text, summary)[0] == status


def test_extract_article_gives_text_and_metadata() -> None:
    found = extract_article(corpus_page(WEWORK).decode(), "https://venturebeat.com/2019/11/18/x/", "A summary.")
    assert found.status == "ok" and found.text and "Neumann" in found.text and len(found.text) > 2000
    assert found.published == datetime(2019, 11, 18, tzinfo=UTC)
    assert found.title and "WeWork" in found.title and found.language == "en-us" and found.author


def serve(server: FeedServer) -> None:
    base = server.url("")
    server.put("/wework.html", corpus_page(WEWORK), content_type="text/html; charset=utf-8")
    server.put("/europa", corpus_page(EUROPA), content_type="text/html; charset=utf-8")
    server.put("/moved", b"", content_type="text/html", status=301, headers={"Location": f"{base}/europa"})
    server.put("/paywalled.html", b"<html><body><p>Subscribe to read</p></body></html>", content_type="text/html",
               status=403)
    server.put("/report.pdf", b"%PDF-1.4 " + b"0" * 2000, content_type="application/pdf")
    server.put("/huge.html", b"<html><body>" + b"<p>words</p>" * 450_000 + b"</body></html>",
               content_type="text/html")  # over 5 MB
    server.put("/robots.txt", b"User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    server.put("/private/memo.html", corpus_page(EUROPA), content_type="text/html")
    server.put("/to-lan", b"", content_type="text/html", status=302, headers={"Location": "http://10.255.255.1/x"})
    server.put("/feed.xml", rss([
        (f"{base}/wework.html", "WeWork under investigation", "The workspace provider faces an inquiry.", None),
        (f"{base}/moved", "Water on a moon", "Scientists found vapour.", "Mon, 18 Nov 2019 20:00:00 +0000"),
        (f"{base}/paywalled.html", "Paywalled story", "The feed's summary of a paywalled story.",
         "Mon, 18 Nov 2019 10:00:00 +0000"),
        (f"{base}/report.pdf", "A report", "A PDF.", "Mon, 18 Nov 2019 09:00:00 +0000"),
        (f"{base}/huge.html", "A huge page", "Too big.", "Mon, 18 Nov 2019 08:30:00 +0000"),
        (f"{base}/private/memo.html", "A memo", "Not for robots.", "Mon, 18 Nov 2019 08:00:00 +0000"),
        ("ftp://127.0.0.1/file.txt", "An FTP file", "Not http.", "Mon, 18 Nov 2019 07:30:00 +0000"),
        ("http://10.255.255.1/intranet.html", "Intranet", "A private address.", "Mon, 18 Nov 2019 07:00:00 +0000"),
        (f"{base}/to-lan", "Redirected", "A redirect to a private address.", "Mon, 18 Nov 2019 06:00:00 +0000"),
    ]))


def items_by_title(home: Home) -> dict[str, dict]:
    result = home.run("items", "--format", "json", "--with-text")
    assert result.code == 0, result.err
    return {r["title"]: r for r in result.json_lines()}


def test_crawl_fetches_and_extracts_article_texts(home: Home, feed_server: FeedServer, tmp_path: Path) -> None:
    serve(feed_server)
    home.write_config([("news", [feed_server.url("/feed.xml")])], topics=TOPICS, extra="fulltext = true\n")

    result = home.run("crawl")

    assert result.code == 0, result.err
    assert "Texts: 2 ok, 1 paywalled, 3 blocked, 2 skipped." in result.out, result.out
    items = items_by_title(home)
    wework = items["WeWork under investigation"]
    assert wework["text_status"] == "ok" and "Adam Neumann" in wework["text"]
    assert wework["published"] == "2019-11-18T00:00:00Z"  # the feed gave none: the page's date
    assert wework["summary"] == "The workspace provider faces an inquiry."
    assert wework["tags"] == ["founder-trademark"] and wework["entities"] == ["wework"]  # matched in the text
    assert any("trademark" in snippet for snippet in wework["evidence"]["founder-trademark"])
    europa = items["Water on a moon"]  # through a redirect
    assert europa["text_status"] == "ok" and "Europa" in europa["text"] and europa["tags"] == ["space"]
    assert europa["published"] == "2019-11-18T20:00:00Z"  # the feed's date stays
    statuses = {title: (r["text_status"], r["text"]) for title, r in items.items()}
    assert statuses["Paywalled story"] == ("paywalled", None)
    assert items["Paywalled story"]["summary"] == "The feed's summary of a paywalled story."
    assert statuses["A report"] == ("skipped", None)
    assert statuses["A huge page"] == ("skipped", None)
    assert statuses["An FTP file"] == (None, None) and items["An FTP file"]["url"] is None  # no link to follow
    assert statuses["A memo"] == ("blocked", None)  # robots.txt
    assert statuses["Intranet"] == ("blocked", None)  # a private address from a loopback feed
    assert statuses["Redirected"] == ("blocked", None)  # the redirect's hop to a private address
    assert not feed_server.requests_for("/private/memo.html")
    ua = feed_server.requests_for("/wework.html")[0].headers.get("User-Agent", "")
    assert ua.startswith("talentwatch/")

    again = home.run("crawl")  # outcomes are final: nothing is fetched again on the next poll

    assert again.code == 0, again.err
    assert "Texts:" not in again.out
    for path in ("/wework.html", "/europa", "/paywalled.html", "/report.pdf"):
        assert len(feed_server.requests_for(path)) == 1, path


def test_a_refused_link_is_logged(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/feed.xml", rss([("http://10.255.255.1/a.html", "Intranet", "Private.", None)]))
    home.write_config([("news", [feed_server.url("/feed.xml")])], topics=TOPICS, extra="fulltext = true\n")

    result = home.run("crawl")

    assert result.code == 0, result.err
    assert "link refused: http://10.255.255.1/a.html" in result.err and "10.255.255.1" in result.err
    assert items_by_title(home)["Intranet"]["text_status"] == "blocked"


def test_sources_without_fulltext_fetch_no_article(home: Home, feed_server: FeedServer) -> None:
    serve(feed_server)
    home.write_config([("news", [feed_server.url("/feed.xml")])], topics=TOPICS)

    assert home.run("crawl").code == 0
    assert {r["text_status"] for r in items_by_title(home).values()} == {None}
    assert not feed_server.requests_for("/wework.html")


def test_recrawl_fetches_the_texts_that_are_missing(home: Home, feed_server: FeedServer) -> None:
    serve(feed_server)
    home.write_config([("news", [feed_server.url("/feed.xml")])], topics=TOPICS, extra="fulltext = true\n")
    assert home.run("crawl").code == 0
    feed_server.put("/paywalled.html", corpus_page(WEWORK), content_type="text/html")  # the wall came down

    result = home.run("recrawl", "--from", "2019-11-18", "--to", "2019-11-18", "--no-archive", "--format", "json")

    assert result.code == 0, result.err
    items = items_by_title(home)
    assert items["Paywalled story"]["text_status"] == "ok" and "Neumann" in items["Paywalled story"]["text"]
    assert items["Paywalled story"]["tags"] == ["founder-trademark"]
    assert len(feed_server.requests_for("/wework.html")) == 1  # it had its text: not fetched again
    assert len(feed_server.requests_for("/paywalled.html")) == 2


def test_the_daemon_fetches_texts_after_each_poll(home: Home, feed_server: FeedServer) -> None:
    from test_daemon import Daemon, wait_for

    base = feed_server.url("")
    feed_server.put("/wework.html", corpus_page(WEWORK), content_type="text/html; charset=utf-8")
    feed_server.put("/feed.xml", rss([(f"{base}/wework.html", "WeWork under investigation", "An inquiry.", None)]))
    home.write_config([("news", [feed_server.url("/feed.xml")])], topics=TOPICS, extra="fulltext = true\n")
    daemon = Daemon(home)
    try:
        wait_for(lambda: "started:" in daemon.log_text(), 60, "the daemon to start")
        wait_for(lambda: bool(home.sql("select 1 from items where text_status = 'ok'")), 90, "the text")
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)  # only if it still runs
    ((tags,),) = home.sql("select group_concat(topic_id) from tags")
    assert tags == "founder-trademark"
    assert "texts: " in daemon.log_text() and "ok 1" in daemon.log_text()
