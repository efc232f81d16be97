"""The outlet's own sitemaps: its ``sitemaps``, else the ``Sitemap:`` lines of its site's ``/robots.txt``.

Sitemap indexes are followed (a child whose ``<lastmod>`` is before the range cannot list anything in it); a URL
is a candidate when its ``<news:publication_date>``, else its ``<lastmod>``, is in the range. News sitemaps give the
title; for a plain sitemap the page is read for its title and description. Only links on the host that listed them,
or on the source's ``site``, are followed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from lxml import etree, html
from scrapy import Request
from scrapy.http import Response, TextResponse
from scrapy.utils.gz import gunzip

from crawler.archives import Found, Planned, Provider, Window
from crawler.sources import Source

logger = logging.getLogger(__name__)
MAX_DEPTH = 4  # robots.txt -> index -> index -> sitemap
MAX_SIZE = 50 * 1024 * 1024  # the sitemap protocol's own limit, uncompressed
PAGE_MAX_SIZE = 2 * 1024 * 1024
_NEWS = "sitemap-news"  # in the namespace of <news:title>, <news:publication_date>
_SITEMAP_LINE = re.compile(r"^\s*sitemap\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class Sitemaps(Provider):
    name = "sitemap"

    def applies(self, source: Source) -> bool:
        return bool(source.sitemaps or source.site)

    def discover(self, source: Source, window: Window) -> Iterable[Request | Planned]:
        urls = list(source.sitemaps) or [f"https://{source.site}/robots.txt"]
        yield Planned(len(urls))
        for url in urls:
            yield self._sitemap(url, source, window, 0)

    def _sitemap(self, url: str, source: Source, window: Window, depth: int) -> Request:
        return self.request(url, self.read, source=source, unit=True, window=window, depth=depth,
                            meta={"download_maxsize": MAX_SIZE})

    async def read(self, response: Response | None, source: Source, window: Window, depth: int
                   ) -> AsyncIterator[Request | Found | Planned]:
        """A robots.txt, a sitemap index or a sitemap."""
        if response is None:
            return
        if urlsplit(response.url).path.endswith("/robots.txt"):
            listed = _SITEMAP_LINE.findall(response.text if isinstance(response, TextResponse) else "")
            for out in self._follow(listed, response.url, source, window, depth):
                yield out
            return
        kind, rows = await asyncio.to_thread(parse_sitemap, response.body)
        if kind == "sitemapindex":
            fresh = [r["loc"] for r in rows if "loc" in r and not _before(r.get("lastmod"), window)]
            for out in self._follow(fresh, response.url, source, window, depth):
                yield out
        elif kind == "urlset":
            for out in self._candidates(rows, response.url, source, window):
                yield out
        else:
            logger.warning("%s: not a sitemap", response.url)

    def _follow(self, urls: list[str], listed_by: str, source: Source, window: Window, depth: int
                ) -> Iterator[Request | Planned]:
        allowed = [u for u in urls if may_follow(u, listed_by, source)]
        for u in set(urls) - set(allowed):
            logger.warning("%s: not following %s (another host)", listed_by, u)
        if depth >= MAX_DEPTH or not allowed:
            return
        yield Planned(len(allowed))
        for url in allowed:
            yield self._sitemap(url, source, window, depth + 1)

    def _candidates(self, rows: list[dict[str, str]], listed_by: str, source: Source, window: Window
                    ) -> Iterator[Request | Found | Planned]:
        entries = []
        for row in rows:
            when = w3c_datetime(row.get("publication_date")) or w3c_datetime(row.get("lastmod"))
            if "loc" not in row or when not in window:
                continue
            entries.append({"title": row.get("title", ""), "link": row["loc"], "guid": None, "summary": "",
                            "content": "", "published": when})
        titled = [e for e in entries if e["title"]]
        untitled = [e for e in entries if not e["title"] and may_follow(e["link"], listed_by, source)]
        if titled:
            yield Found(titled, where=listed_by)
        if untitled:
            yield Planned(len(untitled))
        for entry in untitled:
            yield self.request(entry["link"], self.page, source=source, unit=True, entry=entry,
                               meta={"download_maxsize": PAGE_MAX_SIZE})

    def page(self, response: Response | None, source: Source, entry: dict[str, Any]) -> Iterator[Found]:
        """An article page listed without a title: its title and description."""
        if response is not None and isinstance(response, TextResponse):
            entry = {**entry, **page_head(response.text)}
        if entry["title"]:
            yield Found([entry], where=entry["link"])


def may_follow(url: str, listed_by: str, source: Source) -> bool:
    """A link is followed when it is on the host that listed it, or on the source's site (or a subdomain)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    site = (source.site or "").lower().removeprefix("www.")
    on_site = bool(site) and (host == site or host.endswith("." + site))
    return parts.scheme in ("http", "https") and bool(host) and (
        host == (urlsplit(listed_by).hostname or "").lower() or on_site)


def parse_sitemap(body: bytes) -> tuple[str, list[dict[str, str]]]:
    """("sitemapindex" | "urlset" | "", rows): per <sitemap> or <url>, its loc and lastmod, and for news
    sitemaps its title and publication_date."""
    if body[:2] == b"\x1f\x8b":
        body = gunzip(body, max_size=MAX_SIZE)
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, remove_comments=True,
                             huge_tree=True)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return "", []
    if root is None:
        return "", []
    rows = [_row(el) for el in root if isinstance(el.tag, str)]
    return etree.QName(root).localname, rows


def _row(el: Any) -> dict[str, str]:
    row: dict[str, str] = {}
    for child in el:
        if isinstance(child.tag, str) and child.text and etree.QName(child).localname in ("loc", "lastmod"):
            row.setdefault(etree.QName(child).localname, child.text.strip())
    for child in el.iter():
        if isinstance(child.tag, str) and _NEWS in (etree.QName(child).namespace or "") and child.text:
            name = etree.QName(child).localname
            if name in ("title", "publication_date"):
                row.setdefault(name, child.text.strip())
    return row


def w3c_datetime(value: str | None) -> datetime | None:
    """A sitemap date (``2025-01-10``, ``2025-01-10T23:10:57+00:00``, ...) in UTC; a date is its midnight."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _before(lastmod: str | None, window: Window) -> bool:
    when = w3c_datetime(lastmod)  # a day's margin: a bare date is that day's midnight
    return when is not None and when < window.start - timedelta(days=1)


def page_head(text: str) -> dict[str, str]:
    """Title and description from a page's head: Open Graph first, then <title> and the description meta."""
    try:
        doc = html.document_fromstring(text[:PAGE_MAX_SIZE])
    except (etree.ParserError, ValueError):
        return {}

    def first(*xpaths: str) -> str:
        for xpath in xpaths:
            found = [v.strip() for v in doc.xpath(xpath) if isinstance(v, str) and v.strip()]
            if found:
                return found[0]
        return ""

    return {"title": first('//meta[@property="og:title"]/@content', "//title/text()"),
            "summary": first('//meta[@property="og:description"]/@content', '//meta[@name="description"]/@content')}
