"""Sending the digest through a real SMTP server (aiosmtpd on 127.0.0.1): the message, exactly once per period,
retries after 4xx answers and refused connections, crashes between building and sending, the outbox, secrets."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import Home
from test_crawl_changes import rss

import digest
from digest.period import week
from store.db import open_database
from talentwatch.config import load_config

PERIOD = "2026-W48"  # the week of the rss() fixture's items (Mon 23 Nov 2026)
TOPICS = """
[[entity]]
id = "deepseek"
name = "DeepSeek"
kind = "org"
aliases = ["深度求索"]

[[topic]]
id = "travel-approval"
name = "Travel approval"
query = '(travel OR passport*) NEAR/8 (approv* OR restrict*)'
"""
PASSWORD = "s3cret-Pa55word-never-logged"


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps what it accepts; it answers 451 to the first ``refuse`` DATA commands."""

    refuse: int = 0
    attempts: int = 0
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's naming)
        self.attempts += 1
        if self.attempts <= self.refuse:
            return "451 4.3.0 Try again later"
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 OK"

    def authenticate(self, server, session, envelope, mechanism, data) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.logins.append((data.login, data.password))
            ok = data.password == PASSWORD.encode()
            return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 235 or 535
        return AuthResult(success=False, handled=False)

    def parsed(self, n: int = 0) -> email.message.EmailMessage:
        return email.message_from_bytes(self.messages[n][2], policy=email.policy.default)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Smtp:
    recorder: Recorder
    port: int

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, authenticator=recorder.authenticate,
                            auth_require_tls=False)
    controller.start()
    yield Smtp(recorder, port)
    controller.stop()


def setup_home(home: Home, feed_server, smtp_url: str | None = None, to: tuple[str, ...] = ("a@example.org",
               "b@example.org")) -> None:
    """Two outlets carrying one story, one unrelated tagged item; crawled once."""
    feed_server.put("/a.xml", rss([("a1", "DeepSeek engineers need approval for travel abroad"),
                                   ("a2", "Passport rules restrict travel of AI researchers, officials say")]))
    feed_server.put("/b.xml", rss([("b1", "DeepSeek engineers need approval for travel abroad, report says")]))
    digest_cfg = f'\n[digest]\nto = {list(to)!r}\nsender = "tw@example.org"\n'.replace("'", '"')
    smtp_cfg = f'\n[smtp]\nurl = "{smtp_url}"\n' if smtp_url else ""
    home.write_config([("outlet-a", [feed_server.url("/a.xml")]), ("outlet-b", [feed_server.url("/b.xml")])],
                      topics=TOPICS, extra=digest_cfg + smtp_cfg)
    assert home.run("crawl").code == 0


def send(home: Home, *args: str, env: dict[str, str] | None = None):
    return home.run("digest", "--week", PERIOD, "--send", *args, env=env)


def test_digest_arrives_as_multipart_alternative(home: Home, feed_server, smtp: Smtp) -> None:
    setup_home(home, feed_server, smtp.url)
    result = send(home)
    assert result.code == 0, result.err
    assert len(smtp.recorder.messages) == 1
    mail_from, rcpt_tos, _ = smtp.recorder.messages[0]
    assert mail_from == "tw@example.org" and rcpt_tos == ["a@example.org", "b@example.org"]
    msg = smtp.recorder.parsed()
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Subject"] == f"talentwatch digest {PERIOD}: 2 stories"
    assert msg["To"] == "a@example.org, b@example.org" and msg["Message-ID"]
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content()
    assert "DeepSeek engineers need approval for travel abroad" in text and "also: outlet-" in text
    assert "also: outlet-" in html and "2 outlets" in html
    assert "   https://news.example.com/" in text and "MOST MENTIONED\n  DeepSeek (1)" in text
    assert home.sql("select status, message_id, stories from digests") == [("sent", msg["Message-ID"], 2)]
    assert "sent digest 2026-W48 (2 stories)" in result.out


