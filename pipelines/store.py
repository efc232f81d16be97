"""Store stage: writes each FeedFetch (articles and feed state) in one transaction, off the reactor thread."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from sqlalchemy import Engine

from crawler.items import FeedFetch
from store.db import open_database
from store.queries import save_fetch


class StorePipeline:
    """Writes go through one worker thread, so a crawl never has two transactions open at once."""

    def __init__(self, crawler: Crawler, url: str) -> None:
        self.stats, self.url = crawler.stats, url
        self.engine: Engine | None = None
        self.executor: ThreadPoolExecutor | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        url = crawler.settings.get("TALENTWATCH_DATABASE_URL")
        if not url:
            raise NotConfigured("TALENTWATCH_DATABASE_URL is not set")
        return cls(crawler, url)

    def open_spider(self) -> None:
        self.engine = open_database(self.url)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="talentwatch-store")

    def close_spider(self) -> None:
        if self.executor:
            self.executor.shutdown(wait=True)
        if self.engine:
            self.engine.dispose()

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, FeedFetch):
            return item
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self.executor, save_fetch, self.engine, item)
        except Exception:
            self.stats.inc_value("talentwatch/store_errors")  # Scrapy logs the error; the item is not passed on
            raise
        self._count(item, result)
        return item

    def _count(self, item: FeedFetch, result: Any) -> None:
        outcome = "failed" if item.error else "not_modified" if item.not_modified else "parsed"
        self.stats.inc_value(f"talentwatch/feeds_{outcome}")
        self.stats.inc_value("talentwatch/items_new", result.new)
        self.stats.inc_value("talentwatch/items_updated", result.updated)
        self.stats.inc_value("talentwatch/items_tagged", result.tagged)
