"""One `talentwatch crawl` through the real Scrapy engine over the 58 real feeds of the shared corpus, served on
loopback: every entry feedparser finds in a file is stored (the same URL once), the odd encodings included."""

from __future__ import annotations

import io
from pathlib import Path

import feedparser
import pytest
from conftest import need_corpus

from pipelines.normalize import canonical_url

NOT_FEEDS = {"bloomberg-news-sitemap-2026-03.xml"}  # a Google News sitemap, listed in the corpus for archives


def corpus_feeds() -> list[Path]:
    folder = need_corpus() / "feeds"
    return sorted(p for p in folder.glob("*.xml") if p.name not in NOT_FEEDS)


def expected_links(path: Path) -> set[str]:
    """Canonical links of the entries feedparser itself finds in the file."""
    parsed = feedparser.parse(io.BytesIO(path.read_bytes()))
    return {canonical_url(e.link) for e in parsed.entries if e.get("link", "").startswith("http")}


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory):
    from conftest import FeedServer, Home

    feeds = corpus_feeds()
    server = FeedServer().start()
    for p in feeds:
        server.put(f"/{p.name}", p.read_bytes())
    tmp = tmp_path_factory.mktemp("corpus")
    home = Home(tmp, f"sqlite:///{tmp / 'talentwatch.db'}")
    home.write_config([("corpus", [server.url(f"/{p.name}") for p in feeds])])
    result = home.run("crawl")
    yield home, server, feeds, result
    server.stop()


def test_crawl_succeeds_and_every_feed_is_fetched(crawled) -> None:
    home, server, feeds, result = crawled
    assert result.code == 0, result.err
    assert f"Polled {len(feeds)} feeds: {len(feeds)} parsed" in result.out
    assert home.sql("select count(*) from feeds where last_success is not null and last_error is null") == [
        (len(feeds),)]


def test_every_entry_with_a_link_is_stored_once(crawled) -> None:
    home, _, feeds, _ = crawled
    stored = [u for (u,) in home.sql("select url from items where url is not null")]
    assert len(stored) == len(set(stored)), "an article was stored twice"
    expected = set().union(*(expected_links(p) for p in feeds))
    missing = {p.name: sorted(expected_links(p) - set(stored))[:3] for p in feeds if expected_links(p) - set(stored)}
    assert not missing
    assert set(stored) == expected


def test_entries_without_links_are_kept(crawled) -> None:
    home, _, feeds, _ = crawled
    linkless = sum(1 for p in feeds for e in feedparser.parse(io.BytesIO(p.read_bytes())).entries
                   if not e.get("link", "").startswith("http"))
    assert home.sql("select count(*) from items where url is null") == [(linkless,)]


@pytest.mark.parametrize("name, sample", [
    ("qq-news-china-2018-09-gb2312.xml", "国"),  # GB2312, which Python's expat cannot read
    ("golem-de-2018-12-iso88591.xml", "ü"),  # declared ISO-8859-1
    ("uol-noticias-2018-09-latin1-nodecl.xml", "ã"),  # undeclared Latin-1
])
def test_non_utf8_feeds_are_decoded(crawled, name: str, sample: str) -> None:
    home, server, _, _ = crawled
    titles = [t for (t,) in home.sql(
        "select i.title from items i join feeds f on f.id = i.feed_id where f.url = :u", u=server.url(f"/{name}"))]
    assert titles and any(sample in t for t in titles)
    assert not any("\ufffd" in t for t in titles)


def test_not_well_formed_feeds_still_yield_entries(crawled) -> None:
    home, server, _, _ = crawled
    for name in ("guardian-world-2022-09.xml", "techcrunch-feedburner-2011-11.xml"):
        (n,) = home.sql("select count(*) from items i join feeds f on f.id = i.feed_id where f.url = :u",
                        u=server.url(f"/{name}"))[0]
        assert n == len(expected_links(Path(need_corpus() / "feeds" / name)))


def test_dates_are_utc_and_summaries_plain_text(crawled) -> None:
    home, _, _, _ = crawled
    result = home.run("items", "--format", "json", "--source", "corpus")
    records = result.json_lines()
    assert len(records) > 1500
    dated = [r for r in records if r["published"]]
    assert len(dated) > 0.9 * len(records)
    assert all(r["published"].endswith("Z") for r in dated)
    assert not any("<p>" in r["summary"] or "<a " in r["summary"] for r in records)
