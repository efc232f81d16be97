"""Same-day alerts as users meet them: `talentwatch run` in a subprocess polling a live-changing loopback feed,
mail received by aiosmtpd on 127.0.0.1, a webhook served on 127.0.0.1; crashes, restarts, an SMTP server that is
down; `alerts test`, `status`, configuration errors; two checks racing on PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from conftest import FeedServer, Home, web_page
from test_daemon import daemons, wait_for  # noqa: F401 (daemons is a fixture)
from test_digest_send import TOPICS, Recorder, Smtp, _execute, free_port, smtp  # noqa: F401 (smtp: fixture)

A1 = "DeepSeek engineers need approval for travel abroad"
B1 = "DeepSeek engineers need approval for travel abroad, report says"
A2 = "Passport rules restrict travel of AI researchers, officials say"
OTHER = "Chip maker reports record quarterly revenue"


def fresh_rss(items: list[tuple[str, str]]) -> bytes:
    """RSS 2.0 of (guid, title) items published an hour ago (alerts look at the last day)."""
    when = format_datetime(datetime.now(UTC) - timedelta(hours=1))
    body = "".join(f"<item><title>{title}</title><link>https://news.example.com/{guid}</link><guid>{guid}</guid>"
                   f"<description>About {title}</description><pubDate>{when}</pubDate></item>"
                   for guid, title in items)
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{body}</channel></rss>".encode()


def setup(home: Home, feed_server: FeedServer, alerts: str, smtp_url: str | None = None) -> None:
    """Two outlets polled every second; ``alerts`` are [[alert]] tables."""
    smtp_cfg = f'\n[smtp]\nurl = "{smtp_url}"\n' if smtp_url else ""
    home.write_config([], topics=TOPICS,
                      extra=f'\n[digest]\nsender = "tw@example.org"\n{smtp_cfg}\n{alerts}')
    (home.path / "sources.toml").write_text("".join(
        f'[[source]]\nid = "outlet-{x}"\nname = "Outlet {x.upper()}"\nfeeds = ["{feed_server.url(f"/{x}.xml")}"]\n'
        f'interval = "1s"\n\n' for x in "ab"))


TRAVEL = '[[alert]]\nid = "travel"\ntopic = "travel-approval"\nto = ["t@example.org"]\nevery = "1s"\n'


def rows(home: Home, query: str) -> list[tuple]:
    """The query's rows, or none while the daemon has not created the database yet."""
    try:
        return home.sql(query)
    except Exception:
        return []


def to(recorder: Recorder, address: str) -> list:
    return [recorder.parsed(n) for n, (_, rcpt, _) in enumerate(recorder.messages) if rcpt == [address]]


