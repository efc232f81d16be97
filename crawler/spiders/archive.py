"""The archive spider: backfill a date range from archive providers, one provider after the other.

Providers (``crawler.archives``) discover candidate entries; this spider keeps those published inside the range
(an entry without a date: when the capture that carried it was taken inside it), drops what is already stored, and
yields one ``FeedFetch`` per batch (no feed: ``feed_id`` is None, ``via`` names the provider), which the normal
pipelines tag and store. Archives only add items: a stored item is never overwritten by an archive's copy.

Providers run in turn (``NAMES`` order, richest data first), each starting when the previous one's requests and
items are all done, so an item two archives know is stored as the first one has it, on every run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from sqlalchemy import Engine
from twisted.python.failure import Failure

from crawler.archives import Found, Planned, Provider, Step, Window
from crawler.archives.gdelt import DELAY as GDELT_DELAY
from crawler.archives.gdelt import SLOT as GDELT_SLOT
from crawler.items import FeedFetch
from crawler.settings import crawl_settings
from crawler.sources import Source
from crawler.spiders import NoProgress, Progress, describe_failure
from pipelines.normalize import normalize_entries
from store.db import make_engine
from store.recrawl import stored_articles
from talentwatch.config import Config

logger = logging.getLogger(__name__)


class ArchiveSpider(Spider):
    name = "archive"
    custom_settings = {
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 3,
        "RETRY_HTTP_CODES": [429, 500, 502, 503, 504, 522, 524, 408],
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawler.archives.backoff.BackoffRetryMiddleware": 550,
        },
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "DOWNLOAD_DELAY_JITTER": 0.0,  # the delay is a floor: Retry-After and GDELT's 5 s are not to be cut
        "DOWNLOAD_SLOTS": {GDELT_SLOT: {"concurrency": 1, "delay": GDELT_DELAY, "jitter": 0}},
    }

    def __init__(self, sources: Sequence[Source] = (), window: Window | None = None,
                 providers: Sequence[Provider] = (), progress: Progress | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sources, self.window = list(sources), window
        self.waiting = list(providers)
        self.provider: Provider | None = None
        self.progress = progress or NoProgress()
        self.claimed: set[str] = set()  # keys handed on by the running provider: each is stored once
        self.engine: Engine | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ArchiveSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.idle, signal=signals.spider_idle)
        return spider

    async def start(self) -> AsyncIterator[Request]:
        self.engine = make_engine(self.settings["TALENTWATCH_DATABASE_URL"])
        for request in self._next_provider():
            yield request

    def idle(self) -> None:
        """The running provider is done (requests answered, items stored): start the next one."""
        requests = self._next_provider()
        for request in requests:
            self.crawler.engine.crawl(request)
        if requests:
            raise DontCloseSpider

    def _next_provider(self) -> list[Request]:
        assert self.window is not None
        while self.waiting:
            self.provider, self.claimed = self.waiting.pop(0), set()
            requests: list[Request] = []
            sources = [s for s in self.sources if self.provider.applies(s)]
            if sources:
                self.progress.phase(self.provider.name)
            for source in sources:
                for out in self.provider.discover(source, self.window):
                    requests.extend(self._handled(out, source))
            if requests:
                return requests
        return []

    async def parse(self, response: Response, step: Step, source: Source, **kwargs: Any) -> AsyncIterator[Any]:
        async for out in self._run(step, response, source, kwargs, response.meta.get("unit", False)):
            yield out

    async def failed(self, failure: Failure) -> AsyncIterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        kwargs = dict(request.cb_kwargs)
        step, source = kwargs.pop("step"), kwargs.pop("source")
        logger.warning("%s: %s", request.url, describe_failure(failure))
        self._count(source, "errors")
        async for out in self._run(step, None, source, kwargs, request.meta.get("unit", False)):
            yield out

    async def _run(self, step: Step, response: Response | None, source: Source, kwargs: dict[str, Any],
                   unit: bool) -> AsyncIterator[Any]:
        """Call a provider's step and turn what it yields into requests and FeedFetch items."""
        try:
            output = step(response, source=source, **kwargs)
            if hasattr(output, "__aiter__"):
                async for out in output:
                    for handled in await self._handled_async(out, source):
                        yield handled
            else:
                for out in output:
                    for handled in await self._handled_async(out, source):
                        yield handled
        except Exception:
            logger.exception("%s: %s could not read %s", source.id, self._via(), response.url if response else step)
            self._count(source, "errors")
        finally:
            if unit:
                self.progress.done(1)

    async def _handled_async(self, out: Request | Found | Planned, source: Source) -> list[Any]:
        if isinstance(out, Found):
            fetch = await self._fetch(out, source)
            return [fetch] if fetch is not None else []
        return self._handled(out, source)

    def _handled(self, out: Request | Planned | Found, source: Source) -> list[Request]:
        if isinstance(out, Planned):
            self.progress.plan(out.units)
            return []
        if isinstance(out, Request):
            self._count(source, "requests")
            return [out.replace(callback=self.parse, errback=self.failed)]
        raise TypeError(f"{self._via()}: discover() may yield requests and Planned only, not {out!r}")

    async def _fetch(self, found: Found, source: Source) -> FeedFetch | None:
        """The entries inside the range that are neither stored nor handed on already, as one FeedFetch."""
        assert self.window is not None and self.engine is not None
        articles = normalize_entries(found.entries)
        inside = [a for a in articles if self._inside(a.published, found.seen)]
        fresh = [a for a in inside if a.key not in self.claimed]
        self.claimed.update(a.key for a in fresh)
        self._count(source, "outside", len(articles) - len(inside))
        self._count(source, "candidates", len(fresh))
        if not fresh:
            return None
        stored = await asyncio.to_thread(stored_articles, self.engine, source.id, fresh)
        new = [a for a in fresh if a.key not in stored]
        if not new:
            return None
        for article in new:
            article.via = self._via()
        return FeedFetch(feed_id=None, source_id=source.id, url=found.where, fetched=found.seen or datetime.now(UTC),
                         interval=0.0, via=self._via(), articles=new)

    def _inside(self, published: datetime | None, seen: datetime | None) -> bool:
        assert self.window is not None
        return published in self.window if published is not None else seen in self.window

    def _via(self) -> str:
        return self.provider.name if self.provider else "archive"

    def _count(self, source: Source, what: str, n: int = 1) -> None:
        self.crawler.stats.inc_value(f"talentwatch/{self._via()}/{source.id}/{what}", n)

    def closed(self, reason: str) -> None:
        if self.engine is not None:
            self.engine.dispose()


def archive_settings(config: Config) -> dict[str, Any]:
    """The crawl settings, with the `[archive] delay` between two requests to one host."""
    delay = config.get("archive", "delay")
    return {**crawl_settings(config), "DOWNLOAD_DELAY": delay, "AUTOTHROTTLE_START_DELAY": delay}
