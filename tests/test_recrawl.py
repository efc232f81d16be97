"""`recrawl`: usage errors, re-processing stored items with changed rules, and the archive providers' parsers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from archives.gnews import encoded_id
from conftest import FeedServer, Home

from crawler.archives import Window, key_terms
from crawler.archives.backoff import retry_after
from crawler.archives.gdelt import parse_artlist, seen_date
from crawler.archives.gnews import decode_link
from crawler.archives.sitemap import parse_sitemap, w3c_datetime
from crawler.archives.wayback import capture_time, parse_cdx
from pipelines.normalize import identity_key


def rss(items: list[tuple[str, str, str, str]]) -> bytes:
    """RSS 2.0 of (guid, title, description, RFC 822 date) items."""
    body = "".join(f"<item><title>{title}</title><link>https://news.example.com/{guid}</link><guid>{guid}</guid>"
                   f"<description>{text}</description><pubDate>{date}</pubDate></item>"
                   for guid, title, text, date in items)
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{body}</channel></rss>".encode()


def topics(watch: str, alias: str, extra: str = "") -> str:
    """One entity and the topic "watch" (and "extra" when given)."""
    rules = (f'[[entity]]\nid = "acme"\nname = "Acme Corp"\nkind = "org"\naliases = ["{alias}"]\n\n'
             f'[[topic]]\nid = "watch"\nname = "Watch"\nquery = \'{watch}\'\n')
    return rules + (f'\n[[topic]]\nid = "extra"\nname = "Extra"\nquery = \'{extra}\'\n' if extra else "")


@pytest.mark.parametrize("args, message", [
    (("--from", "2025-01-20", "--to", "2025-01-10"), "--from 2025-01-20 is after --to 2025-01-10"),
    (("--from", "2099-01-01", "--to", "2099-01-02"), "is in the future"),
    (("--from", "2025-01-01", "--to", "2025-01-02", "--source", "nope"), "unknown source nope"),
    (("--from", "2025-01-01", "--to", "2025-01-02", "--archive", "archive-org"), "unknown archive archive-org"),
    (("--from", "2025-01-01", "--to", "2025-01-02", "--archive", "gnews", "--no-archive"), "not allowed with"),
    (("--from", "yesterday", "--to", "2025-01-02"), "expected an ISO date"),
])
def test_bad_ranges_and_names_exit_2(home: Home, args: tuple[str, ...], message: str) -> None:
    home.write_config([("src", ["http://127.0.0.1:9/feed"])])
    result = home.run("recrawl", *args)
    assert result.code == 2 and message in result.err, result.err
    assert not (home.path / "talentwatch.db").exists() or not home.sql("select id from items")


def test_retag_changes_tags_only_inside_the_range(home: Home, feed_server: FeedServer) -> None:
    texts = [("Alpha one", "Alpha one."), ("Gamma two", "Gamma two."), ("Alpha three", "Nothing here. Gamma said."),
             ("Gamma four", "Gamma four."), ("Alpha five", "Alpha five."), ("Gamma six", "Gamma six.")]
    feed_server.put("/f.xml", rss([(f"n{d}", title, text, f"Fri, {d} Jan 2025 12:00:00 +0000")
                                   for d, (title, text) in zip(range(10, 16), texts, strict=True)]))
    home.write_config([("src", [feed_server.url("/f.xml")])], topics=topics("alpha", "Alpha"))
    assert home.run("crawl").code == 0
    (moved,) = home.sql("select id from items where title = 'Gamma four'")[0]  # a URL an older normalizer kept
    odd = "https://news.example.com/n13?utm_source=x"
    _exec(home, "update items set url = :u, key = :k where id = :i", u=odd, k=identity_key(odd, None, "", ""), i=moved)
    for title in ("Gamma four", "Gamma six"):  # as if stored before story clustering existed
        _exec(home, "delete from story_keys where item_id = (select id from items where title = :t)", t=title)
        _exec(home, "update items set story_id = null where title = :t", t=title)
    before = _tags(home)
    assert {t: sorted(tags) for t, (tags, _) in before.items()} == {
        "Alpha one": ["watch"], "Alpha three": ["watch"], "Alpha five": ["watch"]}

    home.write_config([("src", [feed_server.url("/f.xml")])], topics=topics("gamma", "Gamma", extra="three"))
    result = home.run("recrawl", "--from", "2025-01-12", "--to", "2025-01-13", "--no-archive", "--format", "json")

    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["rows"] == [{"source": "src", "provider": "stored", "candidates": 2, "new": 0, "updated": 1,
                                "retagged": 2, "errors": 0}]
    after = _tags(home)
    tags, entities = after["Alpha three"]
    assert sorted(tags) == ["extra", "watch"] and entities == ["acme"]  # a new topic, and new evidence:
    assert tags["watch"] != before["Alpha three"][0]["watch"] and all("Gamma" in e for e in tags["watch"])
    assert sorted(after["Gamma four"][0]) == ["watch"] and after["Gamma four"][1] == ["acme"]  # newly tagged
    for title in ("Alpha one", "Alpha five", "Gamma two", "Gamma six"):  # outside the range: untouched
        assert after.get(title) == before.get(title)
    stories = dict(home.sql("select title, story_id from items where title like 'Gamma %'"))
    assert stories["Gamma four"] is not None and stories["Gamma six"] is None  # re-clustered inside the range only
    assert home.sql("select url, key from items where id = :i", i=moved) == [
        ("https://news.example.com/n13", identity_key("https://news.example.com/n13", None, "", ""))]

    again = home.run("recrawl", "--from", "2025-01-12", "--to", "2025-01-13", "--no-archive", "--format", "json")
    assert json.loads(again.out)["total"] == {"candidates": 2, "new": 0, "updated": 0, "retagged": 0, "errors": 0}
    assert _tags(home) == after


def _exec(home: Home, query: str, **params: object) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(home.database_url)
    with engine.begin() as conn:
        conn.execute(text(query), params)
    engine.dispose()


def _tags(home: Home) -> dict[str, tuple[dict[str, list[str]], list[str]]]:
    """title -> ({topic: evidence}, [entity ids])"""
    tags: dict[str, tuple[dict[str, list[str]], list[str]]] = {}
    for title, topic, evidence in home.sql("select i.title, t.topic_id, t.evidence from tags t join items i "
                                           "on i.id = t.item_id"):
        tags.setdefault(title, ({}, []))[0][topic] = json.loads(evidence)
    for title, entity in home.sql("select i.title, e.entity_id from item_entities e join items i on i.id = e.item_id"):
        tags.setdefault(title, ({}, []))[1].append(entity)
    return tags


def test_window_days_cut_at_midnight() -> None:
    start = datetime(2025, 1, 10, 15, tzinfo=UTC)
    days = Window(start, datetime(2025, 1, 12, 6, tzinfo=UTC)).days()
    assert [(d.start.day, d.start.hour, d.end.day, d.end.hour) for d in days] == [(10, 15, 11, 0), (11, 0, 12, 0),
                                                                                   (12, 0, 12, 6)]
    assert start in days[0] and days[0].end not in days[0]


def test_key_terms_from_topic_queries() -> None:
    queries = ['(poach* OR "talent war" OR "brain drain" OR hire) AND (AI OR chips) AND NOT (wildlife OR ivory)',
               '("export controls" OR "Entity List" OR 出口管制) NEAR/5 (chip OR chips OR semiconductor*)']
    assert key_terms(queries) == ["talent war", "export controls", "brain drain", "entity list", "hire", "出口管制",
                                  "chips", "chip"]
    assert key_terms(queries, budget=5) == ["talent war", "export controls", "hire"]


def test_google_news_links() -> None:
    url = "https://arstechnica.com/ai/2025/01/some-story/"
    assert decode_link(f"https://news.google.com/rss/articles/{encoded_id(url)}?oc=5") == url
    assert decode_link("https://news.google.com/rss/articles/AU_yqLNotACarrierOfURLs?oc=5") is None
    assert decode_link("https://arstechnica.com/ai/2025/01/some-story/") is None


def test_cdx_and_capture_times() -> None:
    body = json.dumps([["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"],
                       ["com,x)/feed", "20250111015034", "https://x.com/feed", "text/xml", "200", "AB", "10"]])
    assert parse_cdx(body.encode()) == [("20250111015034", "https://x.com/feed")]
    assert parse_cdx(b"[]") == [] and parse_cdx(b"<html>busy</html>") == []
    assert capture_time("https://web.archive.org/web/20250111015034id_/https://x.com/feed") == datetime(
        2025, 1, 11, 1, 50, 34, tzinfo=UTC)


def test_sitemap_and_gdelt_parsers() -> None:
    news = (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            b'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9" '
            b'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"><url><loc>https://x.com/a</loc>'
            b'<image:image><image:loc>https://x.com/i.jpg</image:loc><image:title>pic</image:title></image:image>'
            b'<news:news><news:publication_date>2025-01-10T08:00:00+08:00</news:publication_date>'
            b'<news:title>A &amp; B</news:title></news:news></url></urlset>')
    assert parse_sitemap(news) == ("urlset", [{"loc": "https://x.com/a", "publication_date":
                                               "2025-01-10T08:00:00+08:00", "title": "A & B"}])
    assert w3c_datetime("2025-01-10T08:00:00+08:00") == datetime(2025, 1, 10, tzinfo=UTC)
    assert w3c_datetime("2025-01-10") == datetime(2025, 1, 10, tzinfo=UTC) and w3c_datetime("soon") is None
    assert parse_sitemap(b"not xml at all")[1] == []
    assert parse_artlist(b"Invalid query: the keyword is too short.") == []
    assert seen_date("20250110T231500Z") == datetime(2025, 1, 10, 23, 15, tzinfo=UTC)


def test_retry_after() -> None:
    assert retry_after(b"7") == 7.0 and retry_after(None) is None
    later = (datetime.now(UTC) + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 <= (retry_after(later) or 0) <= 30
