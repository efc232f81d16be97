"""The daemon (`talentwatch run`): one asyncio reactor, APScheduler jobs, signals, single-instance lock.

One process runs Scrapy crawls again and again: the asyncio reactor is installed once, ``AsyncIOScheduler`` runs
inside its loop, and each poll job awaits ``AsyncCrawlerRunner.crawl`` (a new Crawler per run). A poll job asks
the store for the feeds that are due (the due time lives on each feed row, so a restart continues where the last
run stopped) and crawls only those; while one crawl runs, further ticks are coalesced, not queued. Each
``[[alert]]`` is checked every ``every`` (digest/alerts.py), in a worker thread.

On PostgreSQL any number of daemons share the feeds: each takes batches of due feeds under a lease
(store/leases.py), renews its leases with a heartbeat while it crawls, and gives back the rest when a crawl ends or
it stops. The weekly digest runs on whichever daemon takes its advisory lock first (and the digest's ledger sends
one email per period whatever happens); alerts record each story once per alert (digest/alerts.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session

import digest
from crawler.settings import crawl_settings
from crawler.sources import Source
from crawler.spiders.articles import ArticlesSpider
from crawler.spiders.feeds import FeedsSpider
from digest import alerts
from store import leases
from store.db import open_database
from store.lock import DIGEST_JOB_KEY, advisory_lock
from store.queries import feeds_to_poll, utcnow
from talentwatch.config import Alert, Config

logger = logging.getLogger("talentwatch.daemon")
SHUTDOWN_GRACE = 30.0  # seconds a running crawl may take to finish after SIGTERM/SIGINT
MAX_TICK = 10.0  # seconds between looks for due feeds, at most
DAEMON_SETTINGS = {"STATS_DUMP": False, "LOGSTATS_INTERVAL": 0}


def poll_tick(sources: Sequence[Source]) -> float:
    """How often to look for due feeds at the latest: four times in the shortest interval, at least every 10 s.
    After each poll the daemon also wakes when the next feed falls due or the next lease ends (``Daemon.next_look``);
    the regular look catches what that cannot know (another daemon giving its leases back, a feed added)."""
    return max(1.0, min(MAX_TICK, min(s.interval for s in sources) / 4))


class Daemon:
    def __init__(self, config: Config, sources: Sequence[Source], searches: dict[str, Any] | None = None) -> None:
        from scrapy.crawler import AsyncCrawlerRunner

        self.config, self.sources = config, list(sources)
        self.searches = alerts.searches(config) if searches is None else searches
        self.runner = AsyncCrawlerRunner({**crawl_settings(config), **DAEMON_SETTINGS})
        self.engine = open_database(config.database_url)
        self.shared = self.engine.dialect.name == "postgresql"  # several daemons may share it: leases
        self.worker, self.lease, self.batch = config.worker_id, config.get("daemon", "lease"), config.get(
            "daemon", "batch")
        self.stopping = asyncio.Event()
        self.polling: asyncio.Task[None] | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.wake: datetime | None = None  # when the next feed falls due (after a poll)

    async def poll(self) -> None:
        """One poll cycle: crawl the feeds that are due now (on PostgreSQL, batch after batch while full ones
        come), log one line per crawl, then fetch the new articles' texts."""
        crawled = False
        while not self.stopping.is_set():
            try:
                feeds = await asyncio.to_thread(self._due_feeds)
            except Exception:
                logger.exception("could not read the due feeds; the next look tries again")
                break
            if not feeds:
                break
            crawled = True
            try:
                if not await self._crawl(feeds):
                    break
            finally:
                if self.shared:  # the leases its crawl did not record (a failed feed): due again for anyone
                    await asyncio.to_thread(leases.release, self.engine, self.worker)
            if not self.shared or len(feeds) < self.batch:
                break
        if crawled:
            await self.fetch_texts()
        try:
            self.wake = await asyncio.to_thread(self._next_look)
        except Exception:
            logger.exception("could not read when the next feed is due; the regular look goes on")
            self.wake = None

    def _next_look(self) -> datetime | None:
        with Session(self.engine) as session:
            return leases.next_look(session, self.sources, utcnow())

    def _after_poll(self, event: JobExecutionEvent) -> None:
        """Bring the next poll forward to when the next feed falls due (or a lease ends), if that comes before the
        regular look: a feed is polled on time, and a killed daemon's feeds as soon as its lease ends."""
        job = self.scheduler.get_job("poll") if self.scheduler and event.job_id == "poll" else None
        if job is None or self.wake is None or self.stopping.is_set():
            return
        when = max(self.wake, utcnow())
        if job.next_run_time is None or when < job.next_run_time:
            job.modify(next_run_time=when)

    async def _crawl(self, feeds: list[Any]) -> bool:
        crawler = self.runner.create_crawler(FeedsSpider)
        started = time.monotonic()
        self.polling = self.runner.crawl(crawler, feeds=feeds)
        try:
            await asyncio.shield(self.polling)  # a cancelled job must not cancel the crawl under it
        except Exception:
            logger.exception("poll of %d feeds failed; the feeds stay due and the next look tries again", len(feeds))
            return False
        log_cycle(crawler.stats.get_stats() if crawler.stats else {}, len(feeds), time.monotonic() - started)
        return True

    async def fetch_texts(self) -> None:
        """Fetch and extract the new articles of the fulltext sources (after a poll: it stored them)."""
        fulltext = [s for s in self.sources if s.fulltext]
        if not fulltext or self.stopping.is_set():
            return
        crawler = self.runner.create_crawler(ArticlesSpider)
        self.polling = self.runner.crawl(crawler, sources=fulltext)
        try:
            await asyncio.shield(self.polling)
        except Exception:
            logger.exception("fetching article texts failed; the items stay pending and the next poll tries again")
            return
        stats = crawler.stats.get_stats() if crawler.stats else {}
        if stats.get("talentwatch/text/pending"):
            logger.info("texts: %s", ", ".join(f"{k.rsplit('/', 1)[1]} {v}" for k, v in sorted(stats.items())
                                               if k.startswith("talentwatch/text/")))

    def _due_feeds(self) -> list[Any]:
        if self.shared:
            with Session(self.engine) as session, session.begin():
                return leases.lease_due(session, self.sources, self.worker, self.lease, self.batch, utcnow())
        with Session(self.engine) as session:
            return feeds_to_poll(session, self.sources, now=utcnow())

    async def heartbeat(self) -> None:
        try:
            await asyncio.to_thread(leases.heartbeat, self.engine, self.worker, self.lease)
        except Exception:
            logger.exception("heartbeat failed; leases expire unless the next one succeeds")

    async def digest_job(self, job: Callable[[Config], Any]) -> None:
        def once() -> None:
            with advisory_lock(self.engine, DIGEST_JOB_KEY) as mine:
                if mine:
                    job(self.config)
                else:
                    logger.info("digest job: another daemon is running it")

        try:
            await asyncio.to_thread(once)
        except Exception:
            logger.exception("digest job failed; the next run tries again")

    async def alert_job(self, alert: Alert) -> None:
        try:
            await asyncio.to_thread(alerts.check, self.config, self.engine, alert, self.searches[alert.id])
        except Exception:
            logger.exception("alert %s: check failed; the next check tries again", alert.id)

    def schedule(self) -> AsyncIOScheduler:
        weekday, hour, minute = self.config.get("digest", "schedule")
        tz = ZoneInfo(self.config.get("digest", "timezone"))
        scheduler = AsyncIOScheduler(timezone=tz)
        scheduler.add_job(self.poll, IntervalTrigger(seconds=poll_tick(self.sources)), id="poll",
                          next_run_time=utcnow(), max_instances=1, coalesce=True, misfire_grace_time=None)
        scheduler.add_listener(self._after_poll, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.add_job(self.digest_job, CronTrigger(day_of_week=weekday, hour=hour, minute=minute, timezone=tz),
                          args=[digest.send_scheduled], id="digest", max_instances=1, coalesce=True,
                          misfire_grace_time=3600)
        scheduler.add_job(self.digest_job, IntervalTrigger(hours=1), args=[digest.retry_unsent], id="digest-retry",
                          max_instances=1, coalesce=True)
        if self.shared:
            scheduler.add_job(self.heartbeat, IntervalTrigger(seconds=max(1.0, self.lease / 4)), id="heartbeat",
                              max_instances=1, coalesce=True)
        for alert in self.config.alerts:
            scheduler.add_job(self.alert_job, IntervalTrigger(seconds=alert.every), args=[alert],
                              id=f"alert-{alert.id}", max_instances=1, coalesce=True, misfire_grace_time=None)
        return scheduler

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._signal, sig)
        if self.shared:
            await asyncio.to_thread(leases.heartbeat, self.engine, self.worker, self.lease)  # registers it
        scheduler = self.scheduler = self.schedule()
        scheduler.start()
        logger.info("started: %d feeds of %d sources, polled as they fall due (a look at least every %.0f s)%s",
                    sum(len(s.feeds) for s in self.sources), len(self.sources), poll_tick(self.sources),
                    f"; worker {self.worker}, sharing the feeds with other daemons (lease {self.lease:g} s)"
                    if self.shared else "")
        await self.stopping.wait()
        scheduler.pause()
        await self._finish_crawl()
        scheduler.shutdown(wait=False)
        if self.shared:
            released = await asyncio.to_thread(leases.release, self.engine, self.worker, True)
            logger.info("released %d leases", released)
        self.engine.dispose()
        logger.info("stopped")

    def _signal(self, sig: signal.Signals) -> None:
        logger.info("%s: finishing the running crawl (at most %.0f s), then stopping", sig.name, SHUTDOWN_GRACE)
        self.stopping.set()

    async def _finish_crawl(self) -> None:
        """Let a running crawl end on its own; past the grace period, stop it (in-flight items still finish)."""
        if self.polling is None or self.polling.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.polling), SHUTDOWN_GRACE)
        except TimeoutError:
            logger.warning("crawl still running after %.0f s: stopping it", SHUTDOWN_GRACE)
            await self.runner.stop()