def test_daemon_sends_each_new_story_once_per_alert_and_waits_for_min_outlets(
        home: Home, feed_server: FeedServer, smtp: Smtp, daemons) -> None:  # noqa: F811
    wide = ('[[alert]]\nid = "wide"\nquery = \'@deepseek AND travel\'\nto = ["w@example.org"]\nmin_outlets = 2\n'
            'every = "1s"\n')
    setup(home, feed_server, TRAVEL + wide, smtp.url)
    feed_server.put("/a.xml", fresh_rss([("a1", A1), ("x1", OTHER)]))
    feed_server.put("/b.xml", fresh_rss([]))
    daemon = daemons(home)
    rec = smtp.recorder
    wait_for(lambda: len(to(rec, "t@example.org")) == 1, what="the travel alert")
    first = to(rec, "t@example.org")[0]
    assert first["X-Talentwatch-Alert"] == "travel" and A1 in first["Subject"]
    text = first.get_body(("plain",)).get_content()
    assert A1 in text and OTHER not in text and "https://news.example.com/a1" in text
    assert first.get_body(("html",)).get_content().count("news.example.com/a1") == 1
    wait_for(lambda: home.sql("select count(*) from items")[0][0] == 2, what="the items")

    # one outlet carries the story: the min_outlets = 2 alert waits, over several of its windows
    wait_for(lambda: "poll:" in daemon.log_text(), what="a poll")
    threading.Event().wait(4)
    assert to(rec, "w@example.org") == []

    feed_server.put("/b.xml", fresh_rss([("b1", B1)]))  # the second outlet: the story now counts for "wide"
    wait_for(lambda: len(to(rec, "w@example.org")) == 1, what="the min_outlets alert")
    wide_text = to(rec, "w@example.org")[0].get_body(("plain",)).get_content()
    assert "also: Outlet B" in wide_text or "also: Outlet A" in wide_text

    feed_server.put("/a.xml", fresh_rss([("a2", A2), ("a1", A1), ("x1", OTHER)]))  # a new story
    wait_for(lambda: len(to(rec, "t@example.org")) == 2, what="the second travel alert")
    second = to(rec, "t@example.org")[1].get_body(("plain",)).get_content()
    assert A2 in second and A1 not in second  # only the new story

    assert daemon.stop() == 0
    sent = len(rec.messages)
    restarted = daemons(home)
    wait_for(lambda: restarted.log_text().count("poll:") >= 1, what="a poll after the restart")
    threading.Event().wait(4)
    assert len(rec.messages) == sent == 3  # a restart resends nothing
    assert restarted.stop() == 0
    status = {r["alert"]: r for r in home.run("status", "--format", "json").json_lines() if "alert" in r}
    assert status["travel"]["stories"] == 2 and status["travel"]["pending"] == 0 and status["travel"]["last_sent"]
    assert status["wide"]["stories"] == 1
    table = home.run("status").out
    assert "travel" in table and "stories sent" in table
    page = web_page(home, "/sources").split("<h2>Alerts</h2>")[1]
    assert "<td>travel</td>" in page and "<td>wide</td>" in page and "never" not in page


def test_crash_after_delivery_resends_the_same_message_only_after_the_lease(
        home: Home, feed_server: FeedServer, smtp: Smtp, daemons) -> None:  # noqa: F811
    setup(home, feed_server, TRAVEL, smtp.url)
    feed_server.put("/a.xml", fresh_rss([("a1", A1)]))
    feed_server.put("/b.xml", fresh_rss([]))
    crashed = daemons(home, {"TALENTWATCH_TEST_CRASH_AFTER": "send"})
    assert crashed.proc.wait(60) == 70  # killed right after the server accepted the message
    assert len(smtp.recorder.messages) == 1
    assert home.sql("select status from alert_messages") == [("sending",)]

    again = daemons(home)
    wait_for(lambda: again.log_text().count("poll:") >= 1, what="a poll after the restart")
    threading.Event().wait(3)
    assert len(smtp.recorder.messages) == 1  # within the lease: no duplicate
    stale = (datetime.now(UTC) - timedelta(minutes=11)).strftime("%Y-%m-%d %H:%M:%S.%f")
    _execute(home, f"update alert_messages set claimed = '{stale}'")
    wait_for(lambda: len(smtp.recorder.messages) == 2, what="the resend after the lease")
    assert smtp.recorder.parsed(0)["Message-ID"] == smtp.recorder.parsed(1)["Message-ID"]
    wait_for(lambda: home.sql("select status from alert_messages") == [("sent",)], what="the row marked sent")
    threading.Event().wait(2)
    assert len(smtp.recorder.messages) == 2
    assert again.stop() == 0


