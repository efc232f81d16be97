"""Retries that back off: Scrapy's RetryMiddleware, plus a slower host after a 429 or a 5xx."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


class BackoffRetryMiddleware(RetryMiddleware):
    """On a retryable answer the host's download slot waits longer before its next request, the retry included:
    twice its delay (at least ``TALENTWATCH_BACKOFF_BASE`` seconds) or what ``Retry-After`` asks, at most
    ``TALENTWATCH_BACKOFF_MAX``. AutoThrottle brings the delay down again as answers come back fine.

    The delay changes on ``response_downloaded``, as AutoThrottle's does: before the slot sends its next request."""

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.base = settings.getfloat("TALENTWATCH_BACKOFF_BASE", 1.0)
        self.cap = settings.getfloat("TALENTWATCH_BACKOFF_MAX", 120.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        middleware = super().from_crawler(crawler)
        crawler.signals.connect(middleware.downloaded, signal=signals.response_downloaded)
        return middleware

    def downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        if response.status not in self.retry_http_codes or request.meta.get("dont_retry", False):
            return
        slot = self.crawler.engine.downloader.slots.get(request.meta.get("download_slot", ""))
        if slot is None:
            return
        asked = retry_after(response.headers.get("Retry-After"))
        slot.delay = min(self.cap, max(self.base, slot.delay * 2, asked or 0.0))
        self.crawler.stats.inc_value(f"talentwatch/backoff/{response.status}")
        logger.info("%s answered %d: waiting %.1f s between its requests", request.url, response.status, slot.delay)


def retry_after(value: Any) -> float | None:
    """Seconds from a Retry-After header (a number of seconds or an HTTP date)."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(text) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
