"""Google News: an RSS search per day of the range for the source's site and the topics' key terms.

Google answers at most about 100 items per query, hence one query per day (``after:``/``before:``). Its item links
are redirects through news.google.com: each is resolved to the publisher's URL, offline when the link carries it
(the older ``CBMi...`` ids), else by asking Google's server (a redirect, or the page's ``data-n-au``); an item keeps
Google's link only when neither works, and then its GUID (Google's article id) keeps a later run from storing it
twice.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import logging
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from scrapy import Request
from scrapy.http import Response, TextResponse

from crawler.archives import DailySearch, Found, Window, search_query
from crawler.feedparse import parse_feed
from crawler.sources import Source

logger = logging.getLogger(__name__)
CAP = 100  # results per query, about
EDITIONS = {"en": ("en-US", "US", "US:en"), "zh": ("zh-CN", "CN", "CN:zh-Hans"), "zh-tw": ("zh-TW", "TW", "TW:zh-Hant"),
            "zh-hant": ("zh-TW", "TW", "TW:zh-Hant"), "ja": ("ja", "JP", "JP:ja"), "ko": ("ko", "KR", "KR:ko")}
REDIRECTS = [301, 302, 303, 307, 308]
_ARTICLE_ID = re.compile(r"/articles/([A-Za-z0-9_-]+)")
_PUBLISHER = re.compile(r"<font[^>]*>([^<]+)</font>\s*$", re.IGNORECASE)
_PAGE_URL = re.compile(r'data-n-au="([^"]+)"|http-equiv="refresh"[^>]*url=([^"\'>\s]+)', re.IGNORECASE)


class GoogleNews(DailySearch):
    name = "gnews"

    def search(self, source: Source, day: Window) -> Request:
        return self.request(self.search_url(source, day), self.searched, source=source, unit=True)

    def search_url(self, source: Source, day: Window) -> str:
        first = day.start.date()
        after, before = first.isoformat(), (first + timedelta(days=1)).isoformat()
        q = " ".join(p for p in (f"site:{source.site}", search_query(self.options.terms),
                                 f"after:{after}", f"before:{before}") if p)
        hl, gl, ceid = EDITIONS.get((source.language or "en").lower(), EDITIONS["en"])
        query = urlencode({"q": q, "hl": hl, "gl": gl, "ceid": ceid})
        return f"{self.options.google_news_url.rstrip('/')}/rss/search?{query}"

    async def searched(self, response: Response | None, source: Source) -> AsyncIterator[Request | Found]:
        """One day's results: entries whose publisher URL is known now, a request for each of the others."""
        if response is None:
            return
        parsed = await asyncio.to_thread(parse_feed, response.body, {"content-location": response.url})
        if parsed.error:
            logger.warning("%s: %s", response.url, parsed.error)
            return
        if len(parsed.entries) >= CAP:
            logger.info("%s: %d results, Google's cap: some items of that day may be missing", response.url, CAP)
        ready = []
        for entry in map(_cleaned, parsed.entries):
            link = entry.get("link") or ""
            if (url := decode_link(link)) is not None:
                ready.append({**entry, "link": url})
            elif self._is_google(link):
                yield self.request(link, self.resolved, source=source, entry=entry,
                                   meta={"dont_redirect": True, "handle_httpstatus_list": REDIRECTS})
            else:
                ready.append(entry)
        if ready:
            yield Found(ready, where=response.url)

    def resolved(self, response: Response | None, source: Source, entry: dict[str, Any]) -> Iterator[Found]:
        """Google's answer for one link: the publisher URL, else the item keeps Google's link."""
        url = publisher_url(response) if response is not None else None
        if url is not None and not self._is_google(url):
            entry = {**entry, "link": url}
        else:
            logger.info("%s: publisher URL not found, keeping Google's link", entry.get("link"))
        yield Found([entry], where=entry.get("link") or "")

    def _is_google(self, url: str) -> bool:
        host = urlsplit(url).netloc.lower()
        return host in (urlsplit(self.options.google_news_url).netloc.lower(), "news.google.com")


def decode_link(link: str) -> str | None:
    """The publisher URL inside a Google News article id (``CBMi...``: a protobuf with the URL in field 4), or
    None when the id does not carry it (the newer opaque ids)."""
    m = _ARTICLE_ID.search(urlsplit(link).path) if "google" in link or "/rss/articles/" in link else None
    if m is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(m.group(1) + "=" * (-len(m.group(1)) % 4))
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(b"\x08\x13\x22"):
        return None
    length, pos = _varint(raw, 3)
    url = raw[pos:pos + length].decode("utf-8", "replace")
    return url if url.startswith(("http://", "https://")) and pos + length <= len(raw) else None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            break
    return value, pos


def publisher_url(response: Response) -> str | None:
    """Where Google's answer for an article link points: its redirect, or the URL written in its page."""
    if response.status in REDIRECTS:
        location = response.headers.get("Location")
        return urljoin(response.url, location.decode("latin-1")) if location else None
    m = _PAGE_URL.search(response.text) if isinstance(response, TextResponse) else None
    return html.unescape(m.group(1) or m.group(2)) if m else None


def _cleaned(entry: dict[str, Any]) -> dict[str, Any]:
    """Google's title ends in " - Publisher" and its description only repeats title and publisher: drop both."""
    title = entry.get("title") or ""
    m = _PUBLISHER.search(entry.get("summary") or "")
    if m and title.endswith(suffix := f" - {html.unescape(m.group(1)).strip()}"):
        title = title[: -len(suffix)]
    return {**entry, "title": title, "summary": "", "content": ""}
