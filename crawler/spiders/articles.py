"""The articles spider: fetch the article page of each stored item of a fulltext source that has no text yet, and
hand each outcome on as one ``ArticleText`` to the extract, tag and text-store stages.

It runs after the feeds spider in the same crawl (``crawler.runner.crawl_once``, the daemon's poll) and asks the
store itself which items to fetch, so it sees the items that crawl just stored; `recrawl` runs it for a date range
(``window``). Requests go through the whole Scrapy engine: robots.txt is obeyed, AutoThrottle and a per-host delay
pace each site, 5xx and timeouts are retried, responses are capped at ``MAXSIZE``, and every hop is checked by
``crawler.linksafety``. Each item gets a final ``text_status``:

- ok: the page's text was extracted (the pipeline decides; also paywalled/blocked/failed from the page itself)
- paywalled: 401, 402, 403 or 451
- blocked: refused by the link-safety check or by robots.txt
- skipped: not an http(s) link, not HTML, or larger than ``MAXSIZE``
- failed: any other error (404, 5xx after retries, a timeout, no connection)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest, StopDownload
from scrapy.http import HtmlResponse, Response
from scrapy.http.headers import Headers
from scrapy.spidermiddlewares.httperror import HttpError
from sqlalchemy.orm import Session
from twisted.internet.defer import CancelledError
from twisted.python.failure import Failure

from crawler.archives import Window
from crawler.items import Article, ArticleText
from crawler.linksafety import LINK_FROM, UnsafeLink, link_meta
from crawler.sources import Source
from crawler.spiders import NoProgress, Progress, describe_failure
from store.db import make_engine
from store.texts import Lease, PendingText, texts_missing, texts_to_fetch

logger = logging.getLogger(__name__)
MAXSIZE = 5 * 1024 * 1024
PAYWALL_STATUSES = [401, 402, 403, 451]
HTML_TYPES = (b"text/html", b"application/xhtml+xml")


class ArticlesSpider(Spider):
    name = "articles"
    custom_settings = {
        "ROBOTSTXT_OBEY": True,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 2,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": 1.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_DELAY": 1.0,  # per host, at least: AutoThrottle only lengthens it
        "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
        "DOWNLOAD_MAXSIZE": MAXSIZE,
        "DOWNLOAD_WARNSIZE": 0,
        "REDIRECT_MAX_TIMES": 5,
        "CONCURRENT_ITEMS": 8,
        "DOWNLOADER_MIDDLEWARES": {
            "crawler.linksafety.LinkSafetyMiddleware": 50,  # before robots.txt (100): its request is checked too
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "crawler.robotstxt.RobotsTxtMiddleware": 100,
        },
        "ITEM_PIPELINES": {
            "pipelines.extract.ExtractPipeline": 200,
            "pipelines.tag.TagPipeline": 300,
            "pipelines.store.TextStorePipeline": 900,
        },
    }

    def __init__(self, sources: Sequence[Source] = (), window: Window | None = None,
                 progress: Progress | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sources = {s.id: s for s in sources if s.fulltext}
        self.window, self.progress = window, progress or NoProgress()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ArticlesSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.headers_received, signal=signals.headers_received)
        return spider

    async def start(self) -> AsyncIterator[Request]:
        pending = await asyncio.to_thread(self._pending) if self.sources else []
        self.progress.phase("texts")
        self.progress.plan(len(pending))
        self.crawler.stats.set_value("talentwatch/text/pending", len(pending))
        for job in pending:
            if urlsplit(job.url).scheme not in ("http", "https"):  # mailto:, urn:..., ftp:
                yield self._outcome(self._page(job, job.url), "skipped", "not an http(s) link")
                continue
            yield Request(job.url, callback=self.parse_page, errback=self.page_failed, cb_kwargs={"job": job},
                          dont_filter=True, meta={"handle_httpstatus_list": PAYWALL_STATUSES,
                                                  **link_meta(self.sources[job.source_id].feeds)})

    def _pending(self) -> list[PendingText]:
        engine = make_engine(self.settings["TALENTWATCH_DATABASE_URL"])
        worker = self.settings.get("TALENTWATCH_WORKER_ID")
        lease = Lease(worker, self.settings.getfloat("TALENTWATCH_LEASE", 120.0)) if worker else None
        try:
            with Session(engine) as session, session.begin():  # the leases (PostgreSQL) commit with the read
                if self.window is not None:
                    return texts_missing(session, list(self.sources), self.window.start, self.window.end,
                                         lease=lease)
                return texts_to_fetch(session, list(self.sources), lease=lease)
        finally:
            engine.dispose()

    def headers_received(self, headers: Headers, body_length: int, request: Request, spider: Spider) -> None:
        """Stop reading a page that is not HTML as soon as its headers say so."""
        if LINK_FROM in request.meta and not _html_type(headers):
            raise StopDownload(fail=False)

    def parse_page(self, response: Response, job: PendingText) -> ArticleText:
        page = self._page(job, response.url)
        if response.status in PAYWALL_STATUSES:
            return self._outcome(page, "paywalled", f"HTTP {response.status}")
        if not _html_type(response.headers) or not isinstance(response, HtmlResponse):
            ctype = (response.headers.get(b"Content-Type") or b"no content type").decode("latin-1")
            return self._outcome(page, "skipped", f"not HTML ({ctype})")
        page.html = response.text
        self._done()
        return page

    def page_failed(self, failure: Failure) -> ArticleText | None:
        if not self.crawler.crawling:  # the crawl is being stopped (SIGTERM): no verdict, the next crawl tries again
            return None
        request = failure.request  # type: ignore[attr-defined]
        page = self._page(request.cb_kwargs["job"], request.url)
        exc = failure.value
        if isinstance(exc, HttpError):
            return self._outcome(page, "failed", f"HTTP {exc.response.status}")
        if isinstance(exc, UnsafeLink):
            return self._outcome(page, "blocked", str(exc))
        if isinstance(exc, IgnoreRequest):  # robots.txt
            return self._outcome(page, "blocked", str(exc) or "ignored")
        if isinstance(exc, DownloadCancelledError | CancelledError):  # over DOWNLOAD_MAXSIZE
            return self._outcome(page, "skipped", f"larger than {MAXSIZE // 2**20} MB")
        return self._outcome(page, "failed", describe_failure(failure))

    def _page(self, job: PendingText, url: str) -> ArticleText:
        article = Article(key=job.key, url=job.url, guid=None, title=job.title, summary=job.summary,
                          published=job.published)
        return ArticleText(item_id=job.item_id, source_id=job.source_id, article=article, page_url=url)

    def _outcome(self, page: ArticleText, status: str, reason: str) -> ArticleText:
        page.article.text_status, page.reason = status, reason
        log = logger.warning if status == "failed" else logger.info
        log("%s: %s: %s", page.page_url, status, reason)
        self._done()
        return page

    def _done(self) -> None:
        self.progress.done(1)


def _html_type(headers: Headers) -> bool:
    ctype = (headers.get(b"Content-Type") or b"").split(b";")[0].strip().lower()
    return not ctype or ctype in HTML_TYPES

