"""Several daemons on one PostgreSQL database (real subprocesses, a scratch database, 300 loopback feeds): they share
the polling through leases, a killed one's feeds come back, a stopped one releases its leases at once, and the
weekly digest is sent once whatever the number of daemons."""

from __future__ import annotations

import signal
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise

from conftest import FeedServer, Home, web_page
from test_daemon import daemons, wait_for  # noqa: F401 (daemons is a fixture)
from test_digest_send import Smtp, smtp  # noqa: F401 (smtp is a fixture)

FEEDS = 300
INTERVAL = 10.0
LEASE = 8.0
TICK = INTERVAL / 4  # the daemon's look for due feeds (scheduler.poll_tick)
SLACK = TICK + 5.0  # a due feed waits for the next look and for the batches before it
IN_FLIGHT = 0.5  # a request logged this soon after a SIGKILL was the killed daemon's own, already sent


def feed(n: int) -> bytes:
    when = format_datetime(datetime.now(UTC) - timedelta(hours=1))
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>f{n}</title><item><title>Item of feed {n}"
            f"</title><link>https://news.example.com/f{n}</link><guid>f{n}</guid><pubDate>{when}</pubDate>"
            f"</item></channel></rss>").encode()


def test_three_daemons_share_300_feeds_survive_kill_9_and_send_one_digest(
        pg_home: Home, feed_server: FeedServer, smtp: Smtp, daemons) -> None:  # noqa: F811
    for n in range(FEEDS):
        feed_server.put(f"/f{n}.xml", feed(n), delay=0.05)
    urls = [feed_server.url(f"/f{n}.xml") for n in range(FEEDS)]
    pg_home.write_config([])
    (pg_home.path / "sources.toml").write_text(
        f'[[source]]\nid = "farm"\nfeeds = {urls!r}\ninterval = "{INTERVAL:g}s"\n'.replace("'", '"'))
    due = (datetime.now(UTC) + timedelta(seconds=90)).replace(second=0, microsecond=0)  # 30 to 90 s from now
    schedule = f"{due:%a} {due:%H:%M}".lower()
    pg_home.config.write_text(pg_home.config.read_text() + (
        f'\n[digest]\nschedule = "{schedule}"\ntimezone = "UTC"\nto = ["a@example.org"]\nsender = "t@example.org"\n'
        f'\n[smtp]\nurl = "{smtp.url}"\n\n[daemon]\nlease = "{LEASE:g}s"\nbatch = 50\n'))

    started = time.monotonic()
    runs = [daemons(pg_home) for _ in range(3)]
    ids = [f"{socket.gethostname()}:{d.proc.pid}" for d in runs]
    wait_for(lambda: _count(pg_home, "select count(*) from items") == FEEDS, timeout=90, what="every feed's item")
    time.sleep(INTERVAL)
    status = pg_home.run("status", "--format", "json").json_lines()
    workers = {r["worker"]: r for r in status if "live" in r}
    assert set(workers) == set(ids) and all(w["live"] for w in workers.values())
    assert all(w["feeds_hour"] > 0 for w in workers.values()), workers  # each daemon polls a share
    assert {r["worker"] for r in status if "feed_url" in r} == set(ids)

    # the digest's minute comes while the three run: each fires its job; one email
    wait_for(lambda: len(smtp.recorder.messages) >= 1, timeout=150, what="the digest")
    time.sleep(3)
    assert all(d.proc.poll() is None for d in runs)

    # kill -9 one daemon while it holds leases (mid-crawl): its feeds come back after the lease
    deadline = time.monotonic() + 30
    while not _rows(pg_home, "select 1 from feeds where leased_by = :w", w=ids[0]):
        assert time.monotonic() < deadline, "the first daemon never held a lease"
        time.sleep(0.02)
    runs[0].stop(signal.SIGKILL)
    killed_at = time.monotonic()
    # when each of its leases ends, on the test's clock (the database's clock moved by their difference now)
    orphaned = {u: time.monotonic() + float(left) for u, left in _rows(
        pg_home, "select url, extract(epoch from lease_until - now()) from feeds where leased_by = :w", w=ids[0])}
    assert orphaned

    time.sleep(INTERVAL)
    # SIGTERM another: its leases go at once, with its worker row
    assert runs[1].stop(signal.SIGTERM) == 0
    assert _rows(pg_home, "select count(*) from feeds where leased_by = :w", w=ids[1]) == [(0,)]
    assert _rows(pg_home, "select count(*) from workers where id = :w", w=ids[1]) == [(0,)]
    assert "released" in runs[1].log_text()

    time.sleep(max(LEASE + INTERVAL + SLACK, 6 * INTERVAL - (time.monotonic() - started)))
    ended = time.monotonic()
    assert runs[2].stop() == 0

    # the request log: every feed polled each interval, none twice in one, apart from the killed daemon's crawl
    paths = {f"/f{n}.xml": u for n, u in enumerate(urls)}
    late, failover = [], []
    for path, url in paths.items():
        times = [r.at for r in feed_server.requests_for(path)]
        assert times and times[0] - started < 60, path
        assert ended - times[-1] <= INTERVAL + SLACK, (path, ended - times[-1])
        if url in orphaned:  # polled again this long after the dead daemon's lease ended
            failover.append(next(t for t in times if t > killed_at + IN_FLIGHT) - orphaned[url])
        for a, b in pairwise(times):
            if url in orphaned and a <= killed_at + IN_FLIGHT < b:  # the poll that waited for the lease to end
                continue
            assert b - a >= INTERVAL - 1.0, (path, b - a)  # never twice in one interval
            if b - a > INTERVAL + SLACK:
                late.append((path, round(b - a, 1)))
    assert not late, late[:10]
    print(f"\nthe killed daemon's feeds polled again {min(failover):.1f} to {max(failover):.1f} s after its leases "
          f"ended (lease {LEASE:g} s, interval {INTERVAL:g} s)")
    # not while its lease lasted (0.5 s: the two clocks' difference is read by one query), and at the first look
    # after it ended: the next look comes when a lease ends, and a daemon still crawling looks when its crawl ends
    # (its own batch: a second or two here; the slack is SLACK, a busy CI machine's, as for the feeds' intervals)
    assert min(failover) >= -0.5 and max(failover) <= SLACK
    assert _count(pg_home, "select count(*) from items") == FEEDS  # nothing stored twice, nothing lost
    assert _count(pg_home, "select count(distinct key) from items") == FEEDS
    assert _count(pg_home, "select count(*) from feeds where leased_by is not null") == 0
    assert len(smtp.recorder.messages) == 1 and b"talentwatch digest" in smtp.recorder.messages[0][2]
    assert _count(pg_home, "select count(*) from digests where status = 'sent'") == 1
    gone = [r for r in pg_home.run("status", "--format", "json").json_lines() if "live" in r]
    assert [w["worker"] for w in gone] == [ids[0]] and not gone[0]["live"]  # the killed one, shown as gone
    page = web_page(pg_home, "/sources", lease=LEASE)
    assert "<h2>Daemons</h2>" in page and ids[0] in page.split("<h2>Daemons</h2>")[1] and ">gone<" in page


