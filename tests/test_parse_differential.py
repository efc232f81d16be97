"""The fast parse path and feedparser agree on what the pipeline stores, for every document of the shared corpus.

For each file of ``corpus/feeds/`` and ``corpus/feedparser-tests/`` the fast path either declines (feedparser then
parses it) or yields, after normalization, the same articles as feedparser: identity key, URL, GUID, title,
summary and date, in the same order, and the same ``ttl``.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import CORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.fastparse import parse_fast
from crawler.feedparse import parse_with_feedparser
from pipelines.normalize import normalize_entries

FEEDS = CORPUS / "feeds"
FEEDPARSER_TESTS = CORPUS / "feedparser-tests"
CONTENT_TYPES = {"atom": "application/atom+xml", "rdf": "application/rdf+xml"}
HEADER = re.compile(rb"^\s*Header:\s*([^:\r\n]+):\s*([^\r\n]*?)\s*$", re.MULTILINE)


def documents() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    feeds = sorted(p for p in FEEDS.glob("*.xml"))
    tests = sorted(p for p in FEEDPARSER_TESTS.rglob("*") if p.is_file() and p.suffix not in (".md", "")
                   and p.name != "LICENSE")
    return feeds + tests


def headers_for(path: Path, body: bytes) -> dict[str, str]:
    """The response headers the crawler would pass: the test file's own Header lines for feedparser's HTTP tests
    (text/xml when they name none, as its test server does), else what a server sends for the file's format."""
    rel = path.relative_to(CORPUS).as_posix()
    headers = {"content-location": f"http://127.0.0.1:8097/{rel}"}
    if path.is_relative_to(FEEDPARSER_TESTS) and "http" in rel:
        headers["content-type"] = "text/xml"
        comment = body[:body.find(b"-->")] if b"-->" in body else b""
        for name, value in HEADER.findall(comment):
            headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1")
    elif path.is_relative_to(FEEDS):
        fmt = "atom" if b"<feed" in body[:2000] else "rdf" if b"<rdf:RDF" in body[:2000] else "rss"
        headers["content-type"] = CONTENT_TYPES.get(fmt, "application/rss+xml")
    else:
        headers["content-type"] = "application/xml"
    return headers


def stored(parsed) -> tuple[list[tuple], float | None]:
    """What the pipeline keeps of a parse: the normalized articles' stored fields, and the feed's ttl."""
    return ([(a.key, a.url, a.guid, a.title, a.summary, a.published) for a in normalize_entries(parsed.entries)],
            parsed.ttl_seconds)


def corpus_name(path: Path) -> str:
    return "feeds" if path.is_relative_to(FEEDS) else "feedparser-tests"


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.relative_to(CORPUS).as_posix())
def test_fast_path_agrees_with_feedparser_or_declines(path: Path) -> None:
    body = path.read_bytes()
    headers = headers_for(path, body)
    fast = parse_fast(body, headers)
    if fast is None:
        return  # declined: feedparser parses this document
    assert stored(fast) == stored(parse_with_feedparser(body, headers))


def test_fast_path_reads_most_real_feeds(capsys: pytest.CaptureFixture[str]) -> None:
    """The fast path is worth having only if it reads the common documents: most real feeds, counted per corpus."""
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    counts: Counter[tuple[str, str]] = Counter()
    for path in documents():
        body = path.read_bytes()
        handled = parse_fast(body, headers_for(path, body)) is not None
        counts[corpus_name(path), "handled" if handled else "declined"] += 1
    with capsys.disabled():
        for corpus in ("feeds", "feedparser-tests"):
            print(f"\nfast path, {corpus}: {counts[corpus, 'handled']} handled, {counts[corpus, 'declined']} declined")
    assert counts["feeds", "handled"] >= 0.8 * (counts["feeds", "handled"] + counts["feeds", "declined"])


# ---- generated entries: the rules of precedence the corpus may not exercise ------------------------------------

_TEXT = st.sampled_from(["", "  ", "One", "Two &amp; three", "<![CDATA[<p>Four</p>]]>", "caf\u00c3\u00a9",
                         "\u20ac \u0080", "&lt;b&gt;bold&lt;/b&gt;"])