def test_second_send_sends_nothing_unless_forced(home: Home, feed_server, smtp: Smtp) -> None:
    setup_home(home, feed_server, smtp.url)
    assert send(home).code == 0
    again = send(home)
    assert again.code == 0 and "already sent" in again.out
    assert len(smtp.recorder.messages) == 1
    forced = send(home, "--force")
    assert forced.code == 0, forced.err
    assert len(smtp.recorder.messages) == 2
    first, second = smtp.recorder.parsed(0), smtp.recorder.parsed(1)
    assert first["Message-ID"] != second["Message-ID"]  # a forced send is a new message


def test_451_answers_are_retried_and_the_digest_arrives_once(home: Home, feed_server, smtp: Smtp) -> None:
    setup_home(home, feed_server, smtp.url)
    smtp.recorder.refuse = 2
    config, engine = load_config(str(home.config)), open_database(home.database_url)
    try:
        outcome = digest.send(config, engine, week(2026, 48, "UTC"), delays=(0.05, 0.05, 0.05))
    finally:
        engine.dispose()
    assert outcome.status == "sent"
    assert smtp.recorder.attempts == 3 and len(smtp.recorder.messages) == 1
    assert home.sql("select status, attempts from digests") == [("sent", 1)]


def test_refused_connection_leaves_it_pending_and_the_next_run_sends_it_once(home: Home, feed_server,
                                                                              smtp: Smtp) -> None:
    setup_home(home, feed_server, f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    config, engine = load_config(str(home.config)), open_database(home.database_url)
    try:
        with pytest.raises(digest.DeliveryError) as failed:
            digest.send(config, engine, week(2026, 48, "UTC"), delays=(0.01, 0.01))
        assert failed.value.temporary
        ((status, error),) = home.sql("select status, last_error from digests")
        assert status == "pending" and "Connection" in error
    finally:
        engine.dispose()
    setup_home(home, feed_server, smtp.url)  # the server is up now
    result = send(home)
    assert result.code == 0, result.err
    assert len(smtp.recorder.messages) == 1
    assert send(home).code == 0 and len(smtp.recorder.messages) == 1


def test_permanent_refusal_fails_with_exit_1_and_stays_pending(home: Home, feed_server, smtp: Smtp) -> None:
    setup_home(home, feed_server, smtp.url, to=("nobody@example.org",))
    smtp.recorder.refuse = 100
    config, engine = load_config(str(home.config)), open_database(home.database_url)
    try:
        with pytest.raises(digest.DeliveryError):
            digest.send(config, engine, week(2026, 48, "UTC"), delays=(0.01,))
    finally:
        engine.dispose()
    assert home.sql("select status from digests") == [("pending",)]


def test_crash_after_render_then_next_run_sends_once(home: Home, feed_server, smtp: Smtp) -> None:
    setup_home(home, feed_server, smtp.url)
    crashed = send(home, env={"TALENTWATCH_TEST_CRASH_AFTER": "render"})
    assert crashed.code == 70
    assert smtp.recorder.messages == []
    ((status, recorded_id),) = home.sql("select status, message_id from digests")
    assert status == "pending"
    assert send(home).code == 0
    assert send(home).code == 0
    assert len(smtp.recorder.messages) == 1
    assert smtp.recorder.parsed()["Message-ID"] == recorded_id  # the message built before the crash


def test_crash_after_delivery_resends_the_same_message_only_after_the_lease(home: Home, feed_server,
                                                                            smtp: Smtp) -> None:
    """The documented at-least-once window: accepted by the server, not yet marked sent."""
    setup_home(home, feed_server, smtp.url)
    assert send(home, env={"TALENTWATCH_TEST_CRASH_AFTER": "send"}).code == 70
    assert len(smtp.recorder.messages) == 1
    assert home.sql("select status from digests") == [("sending",)]
    busy = send(home)  # within the lease: another sender may still be at work
    assert busy.code == 1 and "being sent by another process" in busy.err
    assert len(smtp.recorder.messages) == 1
    stale = (datetime.now(UTC) - timedelta(minutes=11)).strftime("%Y-%m-%d %H:%M:%S.%f")
    _execute(home, f"update digests set claimed = '{stale}'")
    assert send(home).code == 0
    assert len(smtp.recorder.messages) == 2
    assert smtp.recorder.parsed(0)["Message-ID"] == smtp.recorder.parsed(1)["Message-ID"]
    assert home.sql("select status from digests") == [("sent",)]


def _execute(home: Home, statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(home.database_url)
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


def test_without_smtp_url_send_writes_the_outbox_once(home: Home, feed_server) -> None:
    setup_home(home, feed_server)
    assert send(home).code == 0
    assert send(home).code == 0
    files = list((home.path / "outbox").glob("*.eml"))
    assert len(files) == 1 and files[0].name.startswith(PERIOD)
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative" and "2 stories" in msg["Subject"]
    assert not list((home.path / "outbox").glob(".tmp-*"))


def test_outbox_rewrite_after_a_crash_replaces_the_same_file(home: Home, feed_server) -> None:
    setup_home(home, feed_server)
    assert send(home, env={"TALENTWATCH_TEST_CRASH_AFTER": "send"}).code == 70
    stale = (datetime.now(UTC) - timedelta(minutes=11)).strftime("%Y-%m-%d %H:%M:%S.%f")
    _execute(home, f"update digests set claimed = '{stale}'")
    assert send(home).code == 0
    assert len(list((home.path / "outbox").glob("*.eml"))) == 1


def test_password_is_used_but_never_logged_nor_stored(home: Home, feed_server, smtp: Smtp) -> None:
    setup_home(home, feed_server, f"smtp://digest%40example.org@127.0.0.1:{smtp.port}")
    result = send(home, env={"TALENTWATCH_SMTP_PASSWORD": PASSWORD})
    assert result.code == 0, result.err
    assert smtp.recorder.logins == [(b"digest@example.org", PASSWORD.encode())]
    assert PASSWORD not in result.out + result.err
    ((message,),) = home.sql("select message from digests")
    assert PASSWORD.encode() not in bytes(message) and PASSWORD.encode() not in smtp.recorder.messages[0][2]


def test_wrong_password_fails_without_showing_it(home: Home, feed_server, smtp: Smtp) -> None:
    setup_home(home, feed_server, f"smtp://digest@127.0.0.1:{smtp.port}")
    result = send(home, env={"TALENTWATCH_SMTP_PASSWORD": "wrong-" + PASSWORD})
    assert result.code == 1 and "535" in result.err
    assert PASSWORD not in result.out + result.err and smtp.recorder.messages == []


def test_smtp_without_recipients_is_a_config_error(home: Home, feed_server, smtp: Smtp) -> None:
    setup_home(home, feed_server, smtp.url, to=())
    result = send(home)
    assert result.code == 2 and "[digest] to" in result.err and str(home.config) in result.err


def test_scheduled_run_sends_last_week_and_earlier_pending_ones(home: Home, feed_server, smtp: Smtp) -> None:
    setup_home(home, feed_server, smtp.url)
    crashed = home.run("digest", "--week", "2026-W47", "--send", env={"TALENTWATCH_TEST_CRASH_AFTER": "render"})
    assert crashed.code == 70  # W47 recorded, never sent
    config = load_config(str(home.config))
    outcomes = digest.send_scheduled(config, now=datetime(2026, 11, 30, 7, 0, tzinfo=UTC))  # Monday of W49
    assert [(o.period, o.status) for o in outcomes] == [("2026-W47", "sent"), ("2026-W48", "sent")]
    assert digest.send_scheduled(config, now=datetime(2026, 11, 30, 8, 0, tzinfo=UTC))[0].status == "already sent"
    assert sorted(smtp.recorder.parsed(n)["Subject"] for n in range(2)) == [
        "talentwatch digest 2026-W47: no stories", "talentwatch digest 2026-W48: 2 stories"]


def test_exactly_once_on_postgresql(pg_home: Home, feed_server, tmp_path: Path) -> None:
    setup_home(pg_home, feed_server)
    assert send(pg_home, env={"TALENTWATCH_TEST_CRASH_AFTER": "render"}).code == 70
    assert send(pg_home).code == 0 and send(pg_home).code == 0
    assert len(list((pg_home.path / "outbox").glob("*.eml"))) == 1
    assert pg_home.sql("select status, attempts from digests") == [("sent", 1)]
