"""Run the feeds spider once in this process (the `crawl` command; the daemon uses AsyncCrawlerRunner)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scrapy.crawler import AsyncCrawlerProcess

from crawler.items import FeedState
from crawler.spiders.feeds import FeedsSpider


def crawl_once(settings: dict[str, Any], feeds: Sequence[FeedState]) -> dict[str, Any]:
    """Poll ``feeds`` and return the crawl's stats. The reactor cannot restart: call once per process."""
    process = AsyncCrawlerProcess(settings)
    crawler = process.create_crawler(FeedsSpider)
    process.crawl(crawler, feeds=feeds)
    process.start()
    return crawler.stats.get_stats() if crawler.stats else {}