def test_unreachable_smtp_server_delays_the_alert_and_loses_nothing(
        home: Home, feed_server: FeedServer, daemons) -> None:  # noqa: F811
    port = free_port()
    setup(home, feed_server, TRAVEL, f"smtp://127.0.0.1:{port}")
    feed_server.put("/a.xml", fresh_rss([("a1", A1)]))
    feed_server.put("/b.xml", fresh_rss([]))
    daemon = daemons(home)
    # a claim counts the attempt (the row is "sending" meanwhile): read the row once two attempts have failed
    failed: list[tuple] = []
    wait_for(lambda: bool(failed.extend(r for r in rows(home, "select status, last_error from alert_messages where "
                                                             "attempts >= 2 and status = 'pending'")) or failed),
             what="two failed attempts")
    status, error = failed[0]
    assert status == "pending" and "127.0.0.1" in error
    assert "not sent (attempt 1)" in daemon.log_text() and "next attempt in" in daemon.log_text()
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        wait_for(lambda: len(recorder.messages) == 1, timeout=90, what="the alert once the server is up")
        wait_for(lambda: home.sql("select status from alert_messages") == [("sent",)], what="the row marked sent")
        threading.Event().wait(2)
        assert len(recorder.messages) == 1 and A1 in recorder.parsed()["Subject"]
    finally:
        controller.stop()
    assert daemon.stop() == 0