_LINK = st.sampled_from(["https://n.example.com/a?x=1&amp;y=2", "/relative/path", "", "tag:example.com,2026:1"])
_ELEMENT = st.one_of(
    st.builds("<title>{}</title>".format, _TEXT),
    st.builds("<dc:title>{}</dc:title>".format, _TEXT),
    st.builds("<media:title>{}</media:title>".format, _TEXT),
    st.builds("<description>{}</description>".format, _TEXT),
    st.builds("<media:description>{}</media:description>".format, _TEXT),
    st.builds("<itunes:summary>{}</itunes:summary>".format, _TEXT),
    st.builds("<content:encoded>{}</content:encoded>".format, _TEXT),
    st.builds("<link>{}</link>".format, _LINK),
    st.builds('<atom:link rel="{}" href="{}"/>'.format, st.sampled_from(["alternate", "self", "related"]), _LINK),
    st.builds('<guid isPermaLink="{}">{}</guid>'.format, st.sampled_from(["true", "false", "True"]), _LINK),
    st.builds("<guid>{}</guid>".format, _LINK),
    st.builds("<pubDate>{}</pubDate>".format, st.sampled_from(["Mon, 23 Nov 2026 10:00:00 +0800", "", "soon"])),
    st.builds("<dc:date>{}</dc:date>".format, st.sampled_from(["2026-11-22T08:00:00Z", ""])),
    st.builds('<source url="https://s.example.com/">{}</source>'.format, _TEXT),
    st.just("<image>https://i.example.com/x.png</image>"),
    st.builds("<media:group>{}</media:group>".format, st.lists(st.sampled_from([
        "<media:title>Group title</media:title>", "<media:description>Group text</media:description>",
        '<media:content url="https://m.example.com/v.mp4"><media:title>Deep</media:title></media:content>',
        "<media:credit>Someone</media:credit>"]), max_size=3).map("".join)),
)
_NS = ('xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/" '
       'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" xmlns:atom="http://www.w3.org/2005/Atom" '
       'xmlns:content="http://purl.org/rss/1.0/modules/content/"')


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_ELEMENT, max_size=8).map("".join), min_size=1, max_size=3),
       st.sampled_from(["", ' xml:base="https://b.example.com/dir/"', ' xml:base="sub/"']))
def test_generated_entries_agree(items: list[str], base: str) -> None:
    body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"{base} {_NS}><channel><title>t</title>'
            + "".join(f"<item>{item}</item>" for item in items) + "</channel></rss>").encode()
    headers = {"content-type": "application/rss+xml", "content-location": "http://127.0.0.1/feed.xml"}
    fast = parse_fast(body, headers)
    assert fast is not None, "the fast path reads such documents"
    reference = parse_with_feedparser(body, headers)
    assert fast.entries == reference.entries
    assert stored(fast) == stored(reference)


@pytest.mark.parametrize("body", [
    b'\n<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
    b"<item><title>Late declaration</title><link>https://n.example.com/a</link></item></channel></rss>",
    b'<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title><item>'
    b'<title>AT&amp;T &#38; Co</title><link>https://n.example.com/b?x=1&amp;y=2</link>'
    b'<media:content url="https://i.example.com/p.jpg?w=140&q=85&s=7e"/>'
    b"<description><![CDATA[<p>Raw & kept</p>]]></description></item><!-- a & b --></channel></rss>",
], ids=["declaration-after-blank-line", "bare-ampersand-in-attribute"])
def test_slips_that_feedparser_reads_past_are_read_alike(body: bytes) -> None:
    """Two slips of real feeds (corpus/feeds' TechCrunch 2011 and Guardian 2022) make a document ill-formed but
    not unreadable: the fast path reads them as feedparser's loose parser does, and says what was wrong."""
    headers = {"content-type": "application/rss+xml", "content-location": "http://127.0.0.1/feed.xml"}
    fast = parse_fast(body, headers)
    assert fast is not None and fast.problem and "XMLSyntaxError" in fast.problem
    reference = parse_with_feedparser(body, headers)
    assert reference.problem, "feedparser calls it ill-formed too"
    assert stored(fast) == stored(reference) and fast.entries
