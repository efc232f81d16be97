"""The command line: configuration errors (exit 2, naming file and key), items JSON fields, PostgreSQL end to end."""

from __future__ import annotations

import pytest
from conftest import FeedServer, Home
from test_crawl_changes import rss

JSON_FIELDS = {"id", "source", "url", "title", "summary", "published", "fetched", "tags", "entities", "story",
               "evidence", "via", "text_status"}
TOPICS = """
[[entity]]
id = "deepseek"
name = "DeepSeek"
kind = "org"
aliases = ["深度求索"]

[[topic]]
id = "travel-approval"
name = "Travel approval"
query = '(travel OR trip* OR 出境) NEAR/8 (approv* OR 审批) AND (@deepseek OR engineer*)'
"""


@pytest.mark.parametrize("config, expected", [
    ('[crawl]\ninterval = "soon"\n', "[crawl] interval: expected a duration"),
    ('[crawl]\nconcurency = 3\n', "[crawl] concurency: unknown key"),
    ('[crawl]\nconcurrency = 0\n', "[crawl] concurrency: expected a positive integer"),
    ('[digest]\ntimezone = "Mars/Olympus"\n', "[digest] timezone: unknown time zone"),
    ('[digest]\nschedule = "someday"\n', "[digest] schedule: expected a weekday and a time"),
    ('[crawl\n', "not valid TOML"),
])
def test_config_errors_exit_2_naming_file_and_key(home: Home, config: str, expected: str) -> None:
    home.config.write_text(config)
    result = home.run("status")
    assert result.code == 2
    assert str(home.config) in result.err and expected in result.err


@pytest.mark.parametrize("sources, expected", [
    ('[[source]]\nid = "Bad Id"\nfeeds = ["https://x.org/f"]\n', "source #1 id: expected an id"),
    ('[[source]]\nid = "a"\nfeeds = ["ftp://x.org/f"]\n', "source 'a' feeds: expected an http(s) URL"),
    ('[[source]]\nid = "a"\nfeeds = ["https://x.org/f"]\ninterval = "often"\n', "source 'a' interval"),
    ('[[source]]\nid = "a"\nfeeds = ["https://x.org/f"]\n[[source]]\nid = "a"\nfeeds = ["https://y.org/f"]\n',
     "source 'a': duplicate id"),
    ('[[source]]\nid = "a"\nfeed = ["https://x.org/f"]\n', "source 'a' feed: unknown key"),
])
def test_sources_errors_name_the_source(home: Home, sources: str, expected: str) -> None:
    home.write_config([])
    (home.path / "sources.toml").write_text(sources)
    result = home.run("crawl")
    assert result.code == 2 and "sources.toml" in result.err and expected in result.err


@pytest.mark.parametrize("query, expected", [
    ("(travel OR trip", "topic 'travel-approval'"),
    ("travel NEAR/x approval", "at position"),
    ("@nobody AND travel", "unknown entity"),
])
def test_bad_topic_query_names_topic_and_position(home: Home, query: str, expected: str) -> None:
    home.write_config([("a", ["https://x.org/f"])],
                      topics=f'[[topic]]\nid = "travel-approval"\nname = "T"\nquery = \'{query}\'\n')
    result = home.run("crawl")
    assert result.code == 2 and "topics.toml" in result.err and expected in result.err
    assert "position" in result.err


def test_unknown_source_on_command_line(home: Home) -> None:
    home.write_config([("a", ["https://x.org/f"])])
    result = home.run("crawl", "--source", "nope")
    assert result.code == 2 and "unknown source nope" in result.err


def test_environment_overrides_the_database_url(home: Home, tmp_path) -> None:
    home.write_config([("a", ["http://127.0.0.1:1/f"])])
    other = tmp_path / "other.db"
    assert home.run("status", env={"TALENTWATCH_DATABASE_URL": f"sqlite:///{other}"}).code == 0
    assert other.exists() and not (home.path / "talentwatch.db").exists()


def crawl_and_list(home: Home, feed_server: FeedServer) -> list[dict]:
    feed_server.put("/zh.xml", rss([
        ("z1", "深度求索工程师出境需审批"),
        ("z2", "DeepSeek engineers told to seek approval before travel abroad"),
        ("z3", "Weather in Hangzhou"),
    ]))
    home.write_config([("wire", [feed_server.url("/zh.xml")])], topics=TOPICS)
    result = home.run("crawl")
    assert result.code == 0, result.err
    listed = home.run("items", "--format", "json")
    assert listed.code == 0, listed.err
    return listed.json_lines()


def test_items_json_fields_tags_entities_evidence(home: Home, feed_server: FeedServer) -> None:
    records = crawl_and_list(home, feed_server)
    assert len(records) == 3 and all(set(r) == JSON_FIELDS for r in records)
    by_title = {r["title"]: r for r in records}
    for title in ("深度求索工程师出境需审批", "DeepSeek engineers told to seek approval before travel abroad"):
        r = by_title[title]
        assert r["tags"] == ["travel-approval"] and r["entities"] == ["deepseek"]
        assert r["evidence"]["travel-approval"] and r["source"] == "wire" and r["via"] == "feed"
        assert r["published"] == "2026-11-23T02:00:00Z"
    assert by_title["Weather in Hangzhou"]["tags"] == []
    tagged = home.run("items", "--tagged", "--format", "json").json_lines()
    assert len(tagged) == 2
    assert len(home.run("items", "--tag", "travel-approval", "--since", "2026-11-23", "--until", "2026-11-23",
                        "--format", "json").json_lines()) == 2
    assert home.run("items", "--entity", "deepseek", "--until", "2026-11-22", "--format", "json").out == ""
    with_text = home.run("items", "--with-text", "--format", "json").json_lines()
    assert all("text" in r for r in with_text)
    csv_out = home.run("items", "--format", "csv").out.splitlines()
    assert csv_out[0].startswith("id,source,url,title") and len(csv_out) == 4


def test_crawl_into_postgresql(pg_home: Home, feed_server: FeedServer) -> None:
    records = crawl_and_list(pg_home, feed_server)
    assert len(records) == 3 and sum(bool(r["tags"]) for r in records) == 2
    again = pg_home.run("crawl")
    assert again.code == 0 and "0 parsed" in again.out
    assert pg_home.sql("select count(*) from items") == [(3,)]


def test_unreachable_database_is_one_line_and_exit_1(home: Home) -> None:
    home.write_config()
    result = home.run("status", env={"TALENTWATCH_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none"})
    assert result.code == 1
    assert "database error" in result.err and "Traceback" not in result.err
