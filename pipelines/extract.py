"""Extract stage: the main text and metadata of a fetched article page (trafilatura), and whether it is the article
at all or a paywall, login wall or consent page. A thin Scrapy adapter over ``extract_article``, a pure function
that ``bench/extraction.py`` scores.

A page's text is kept only when it looks like the article: it must be found, must not be a consent or login page,
and must not be shorter than the feed's own summary (a teaser behind a paywall). Otherwise the item keeps its
summary and ``text_status`` says why.
"""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler.items import ArticleText

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# trafilatura's options, chosen with bench/extraction.py on the 181 pages of the article-extraction benchmark:
# favour precision (F1 0.964 against 0.960 balanced, 0.962 fast, 0.959 favour recall), no reader comments
OPTIONS: dict[str, Any] = {"favor_precision": True, "include_comments": False, "include_tables": True}
SHORT = 1500  # characters: a page with a login form or paywall marker and less text than this is a teaser
CONSENT_URL = re.compile(r"^https?://(consent|guce)\.", re.I)  # where Google, Yahoo... send a visitor to consent first
CONSENT_TEXT = re.compile(r"\b(cookies?|consent|privacy (settings|preferences))\b", re.I)
PAYWALL_MARKUP = re.compile(r'"isAccessibleForFree"\s*:\s*"?false', re.I)  # schema.org, as Google asks of paywalls
LOGIN_FORM = re.compile(r'<input[^>]+type=["\']?password', re.I)
LOGIN_TEXT = re.compile(r"\b(sign in|log in|subscribe|subscription|already a subscriber|create an account)\b", re.I)
HTML_LANG = re.compile(r"<html\b[^>]*?\blang=[\"']?([A-Za-z]{2,3}(?:-[A-Za-z0-9]+)?)", re.I)


@dataclass
class Extracted:
    """What a page gave: ``status`` ok (the text is the article) or paywalled, blocked, failed, with ``reason``."""

    status: str
    text: str | None = None
    reason: str = ""
    title: str | None = None
    author: str | None = None
    published: datetime | None = None
    language: str | None = None


def extract_text(html: str, url: str | None = None, options: dict[str, Any] | None = None) -> Any:
    """trafilatura's document for a page (text and metadata), with our options; None when it finds no text."""
    import trafilatura

    return trafilatura.bare_extraction(html, url=url, with_metadata=True, **(options or OPTIONS))


def extract_article(html: str, url: str | None = None, summary: str = "") -> Extracted:
    """The article in a page, judged against the feed's ``summary``."""
    try:
        doc = extract_text(html, url)
    except Exception as e:  # trafilatura on hostile markup: the item keeps its summary
        logger.warning("%s: extraction failed: %s", url, e, exc_info=True)
        return Extracted("failed", reason=f"extraction failed: {type(e).__name__}")
    text = (doc.text or "").strip() if doc is not None else ""
    found = Extracted("ok", text or None, title=getattr(doc, "title", None), author=getattr(doc, "author", None),
                      published=_date(getattr(doc, "date", None)), language=_language(html))
    found.status, found.reason = judge(html, url or "", text, summary)
    if found.status != "ok":
        found.text = None
    return found


def judge(html: str, url: str, text: str, summary: str) -> tuple[str, str]:
    """(text_status, reason) for a page's extracted ``text``: is it the article, or a wall in front of it?"""
    if not text:
        return "failed", "no article text found"
    short = len(text) < SHORT
    if CONSENT_URL.search(url) or (short and CONSENT_TEXT.search(text) and "accept" in text.lower()):
        return "blocked", "a consent page"
    if short and LOGIN_FORM.search(html) and LOGIN_TEXT.search(text):
        return "paywalled", "a login wall"
    if short and PAYWALL_MARKUP.search(html):
        return "paywalled", "a paywall"
    if len(_squeeze(text)) < len(_squeeze(summary)):
        return "paywalled", "the page's text is shorter than the feed summary"
    return "ok", ""


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def _date(value: str | None) -> datetime | None:
    """trafilatura's (htmldate's) date, YYYY-MM-DD: the start of that day, UTC."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value[:10]).replace(tzinfo=UTC)
    except ValueError:
        return None


def _language(html: str) -> str | None:
    match = HTML_LANG.search(html[:20000])
    return match.group(1).lower() if match else None


def apply(page: ArticleText, found: Extracted) -> None:
    """Copy what the page gave onto the item: the text when ok; the page's date and title only where the feed
    gave none."""
    article = page.article
    article.text_status, page.reason = found.status, found.reason
    page.author, page.language = found.author, found.language
    if found.status != "ok":
        return
    article.text = found.text
    if article.published is None and found.published is not None:
        article.published, page.dated_by_page = found.published, True
    if not article.title and found.title:
        article.title = found.title


class ExtractPipeline:
    """Extracts each fetched page in a worker thread (trafilatura takes tens of milliseconds a page), so fetching
    goes on meanwhile."""

    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats
        self.executor: ThreadPoolExecutor | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="talentwatch-extract")

    def close_spider(self) -> None:
        if self.executor:
            self.executor.shutdown(wait=True)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, ArticleText) or item.html is None:
            return item
        html, item.html = item.html, None
        found = await asyncio.get_running_loop().run_in_executor(
            self.executor, extract_article, html, item.page_url, item.article.summary)
        apply(item, found)
        if found.status != "ok":
            logger.info("%s: %s: %s", item.page_url, found.status, found.reason)
        return item
