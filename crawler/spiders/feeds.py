"""The feeds spider: one conditional GET per feed, parsed (normalized, tagged) in worker processes while fetching
goes on, one FeedFetch out per feed."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    DownloadCancelledError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.items import FeedFetch, FeedState
from crawler.parsepool import ParsePool, rules_stamp
from crawler.spiders import describe_failure

logger = logging.getLogger(__name__)
ERROR_STATUSES = [304, *range(400, 600)]  # answers we record ourselves instead of letting Scrapy drop them


class FeedsSpider(Spider):
    name = "feeds"

    def __init__(self, feeds: Sequence[FeedState] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feeds = list(feeds)
        self.parser = ParsePool(0, None)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> FeedsSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        tagging = settings.getwithbase("ITEM_PIPELINES").get("pipelines.tag.TagPipeline") is not None
        rules = rules_stamp(settings.get("TALENTWATCH_TOPICS")) if tagging else None
        spider.parser = ParsePool(settings.getint("TALENTWATCH_PARSE_WORKERS"), rules)
        return spider

    async def start(self) -> AsyncIterator[Request]:
        for feed in self.feeds:
            yield Request(
                feed.fetch_url or feed.url, callback=self.parse_feed, errback=self.fetch_failed,
                cb_kwargs={"feed": feed}, headers=_conditional_headers(feed), dont_filter=True,
                meta={"handle_httpstatus_list": ERROR_STATUSES, "dont_retry": True},
            )

    async def parse_feed(self, response: Response, feed: FeedState) -> AsyncIterator[FeedFetch]:
        fetch = _fetch(feed, response.status)
        fetch.server_delay = _server_delay(response)
        fetch.moved_to = _moved_to(response)
        if response.status == 304:
            fetch.not_modified = True
        elif response.status >= 400:
            fetch.error = _http_error(response.status)
        else:
            await self._read_body(response, feed, fetch)
        self._log_outcome(fetch)
        yield fetch

    async def _read_body(self, response: Response, feed: FeedState, fetch: FeedFetch) -> None:
        fetch.etag = _header(response, "ETag")
        fetch.last_modified = _header(response, "Last-Modified")
        fetch.body_hash = hashlib.sha256(response.body).hexdigest()
        if fetch.body_hash == feed.body_hash:
            fetch.not_modified = True
            return
        try:
            parsed = await self.parser.parse(response.body, _parser_headers(response))
        except Exception as e:  # a bug in a parse stage: recorded on the feed, the crawl goes on
            logger.exception("%s: parsing failed", feed.url)
            fetch.error = f"parsing failed: {type(e).__name__}: {e}"
            return
        if parsed.feed.error:
            fetch.error = parsed.feed.error
            return
        if parsed.feed.problem:
            logger.info("%s: read with problems: %s", feed.url, parsed.feed.problem)
        if parsed.articles is None:  # parsed in a thread: the pipeline normalizes and tags
            fetch.entries = parsed.feed.entries
        else:
            fetch.articles, fetch.tagged = parsed.articles, parsed.tagged
            self.crawler.stats.inc_value("talentwatch/entries", len(parsed.articles))
        fetch.server_delay = max(fetch.server_delay or 0.0, parsed.feed.ttl_seconds or 0.0) or None

    def fetch_failed(self, failure: Failure) -> FeedFetch:
        request = failure.request  # type: ignore[attr-defined]
        response = getattr(failure.value, "response", None)  # HttpError: an answer Scrapy would not pass on
        fetch = _fetch(request.cb_kwargs["feed"], response.status if response is not None else None)
        fetch.error = self._describe(failure)
        self._log_outcome(fetch)
        return fetch

    def _describe(self, failure: Failure) -> str:
        """The failure in words a reader of `status` can act on, after the exception's name."""
        exc, settings = failure.value, self.crawler.settings
        request = failure.request  # type: ignore[attr-defined]
        limit = f"{request.meta.get('download_maxsize', settings.getint('DOWNLOAD_MAXSIZE')) / 2**20:g} MB"
        name = type(exc).__name__
        if isinstance(exc, DownloadTimeoutError | TimeoutError):
            timeout = request.meta.get("download_timeout", settings.getfloat("DOWNLOAD_TIMEOUT"))
            return f"{name}: timed out after {timeout:g} s without a complete answer"
        if isinstance(exc, DownloadCancelledError) and self.crawler.crawling:  # else: the crawl is stopping
            return f"{name}: body larger than the {limit} limit, download cancelled"
        if isinstance(exc, IgnoreRequest) and "during decompression" in str(exc):
            return f"{name}: decompressed body larger than the {limit} limit (a compression bomb?)"
        if isinstance(exc, IgnoreRequest) and "max redirections" in str(exc):
            return f"{name}: redirect loop, more than {settings.getint('REDIRECT_MAX_TIMES')} redirects"
        if isinstance(exc, HttpError) and 300 <= exc.response.status < 400:  # the redirect middleware declined it
            location = _header(exc.response, "Location") or ""
            return f"HTTP {exc.response.status}: redirect to a non-HTTP URL refused: {location[:200]}"
        if isinstance(exc, ResponseDataLossError):
            return f"{name}: connection closed before the whole body arrived (shorter than its Content-Length)"
        return describe_failure(failure)

    def _log_outcome(self, fetch: FeedFetch) -> None:
        if fetch.moved_to:
            self.crawler.stats.inc_value("talentwatch/feeds_moved")
            logger.info("%s: moved permanently to %s", fetch.url, fetch.moved_to)
        if fetch.status == 410:
            self.crawler.stats.inc_value("talentwatch/feeds_gone")
        if fetch.error:
            logger.warning("%s: %s", fetch.url, fetch.error)


def _fetch(feed: FeedState, status: int | None) -> FeedFetch:
    return FeedFetch(feed_id=feed.feed_id, source_id=feed.source_id, url=feed.fetch_url or feed.url,
                     fetched=datetime.now(UTC), interval=feed.interval, status=status)


def _conditional_headers(feed: FeedState) -> dict[str, str]:
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"}
    if feed.etag:
        headers["If-None-Match"] = feed.etag
    if feed.last_modified:
        headers["If-Modified-Since"] = feed.last_modified
    return headers


def _moved_to(response: Response) -> str | None:
    """The feed's new URL when every redirect on the way was permanent (301, 308); else None."""
    reasons = response.meta.get("redirect_reasons") or []
    if reasons and all(r in (301, 308) for r in reasons):
        return response.url
    return None


def _http_error(status: int) -> str:
    try:
        error = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        error = f"HTTP {status}"
    if status == 410:
        error += ": feed disabled, not polled again (give it a new URL in sources.toml to poll it)"
    return error


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _parser_headers(response: Response) -> dict[str, str]:
    headers = {k.decode("latin-1").lower(): v[-1].decode("latin-1") for k, v in response.headers.items() if v}
    headers.setdefault("content-location", response.url)
    return headers


def _server_delay(response: Response) -> float | None:
    """Seconds the server asked us to wait: Retry-After (on 429/503) or Cache-Control max-age."""
    if response.status in (429, 503) and (retry := _header(response, "Retry-After")):
        try:
            return max(0.0, float(retry))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(retry) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                return None
    for directive in (_header(response, "Cache-Control") or "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.strip().isdigit():
            return float(value)
    return None
