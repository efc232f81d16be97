"""Database faults during a crawl: PostgreSQL connections killed mid-crawl, a SQLite database locked by another
process, a read-only database file. The crawl reports the failure (exit status 1 and a message), commits nothing
half-way (a feed recorded as fetched has all its items), and the next run stores everything."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import FeedServer, Home
from sqlalchemy import create_engine, text

FEEDS = 6
ITEMS = 5


def rss(n: int) -> bytes:
    items = "".join(f"<item><title>Feed {n} story {i} {'abcdefghij'[i]}{n}</title>"
                    f"<link>https://db{n}.example.com/{i}</link><guid>db-{n}-{i}</guid>"
                    f"<description>Body {n}-{i}</description></item>" for i in range(ITEMS))
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>f{n}</title>{items}</channel></rss>".encode()


def serve(server: FeedServer, delay: float = 0.0) -> list[str]:
    for n in range(FEEDS):
        server.put(f"/db{n}.xml", rss(n), delay=delay * (n % 3))  # answers spread over the crawl
    return [server.url(f"/db{n}.xml") for n in range(FEEDS)]


def consistent(home: Home) -> int:
    """Feeds recorded as fetched have all their items, others none; returns the feeds stored."""
    rows = home.sql("select f.url, f.last_success, count(i.id) from feeds f left join items i on i.feed_id = f.id "
                    "group by f.url, f.last_success")
    for url, success, items in rows:
        assert items == (ITEMS if success else 0), (url, success, items)
    assert home.sql("select count(*), count(distinct key) from items")[0][0] == sum(
        ITEMS for _, s, _ in rows if s)
    return sum(1 for _, s, _ in rows if s)


def test_postgresql_connections_killed_mid_crawl(pg_home: Home, feed_server: FeedServer) -> None:
    urls = serve(feed_server, delay=1.0)
    pg_home.write_config([("db", urls)], timeout="10s")
    assert pg_home.run("status").code == 0  # database created and synced: the crawl's own connections remain
    name = pg_home.database_url.rsplit("/", 1)[1]
    admin = create_engine(pg_home.database_url, isolation_level="AUTOCOMMIT")
    killed, stop = [], threading.Event()

    def kill_backends() -> None:  # once the crawl fetches: every 50 ms, every other connection to the database
        while not feed_server.log and not stop.wait(0.01):
            pass
        with admin.connect() as conn:
            while not stop.wait(0.05):
                killed.extend(conn.execute(text(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = :db "
                    "and pid <> pg_backend_pid()"), {"db": name}).scalars())

    killer = threading.Thread(target=kill_backends)
    killer.start()
    try:
        first = pg_home.run("crawl")
    finally:
        stop.set()
        killer.join()
        admin.dispose()
    assert any(killed), "no connection was killed"
    assert first.code in (0, 1) and "Traceback" not in first.out
    if first.code == 1:  # says so (a batch not stored, or the CLI's one line when its own query is killed after
        # the crawl: "talentwatch: database error: ..."); whatever was committed is whole
        assert ("could not be stored" in first.out or "OperationalError" in first.err
                or first.err.startswith("talentwatch: database error: "))
    consistent(pg_home)
    second = pg_home.run("crawl")
    assert second.code == 0, second.out + second.err
    assert consistent(pg_home) == FEEDS


def test_postgresql_gone_mid_crawl(pg_home: Home, feed_server: FeedServer) -> None:
    """Once the crawl fetches, the database refuses connections and its sessions are killed: stores fail, the
    crawl says so; with the database back, the next crawl stores everything."""
    urls = serve(feed_server, delay=1.5)
    pg_home.write_config([("db", urls)], timeout="10s")
    assert pg_home.run("status").code == 0
    name = pg_home.database_url.rsplit("/", 1)[1]
    admin = create_engine(pg_home.database_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    done = threading.Event()

    def take_away() -> None:
        while len(feed_server.log) < FEEDS and not done.wait(0.01):
            pass
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(text("select pg_terminate_backend(pid) from pg_stat_activity where datname = :db"),
                         {"db": name})

    thief = threading.Thread(target=take_away)
    thief.start()
    try:
        first = pg_home.run("crawl")
    finally:
        done.set()
        thief.join()
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    assert first.code == 1, first.out + first.err
    # the summary reads the feed rows too: with the database still away it fails, with the database's own message
    assert "could not be stored" in first.out or "not currently accepting connections" in first.err
    assert consistent(pg_home) < FEEDS
    second = pg_home.run("crawl")
    assert second.code == 0, second.out + second.err
    assert consistent(pg_home) == FEEDS


@pytest.fixture
def locked_home(home: Home, feed_server: FeedServer) -> Home:
    home.database_url += "?timeout=1"  # the busy timeout (default 30 s), so that the test waits 1 s on the lock
    home.write_config([("db", serve(feed_server))])
    assert home.run("status").code == 0
    return home


def test_sqlite_locked_by_another_process(locked_home: Home) -> None:
    db = locked_home.database_url.removeprefix("sqlite:///").split("?")[0]
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('begin immediate');"
        " c.execute('create table if not exists lock_holder (x)'); print('locked', flush=True); sys.stdin.read()"),
        db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        first = locked_home.run("crawl")
        assert time.monotonic() - started < 30  # one wait on the lock per batch, not one per feed
    finally:
        holder.communicate("")
    assert first.code == 1, first.out + first.err
    assert "could not be stored" in first.out and "database is locked" in first.err
    assert consistent(locked_home) == 0
    second = locked_home.run("crawl")
    assert second.code == 0, second.out + second.err
    assert consistent(locked_home) == FEEDS


def test_read_only_database_file(home: Home, feed_server: FeedServer) -> None:
    home.write_config([("db", serve(feed_server))])
    assert home.run("status").code == 0
    db = Path(home.database_url.removeprefix("sqlite:///"))
    for leftover in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        leftover.unlink(missing_ok=True)
    os.chmod(db, 0o444)
    immutable = os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode == 0
    if os.geteuid() == 0 and not immutable:
        pytest.skip("running as root without chattr: a read-only file is still writable")
    try:
        first = home.run("crawl")
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(db)], check=True)
        os.chmod(db, 0o644)
    assert first.code != 0
    assert "readonly" in (first.out + first.err).replace("read-only", "readonly").lower()
    assert consistent(home) == 0
    second = home.run("crawl")
    assert second.code == 0, second.out + second.err
    assert consistent(home) == FEEDS
