"""Store stage: writes FeedFetches (each one's articles with its feed state) off the reactor thread, those that
arrive together in one transaction."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from sqlalchemy import Engine

from crawler.items import ArticleText, FeedFetch
from store.db import open_database
from store.queries import SaveResult, save_fetches
from store.texts import save_text

MAX_BATCH = 64  # fetches in one transaction at most


class _DatabaseWriter:
    """What both store pipelines share: the database of TALENTWATCH_DATABASE_URL (``NotConfigured`` without one),
    opened with the spider, and one worker thread that writes to it."""

    thread_name = "talentwatch-store"

    def __init__(self, crawler: Crawler, url: str) -> None:
        self.stats, self.url = crawler.stats, url
        self.worker: str | None = crawler.settings.get("TALENTWATCH_WORKER_ID")
        self.engine: Engine | None = None
        self.executor: ThreadPoolExecutor | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        url = crawler.settings.get("TALENTWATCH_DATABASE_URL")
        if not url:
            raise NotConfigured("TALENTWATCH_DATABASE_URL is not set")
        return cls(crawler, url)

    def open_spider(self) -> None:
        self.engine = open_database(self.url)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.thread_name)

    def close_spider(self) -> None:
        if self.executor:
            self.executor.shutdown(wait=True)
        if self.engine:
            self.engine.dispose()


class StorePipeline(_DatabaseWriter):
    """Writes go through one worker thread, so a crawl never has two transactions open at once. Fetches that
    arrive while a transaction is written wait for it and then go together in the next one (group commit): no
    waiting when the store keeps up, one commit per batch when it does not."""

    def __init__(self, crawler: Crawler, url: str) -> None:
        super().__init__(crawler, url)
        self.waiting: list[tuple[FeedFetch, asyncio.Future[SaveResult]]] = []
        self.writing = False

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, FeedFetch):
            return item
        saved: asyncio.Future[SaveResult] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, saved))
        if not self.writing:
            self._write()
        try:
            result = await saved
        except Exception:
            self.stats.inc_value("talentwatch/store_errors")  # Scrapy logs the error; the item is not passed on
            raise
        self._count(item, result)
        return item

    def _write(self) -> None:
        batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
        self.writing = True
        written = asyncio.get_running_loop().run_in_executor(
            self.executor, save_fetches, self.engine, [fetch for fetch, _ in batch], self.worker)
        written.add_done_callback(partial(self._written, batch))

    def _written(self, batch: list[tuple[FeedFetch, asyncio.Future[SaveResult]]],
                 written: asyncio.Future[list[SaveResult | Exception]]) -> None:
        self.writing = False
        error = written.exception()
        for (_, saved), result in zip(batch, [error] * len(batch) if error else written.result(), strict=True):
            if saved.done():
                continue
            if isinstance(result, BaseException):
                saved.set_exception(result)
            else:
                saved.set_result(result)
        if self.waiting:
            self._write()

    def _count(self, item: FeedFetch, result: Any) -> None:
        outcome = "failed" if item.error else "not_modified" if item.not_modified else "parsed"
        self.stats.inc_value(f"talentwatch/feeds_{outcome}")
        self.stats.inc_value("talentwatch/items_new", result.new)
        self.stats.inc_value("talentwatch/items_updated", result.updated)
        self.stats.inc_value("talentwatch/items_tagged", result.tagged)
        for what, n in (("new", result.new), ("updated", result.updated)):  # per provider and source (recrawl)
            self.stats.inc_value(f"talentwatch/{item.via}/{item.source_id}/items_{what}", n)


class TextStorePipeline(_DatabaseWriter):
    """Writes each page's outcome (``ArticleText``) onto its item, one transaction each, in one worker thread;
    counts ``talentwatch/text/<status>``."""

    thread_name = "talentwatch-texts"

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, ArticleText):
            return item
        try:
            tagged = await asyncio.get_running_loop().run_in_executor(self.executor, save_text, self.engine, item)
        except Exception:
            self.stats.inc_value("talentwatch/text/store_errors")  # Scrapy logs the error; the item is not passed on
            raise
        self.stats.inc_value(f"talentwatch/text/{item.article.text_status}")
        self.stats.inc_value("talentwatch/text/tagged", int(item.tagged and tagged))
        return item
