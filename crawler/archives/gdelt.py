"""GDELT DOC 2.0: the articles GDELT saw on the source's domain, per day of the range, one request per 5 seconds.

``mode=ArtList&format=json`` answers at most ``maxrecords`` (250) articles; a day that fills them is asked again
in halves, down to an hour. GDELT gives a title, a URL and the time it first saw the article (``seendate``), which
stands in for the publication date. Its DOC API searches about the last three months only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from scrapy import Request
from scrapy.http import Response

from crawler.archives import DailySearch, Found, Planned, Window, search_query, utc_stamp
from crawler.sources import Source

logger = logging.getLogger(__name__)
SLOT = "gdelt"  # its own download slot: DOWNLOAD_SLOTS gives it the 5 s delay GDELT asks for
DELAY = 5.0
MAX_RECORDS = 250
SMALLEST = timedelta(hours=1)


class Gdelt(DailySearch):
    name = "gdelt"

    def search(self, source: Source, window: Window) -> Request:
        terms = search_query([t for t in self.options.terms if len(t) >= 3])  # GDELT refuses shorter keywords
        domain = (source.site or "").removeprefix("www.")
        query = urlencode({"query": f"{terms} domainis:{domain}".strip(), "mode": "ArtList", "format": "json",
                           "maxrecords": MAX_RECORDS, "sort": "DateAsc", "startdatetime": utc_stamp(window.start),
                           "enddatetime": utc_stamp(window.end - timedelta(seconds=1))})
        return self.request(f"{self.options.gdelt_url.rstrip('/')}/api/v2/doc/doc?{query}", self.listed,
                            source=source, unit=True, window=window,
                            meta={"download_slot": SLOT, "autothrottle_dont_adjust_delay": True})

    def listed(self, response: Response | None, source: Source, window: Window) -> Iterator[Request | Found | Planned]:
        """One window's articles; a full answer asks for its two halves too."""
        if response is None:
            return
        articles = parse_artlist(response.body, response.url)
        if len(articles) >= MAX_RECORDS and window.end - window.start > SMALLEST:
            middle = window.start + (window.end - window.start) / 2
            yield Planned(2)
            yield self.search(source, Window(window.start, middle))
            yield self.search(source, Window(middle, window.end))
        entries = [_entry(a) for a in articles if isinstance(a, dict) and a.get("url")]
        if entries:
            yield Found(entries, where=response.url)


def parse_artlist(body: bytes, where: str = "") -> list[Any]:
    """The ``articles`` of an ArtList JSON answer; GDELT answers a bad query with a line of plain text."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        logger.warning("%s: GDELT says: %s", where, body[:200].decode("utf-8", "replace").strip())
        return []
    articles = data.get("articles", []) if isinstance(data, dict) else []
    return articles if isinstance(articles, list) else []


def _entry(article: dict[str, Any]) -> dict[str, Any]:
    return {"title": article.get("title") or "", "link": article["url"], "guid": None, "summary": "",
            "content": "", "published": seen_date(article.get("seendate"))}


def seen_date(value: Any) -> datetime | None:
    """GDELT's ``20250110T231500Z``."""
    try:
        return datetime.strptime(str(value), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
