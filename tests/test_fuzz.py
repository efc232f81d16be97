"""Fuzzing with hypothesis (a fixed, derandomized profile with modest example counts, for CI time).

- The query language parser (``pipelines.tagging.query.parse``): on any text, a query or a ``QueryError`` whose
  position lies within the query; never another exception. Parsed queries compile into a tagger that tags text.
- Feed bytes through parse -> normalize -> tag -> store (``crawler.parsepool.process_body``, then
  ``store.queries.save_fetches``, as a crawl does): never an exception out of parsing, and each fetch is either
  stored whole (every article's row equal to the article) or not at all. On SQLite and, when it runs, PostgreSQL
  (which refuses NUL characters in text: a feed may carry them as ``&#0;``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from xml.sax.saxutils import escape

import pytest
from conftest import need, pg_available
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawler.items import FeedFetch
from crawler.parsepool import process_body, rules_stamp
from crawler.sources import Source
from pipelines.tagging import Entity, RuleError, Tagger, Topic
from pipelines.tagging.query import QueryError, parse
from store import models as m
from store.db import open_database
from store.queries import save_fetches, sync_config
from talentwatch.config import load_config

FUZZ = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TOPICS = load_config(None).topics_path  # the shipped rules
DEEPSEEK = Entity("deepseek", "DeepSeek", "org", ("DeepSeek", "深度求索"))
TOKENS = ["AND", "OR", "NOT", "and", "or", "(", ")", "((", ")(", "NEAR/3", "NEAR/", "NEAR/x", "NEAR/0", "NEAR/99999",
          '"', '"talent visa"', '""', "title:", "title:(", "@", "@deepseek", "@no-such-entity", "engineer*", "*", "**",
          "深度求索", "出境", "人才", "a", "AI", "-", ":", "\\", "\t", "\n", "\x00", "\u200b", "NOT NOT"]


@FUZZ
@given(st.text(max_size=80))
def test_any_text_parses_or_fails_with_a_position(query: str) -> None:
    _parse(query)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=12), st.lists(st.sampled_from(["", " "]), min_size=12,
                                                                   max_size=12))
def test_query_shaped_text_parses_or_fails_with_a_position(tokens: list[str], spaces: list[str]) -> None:
    _parse("".join(t + s for t, s in zip(tokens, spaces, strict=False)))


def _parse(query: str) -> None:
    """parse: a query or a positioned QueryError. A query that parses compiles into a tagger (or a positioned
    RuleError: NEAR/0, an unknown entity) that tags text without raising."""
    try:
        parse(query)
    except QueryError as e:
        assert 0 <= e.position <= len(query), (query, e.position)
        assert str(e).endswith(f"at position {e.position}")
        return
    try:
        tagger = Tagger([Topic("t", "t", query)], [DEEPSEEK])
    except RuleError as e:
        assert 0 <= e.position <= len(query), (query, e.position)
        return
    tagger.tag("DeepSeek engineers: travel approval, talent visa", "深度求索 AI engineer trip a b x")


# ---- feed bytes ------------------------------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
FIELD = st.one_of(TEXT.map(escape), TEXT.map(lambda t: f"<![CDATA[{t}]]>"), TEXT,
                  st.sampled_from(["&#0;", "a&#0;b", "&#x1;", "&amp;lt;script&amp;gt;", "&lol;", "<b>x</b>",
                                   "\u202e\u0000", "&#xD800;", "]]>", "http://x.example.com/a b?c=d#e"]))
ITEM = st.tuples(FIELD, FIELD, FIELD, FIELD)  # title, link, guid, description


def _document(items: list[tuple[str, str, str, str]], kind: str) -> bytes:
    if kind == "atom":
        body = "".join(f"<entry><title>{t}</title><link href='{escape(link)}'/><id>{g}</id><summary>{d}</summary>"
                       f"</entry>" for t, link, g, d in items)
        return f"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>{body}</feed>".encode(
            "utf-8", "surrogatepass")
    body = "".join(f"<item><title>{t}</title><link>{link}</link><guid>{g}</guid><description>{d}</description></item>"
                   for t, link, g, d in items)
    return f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>{body}</channel></rss>".encode(
        "utf-8", "surrogatepass")


FEEDS = st.one_of(
    st.builds(_document, st.lists(ITEM, max_size=6), st.sampled_from(["rss", "atom"])),
    st.binary(max_size=300),
    st.builds(lambda doc, cut: doc[:cut], st.builds(_document, st.lists(ITEM, min_size=1, max_size=4),
                                                     st.just("rss")), st.integers(0, 400)),  # truncated
)


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def engine(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    else:
        need(pg_available(), "PostgreSQL is not reachable")
        url = request.getfixturevalue("pg_url")
    engine = open_database(url)
    with Session(engine) as session, session.begin():
        sync_config(session, [Source("fuzz", "fuzz", ("http://fuzz.example.com/feed",))], [], [])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def pg_url():  # the conftest fixture is function-scoped; this module shares one database per run
    from conftest import scratch_database

    with scratch_database("tw_fuzz") as url:
        yield url


@settings(FUZZ, max_examples=100)
@given(body=FEEDS)
def test_feed_bytes_are_stored_whole_or_not_at_all(engine, body: bytes) -> None:
    parsed = process_body(body, {"content-type": "application/rss+xml"}, rules_stamp(TOPICS))
    if parsed.feed.error:
        assert parsed.articles is None
        return
    with Session(engine) as session:
        feed_id = session.scalar(select(m.Feed.id))
        before = session.scalar(select(func.count()).select_from(m.Item))
    fetch = FeedFetch(feed_id=feed_id, source_id="fuzz", url="http://fuzz.example.com/feed",
                      fetched=datetime.now(UTC), interval=1800.0, status=200, articles=parsed.articles or [])
    (result,) = save_fetches(engine, [fetch])
    with Session(engine) as session:
        rows = {r.key: r for r in session.execute(select(m.Item.key, m.Item.title, m.Item.summary, m.Item.url))}
        after = session.scalar(select(func.count()).select_from(m.Item))
    if isinstance(result, Exception):  # refused: nothing of it stored
        assert after == before, result
        pytest.fail(f"a parsed feed could not be stored: {type(result).__name__}: {result}")
    for a in fetch.articles:
        assert (rows[a.key].title, rows[a.key].summary, rows[a.key].url) == (a.title, a.summary, a.url)
