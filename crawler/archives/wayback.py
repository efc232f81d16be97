"""The Wayback Machine: the captures of a source's feeds, each parsed like a live feed.

The CDX API lists the captures of each feed URL from the range's first day to ``GRACE`` days past its end (an item
published late on the last day first shows up in a later capture); the spider keeps items by publication date.
A source's captures are read one at a time, newest first, so an item seen in several captures is stored as its
newest capture had it, however often the recrawl is interrupted and run again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from scrapy import Request
from scrapy.http import Response

from crawler.archives import Found, Planned, Provider, Window, utc_stamp
from crawler.feedparse import parse_feed
from crawler.sources import Source

logger = logging.getLogger(__name__)
GRACE = timedelta(days=7)
_CAPTURE_URL = re.compile(r"/web/(\d{14})[a-z_]*/")


class Wayback(Provider):
    name = "wayback"

    def applies(self, source: Source) -> bool:
        return bool(source.feeds)

    def discover(self, source: Source, window: Window) -> Iterable[Request | Planned]:
        yield Planned(len(source.feeds))
        yield self._list(source, window, list(source.feeds), [])

    def _list(self, source: Source, window: Window, feeds: list[str], captures: list[tuple[str, str]]) -> Request:
        query = urlencode({"url": feeds[0], "from": utc_stamp(window.start, "%Y%m%d"),
                           "to": utc_stamp(window.end - timedelta(seconds=1) + GRACE, "%Y%m%d"),
                           "output": "json", "filter": "statuscode:200", "collapse": "digest"})
        return self.request(f"{self.options.wayback_url.rstrip('/')}/cdx/search/cdx?{query}", self.listed,
                            source=source, unit=True, window=window, feeds=feeds[1:], captures=captures)

    def listed(self, response: Response | None, source: Source, window: Window, feeds: list[str],
               captures: list[tuple[str, str]]) -> Iterator[Request | Planned]:
        """One feed's captures are known; list the next feed's, or start reading captures, newest first."""
        if response is not None:
            captures = captures + parse_cdx(response.body)
        if feeds:
            yield self._list(source, window, feeds, captures)
            return
        newest_first = sorted(set(captures), reverse=True)
        if newest_first:
            yield Planned(len(newest_first))
            yield self._capture(source, newest_first)

    def _capture(self, source: Source, pending: list[tuple[str, str]]) -> Request:
        timestamp, original = pending[0]
        return self.request(f"{self.options.wayback_url.rstrip('/')}/web/{timestamp}id_/{original}", self.captured,
                            source=source, unit=True, pending=pending[1:], original=original)

    async def captured(self, response: Response | None, source: Source, pending: list[tuple[str, str]],
                       original: str) -> AsyncIterator[Request | Found]:
        """One capture read: its entries, then the next (older) capture."""
        if response is not None:
            headers = {"content-location": original}
            if content_type := response.headers.get("Content-Type"):
                headers["content-type"] = content_type.decode("latin-1")
            parsed = await asyncio.to_thread(parse_feed, response.body, headers)
            if parsed.error:
                logger.warning("%s: %s", response.url, parsed.error)
            else:
                yield Found(parsed.entries, where=response.url, seen=capture_time(response.url))
        if pending:
            yield self._capture(source, pending)


def parse_cdx(body: bytes) -> list[tuple[str, str]]:
    """(timestamp, original URL) of each capture in a CDX answer with ``output=json`` (a header row, then rows)."""
    try:
        rows = json.loads(body or b"[]")
    except ValueError:
        logger.warning("CDX: not JSON: %r", body[:200])
        return []
    if not isinstance(rows, list) or len(rows) < 2 or not isinstance(rows[0], list):
        return []
    header = rows[0]
    if "timestamp" not in header or "original" not in header:
        return []
    t, o = header.index("timestamp"), header.index("original")
    return [(str(r[t]), str(r[o])) for r in rows[1:] if isinstance(r, list) and len(r) > max(t, o)]


def capture_time(url: str) -> datetime | None:
    """The time of a capture from its ``/web/<14 digits>id_/`` URL."""
    m = _CAPTURE_URL.search(url)
    return datetime.strptime(m.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC) if m else None