def test_a_second_daemon_on_sqlite_is_refused_and_told_about_postgresql(home: Home, feed_server: FeedServer,
                                                                        daemons) -> None:  # noqa: F811
    feed_server.put("/a.xml", feed(0))
    home.write_config([("s", [feed_server.url("/a.xml")])])
    first = daemons(home)
    wait_for(lambda: _count(home, "select count(*) from items") == 1, what="the first daemon's crawl")
    second = home.run("run")
    assert second.code == 2 and f"pid={first.proc.pid}" in second.err
    assert "several daemons need PostgreSQL" in second.err
    assert first.stop() == 0


def test_status_shows_the_worker_that_polled_each_feed(pg_home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/a.xml", feed(0))
    pg_home.write_config([("s", [feed_server.url("/a.xml")])],
                         extra='\n[daemon]\nworker_id = "crawler-7"\n')
    assert pg_home.run("crawl").code == 0
    (row,) = [r for r in pg_home.run("status", "--format", "json").json_lines() if "feed_url" in r]
    assert row["worker"] == "crawler-7"
    assert "crawler-7" in pg_home.run("status", env={"COLUMNS": "200"}).out
    pg_home.config.write_text(pg_home.config.read_text().replace('worker_id = "crawler-7"', 'lease = "soon"'))
    wrong = pg_home.run("status")
    assert wrong.code == 2 and "[daemon] lease" in wrong.err


def _rows(home: Home, query: str, **params: object) -> list[tuple]:
    try:
        return home.sql(query, **params)
    except Exception:  # the database is not created yet
        return []


def _count(home: Home, query: str) -> int:
    rows = _rows(home, query)
    return rows[0][0] if rows else 0



def test_article_fetches_are_leased_to_one_worker_at_a_time(pg_url: str) -> None:
    """Two workers asking at once for the articles to fetch get disjoint items (SKIP LOCKED while the other's
    transaction is open, the lease after); saving an outcome or giving the leases back ends them."""
    from sqlalchemy.orm import Session

    from crawler.items import Article, ArticleText, FeedFetch
    from store import models as m
    from store.db import open_database
    from store.leases import release
    from store.queries import save_fetches
    from store.texts import Lease, save_text, texts_to_fetch

    engine = open_database(pg_url)
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        session.add(m.Source(id="src", name="Src"))
    articles = [Article(key=f"k{n}", url=f"https://news.example.com/{n}", guid=None, title=f"Story {n}",
                        summary="", published=now - timedelta(minutes=n)) for n in range(6)]
    assert not any(isinstance(r, Exception) for r in save_fetches(engine, [FeedFetch(
        feed_id=None, source_id="src", url="archive:src", fetched=now, interval=60, status=200, articles=articles)]))

    first, second = Session(engine), Session(engine)
    with first.begin(), second.begin():  # both transactions open at once
        a = texts_to_fetch(first, ["src"], limit=3, lease=Lease("w1", 60))
        b = texts_to_fetch(second, ["src"], limit=10, lease=Lease("w2", 60))
    first.close()
    second.close()
    assert len(a) == 3 and len(b) == 3 and not {p.item_id for p in a} & {p.item_id for p in b}
    with Session(engine) as session, session.begin():
        assert texts_to_fetch(session, ["src"], lease=Lease("w3", 60)) == []  # all leased

    done = a[0]
    save_text(engine, ArticleText(item_id=done.item_id, source_id="src", article=Article(
        key=done.key, url=done.url, guid=None, title="", summary="", published=None, text_status="failed")))
    assert release(engine, "w1") == 2  # the two it did not save
    with Session(engine) as session, session.begin():
        again = texts_to_fetch(session, ["src"], lease=Lease("w3", 60))
    assert {p.item_id for p in again} == {p.item_id for p in a[1:]}
    engine.dispose()


def test_heartbeat_renews_leases_without_waiting_for_rows_being_written(pg_url: str) -> None:
    from sqlalchemy import func, select, text
    from sqlalchemy.orm import Session

    from crawler.sources import Source
    from store import models as m
    from store.db import open_database
    from store.leases import heartbeat, lease_due

    engine = open_database(pg_url)
    urls = [f"http://127.0.0.1:9/f{n}.xml" for n in range(3)]
    with Session(engine) as session, session.begin():
        session.add(m.Source(id="src", name="Src"))
        session.add_all(m.Feed(url=u, source_id="src") for u in urls)
    sources = [Source(id="src", name="Src", feeds=tuple(urls), interval=60.0)]
    with Session(engine) as session, session.begin():
        taken = lease_due(session, sources, "w1", 5.0, 10, datetime.now(UTC))
    assert len(taken) == 3
    writer = Session(engine)
    writer.begin()
    writer.execute(text("select id from feeds where id = :i for update"), {"i": taken[0].feed_id})  # a store write
    renewed: list[int] = []
    beat = threading.Thread(target=lambda: renewed.append(heartbeat(engine, "w1", 300.0)), daemon=True)
    try:
        beat.start()
        beat.join(20)
        assert renewed == [2]  # the locked row skipped, not waited for
    finally:
        writer.rollback()
        writer.close()
    with Session(engine) as session:
        remaining = session.scalars(select(m.Feed.lease_until - func.now()).order_by(m.Feed.id)).all()
    assert [r.total_seconds() > 200 for r in remaining] == [False, True, True]
    engine.dispose()


def test_the_next_look_is_the_next_due_time_or_the_end_of_a_lease(pg_url: str) -> None:
    """When a daemon wakes after a poll: the earliest due time of a free feed, or the end of the earliest lease
    (moved from the database's clock into the worker's)."""
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from crawler.sources import Source
    from store import models as m
    from store.db import open_database
    from store.leases import lease_due, next_look

    engine = open_database(pg_url)
    urls = [f"http://127.0.0.1:9/f{n}.xml" for n in range(3)]
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        session.add(m.Source(id="src", name="Src"))
        session.add_all(m.Feed(url=u, source_id="src", next_due=now + timedelta(seconds=100 + 10 * n))
                        for n, u in enumerate(urls))
    sources = [Source(id="src", name="Src", feeds=tuple(urls), interval=60.0)]
    with Session(engine) as session:
        assert next_look(session, sources, now) == now + timedelta(seconds=100)
    with Session(engine) as session, session.begin():
        session.execute(update(m.Feed).where(m.Feed.url == urls[0]).values(next_due=now - timedelta(seconds=1)))
        assert len(lease_due(session, sources, "w1", 30.0, 10, now)) == 1  # the due one, for 30 s
    with Session(engine) as session:
        look = next_look(session, sources, now)
    assert look is not None and abs((look - now).total_seconds() - 30) < 2  # its lease ends before the others
    with Session(engine) as session, session.begin():
        session.execute(update(m.Feed).values(disabled=True))
    with Session(engine) as session:
        assert next_look(session, sources, now) is None
    engine.dispose()
