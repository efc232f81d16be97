"""Run crawls once in this process (the `crawl` and `recrawl` commands; the daemon uses AsyncCrawlerRunner)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from scrapy import Spider
from scrapy.crawler import AsyncCrawlerProcess

from crawler.items import FeedState
from crawler.sources import Source
from crawler.spiders.articles import ArticlesSpider
from crawler.spiders.feeds import FeedsSpider


def crawl_once(settings: dict[str, Any], feeds: Sequence[FeedState], fulltext: Sequence[Source] = ()
               ) -> dict[str, Any]:
    """Poll ``feeds``, then fetch the new articles of the ``fulltext`` sources; returns the crawl's stats (the
    feeds spider's, plus the articles spider's ``talentwatch/text/...`` counters). The reactor cannot restart:
    call once per process."""
    crawls: list[tuple[type[Spider], dict[str, Any]]] = [(FeedsSpider, {"feeds": feeds})]
    if fulltext:
        crawls.append((ArticlesSpider, {"sources": fulltext}))
    stats = run_crawls(settings, crawls)
    return {k: v for s in reversed(stats) for k, v in s.items()}  # the first crawl's values win on a clash


def run_crawls(settings: dict[str, Any], crawls: Sequence[tuple[type[Spider], dict[str, Any]]]
               ) -> list[dict[str, Any]]:
    """Run the spiders one after the other in this process, each with its keyword arguments, and return each
    crawl's stats (empty for one that did not run: an interrupted crawl stops the sequence). The reactor cannot
    restart: call once per process."""
    process = AsyncCrawlerProcess(settings)  # installs the asyncio reactor: import it only after this
    from twisted.internet import reactor
    crawlers = [process.create_crawler(spider) for spider, _ in crawls]
    failure: list[BaseException] = []

    async def in_turn() -> None:
        try:
            for crawler, (_, kwargs) in zip(crawlers, crawls, strict=True):
                await process.crawl(crawler, **kwargs)
                if crawler.stats and crawler.stats.get_value("finish_reason") not in (None, "finished"):
                    break
        except Exception as e:  # re-raised below, once the reactor has stopped
            failure.append(e)
        finally:
            with suppress(RuntimeError):  # stopped already (a signal)
                reactor.stop()

    task = asyncio.get_event_loop().create_task(in_turn())
    process.start(stop_after_crawl=False)
    task.cancel()
    if failure:
        raise failure[0]
    return [c.stats.get_stats() if c.stats else {} for c in crawlers]