class Hook:
    """A webhook receiver on 127.0.0.1: answers 500 to the first ``fail`` POSTs, 200 after."""

    def __init__(self, fail: int = 0) -> None:
        self.fail, self.posts = fail, []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append((self.path, self.headers.get("Content-Type"), body))
                self.send_response(500 if len(hook.posts) <= hook.fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook(fail=1)
    yield h
    h.server.shutdown()


def test_webhook_gets_slack_compatible_json_after_a_retry_and_its_secret_never_shows(
        home: Home, feed_server: FeedServer, hook: Hook, daemons) -> None:  # noqa: F811
    secret = "T000-B000-very-secret-path"
    alert = ('[[alert]]\nid = "hooked"\ntopic = "travel-approval"\nto = []\nevery = "1s"\n'
             f'webhook = "http://127.0.0.1:{hook.port}/hooks/${{TW_TEST_HOOK}}"\n')
    setup(home, feed_server, alert)
    feed_server.put("/a.xml", fresh_rss([("a1", A1 + ", AT&amp;T says")]))
    feed_server.put("/b.xml", fresh_rss([]))
    daemon = daemons(home, {"TW_TEST_HOOK": secret})
    wait_for(lambda: len(hook.posts) == 2, what="the webhook, after one 500")
    threading.Event().wait(2)
    assert len(hook.posts) == 2 and hook.posts[0][2] == hook.posts[1][2]  # the same message, once accepted
    path, content_type, body = hook.posts[1]
    assert path == f"/hooks/{secret}" and content_type == "application/json"
    data = json.loads(body)
    assert data["alert"] == "hooked" and data["stories"][0]["url"] == "https://news.example.com/a1"
    assert "<https://news.example.com/a1|" in data["text"] and "AT&amp;T says>" in data["text"]
    assert daemon.stop() == 0
    assert secret not in daemon.log_text() and "HTTP 500" in daemon.log_text()
    assert secret not in str(home.sql("select delivered_to, last_error from alert_messages"))
    assert not (home.path / "outbox").exists()  # to = []: no email


def test_alerts_test_shows_what_would_be_sent_without_sending(home: Home, feed_server: FeedServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    two = TRAVEL + '[[alert]]\nid = "two"\ntopic = "travel-approval"\nmin_outlets = 2\nto = ["x@example.org"]\n'
    setup(home, feed_server, two)
    feed_server.put("/a.xml", fresh_rss([("a1", A1), ("a2", A2), ("x1", OTHER)]))
    feed_server.put("/b.xml", fresh_rss([("b1", B1)]))
    assert home.run("crawl").code == 0
    result = home.run("alerts", "test")
    assert result.code == 0, result.err
    travel, two_part = result.out.split("alert two")
    assert "2 would be sent, 0 sent before" in travel and travel.count("would send") == 2 and OTHER not in travel
    assert "1 would be sent" in two_part and "1 below min_outlets" in two_part
    assert home.sql("select count(*) from alert_stories") == [(0,)]  # nothing recorded
    assert not (home.path / "outbox").exists()

    from digest import alerts
    from store.db import open_database
    from talentwatch.config import load_config

    monkeypatch.setenv("TALENTWATCH_HOME", str(home.path))
    config = load_config(str(home.config))
    engine = open_database(home.database_url)
    assert alerts.check(config, engine, config.alerts[0], None) == 2
    assert alerts.check(config, engine, config.alerts[0], None) == 0  # recorded: never twice
    engine.dispose()
    assert len(list((home.path / "outbox").glob("alert-travel-*.eml"))) == 1  # no SMTP URL: the outbox
    shown = home.run("alerts", "test", "--id", "travel", "--since", "2h").out
    assert "0 would be sent, 2 sent before" in shown and "alert two" not in shown
    old = home.run("alerts", "test", "--id", "travel", "--since", "30m").out  # items an hour old: outside
    assert "0 would be sent, 0 sent before" in old
    unknown = home.run("alerts", "test", "--id", "nope")
    assert unknown.code == 2 and "unknown alert 'nope'" in unknown.err


@pytest.mark.parametrize("table, message", [
    ('id = "x"\ntopic = "travel-approval"\nquery = "travel"', "[[alert]] x: set one of topic"),
    ('id = "x"\ntopic = "nope"', "[[alert]] x topic: unknown topic 'nope'"),
    ('id = "x"\nquery = "travel AND (approval"', "[[alert]] x query:"),
    ('id = "x"\ntopic = "travel-approval"\nevery = "soon"', "[[alert]] x every: expected a duration"),
    ('id = "x"\ntopic = "travel-approval"\nmin_outlets = 0', "[[alert]] x min_outlets: expected a positive"),
    ('id = "x"\ntopic = "travel-approval"\nsubject = "y"', "[[alert]] x subject: unknown key"),
    ('id = "Bad Id"\ntopic = "travel-approval"', "[[alert]] Bad Id id: expected a unique id"),
    ('id = "x"\ntopic = "travel-approval"\nto = []', "[[alert]] x to: no recipients"),
    ('id = "x"\ntopic = "travel-approval"\nwebhook = "http://127.0.0.1/${TW_UNSET_HOOK}"',
     "[[alert]] x webhook: ${TW_UNSET_HOOK} is not set"),
])
def test_a_bad_alert_is_a_configuration_error_naming_it(home: Home, feed_server: FeedServer, table: str,
                                                       message: str) -> None:
    setup(home, feed_server, f'[[alert]]\n{table}\n')
    if "to = []" not in table:
        (home.path / "talentwatch.toml").write_text(
            home.config.read_text().replace('[digest]\n', '[digest]\nto = ["d@example.org"]\n'))
    for command in (("alerts", "test"), ("run",)):
        result = home.run(*command, timeout=60)
        assert result.code == 2 and message in result.err, (command, result.err)
        assert str(home.config) in result.err


def test_two_checks_racing_on_postgresql_send_one_message(pg_home: Home, feed_server: FeedServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from digest import alerts
    from store.db import open_database
    from talentwatch.config import load_config

    setup(pg_home, feed_server, TRAVEL)
    feed_server.put("/a.xml", fresh_rss([("a1", A1)]))
    feed_server.put("/b.xml", fresh_rss([("b1", B1)]))
    assert pg_home.run("crawl").code == 0
    monkeypatch.setenv("TALENTWATCH_HOME", str(pg_home.path))
    config = load_config(str(pg_home.config))
    engines = [open_database(pg_home.database_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    recorded: list[int] = []

    def race(engine) -> None:
        barrier.wait()
        recorded.append(alerts.check(config, engine, config.alerts[0], None))

    threads = [threading.Thread(target=race, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in engines:
        e.dispose()
    assert sorted(recorded) == [0, 0, 0, 1]  # one story (two outlets), recorded by one check
    assert pg_home.sql("select status, stories from alert_messages") == [("sent", 1)]
    assert len(list((pg_home.path / "outbox").glob("alert-travel-*.eml"))) == 1
