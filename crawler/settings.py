"""Scrapy settings for talentwatch crawls; ``crawl_settings`` fills in what comes from talentwatch.toml."""

from __future__ import annotations

import os
from typing import Any

from talentwatch.config import Config

BOT_NAME = "talentwatch"
SPIDER_MODULES = ["crawler.spiders"]
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
ROBOTSTXT_OBEY = False  # feeds exist to be polled; article fetching (fulltext) checks robots.txt on its own
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
RETRY_ENABLED = False  # a failed feed is retried on a later poll, with backoff (crawler/due.py)
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024
DOWNLOAD_WARNSIZE = 5 * 1024 * 1024
CONCURRENT_REQUESTS_PER_DOMAIN = 4
CONCURRENT_ITEMS = 1  # one FeedFetch per response: more item workers per response only cost time
LOG_LEVEL = "WARNING"
TALENTWATCH_PARSE_WORKERS = os.cpu_count() or 1  # processes that parse, normalize and tag bodies; 0: a thread
ITEM_PIPELINES = {
    "pipelines.normalize.NormalizePipeline": 100,
    "pipelines.tag.TagPipeline": 300,
    "pipelines.store.StorePipeline": 900,
}


def crawl_settings(config: Config) -> dict[str, Any]:
    """This module's settings plus the values that come from the user's configuration."""
    settings = {k: v for k, v in globals().items() if k.isupper()}
    settings.update(
        CONCURRENT_REQUESTS=config.get("crawl", "concurrency"),
        DOWNLOAD_TIMEOUT=config.get("crawl", "timeout"),
        USER_AGENT=config.get("crawl", "user_agent"),
        TALENTWATCH_DATABASE_URL=config.database_url,
        TALENTWATCH_TOPICS=str(config.topics_path),
        TALENTWATCH_WORKER_ID=config.worker_id,  # recorded on each feed it polls (status: who polled it)
        TALENTWATCH_LEASE=config.get("daemon", "lease"),  # PostgreSQL: how long it holds feeds and articles
    )
    return settings