def log_cycle(stats: dict[str, Any], polled: int, seconds: float) -> None:
    def n(key: str) -> int:
        return int(stats.get(f"talentwatch/{key}", 0))

    logger.info("poll: %d feeds, %d parsed, %d unchanged, %d errors; %d new items, %d updated, %d tagged; %.1f s",
                polled, n("feeds_parsed"), n("feeds_not_modified"), n("feeds_failed"), n("items_new"),
                n("items_updated"), n("items_tagged"), seconds)


def configure_logging(level: str, log_file: str | None) -> None:
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    if level.upper() != "DEBUG":  # Scrapy's own per-crawl chatter
        for name in ("scrapy", "twisted", "apscheduler", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)  # "skipped: ... running": coalesced polls


def run(config: Config, sources: Sequence[Source], searches: dict[str, Any] | None = None) -> int:
    """Run the daemon in the foreground until SIGTERM or SIGINT; returns the exit status.
    The caller holds the single-instance lock."""
    from scrapy.utils.reactor import install_reactor

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    status = 0

    def failed(failure: Any) -> None:
        nonlocal status
        status = 1
        logger.error("daemon failed: %s", failure.getTraceback())

    def start() -> None:
        done = Deferred.fromFuture(asyncio.ensure_future(Daemon(config, sources, searches).main()))
        done.addErrback(failed)
        done.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    return status
