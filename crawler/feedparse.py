"""bytes + headers -> entries. The one place feeds are parsed, so a faster parser can sit in front later."""

from __future__ import annotations

import calendar
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser


@dataclass
class ParsedFeed:
    entries: list[dict[str, Any]] = field(default_factory=list)
    ttl_seconds: float | None = None
    problem: str | None = None  # feedparser's bozo exception, when the document is not quite well-formed
    error: str | None = None  # the document is not a feed at all


def parse_feed(body: bytes, headers: dict[str, str]) -> ParsedFeed:
    """Parse a feed document. Never raises on bad input: problems are returned as data.

    ``headers`` are the HTTP response headers with lower-case names (content-type selects the encoding;
    content-location is the base for relative links). Entries are plain dicts of picklable values.
    """
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=False,
                              resolve_relative_uris=False)
    problem = None
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        problem = f"{type(exc).__name__}: {exc}"
        if not parsed.entries and not parsed.get("version"):
            return ParsedFeed(error=f"not a feed: {problem}")
    return ParsedFeed([_entry(e) for e in parsed.entries], _ttl(parsed.feed.get("ttl")), problem)


def _entry(e: Any) -> dict[str, Any]:
    content = e.get("content") or []
    return {
        "title": e.get("title", ""),
        "link": e.get("link"),
        "guid": e.get("id"),
        "summary": e.get("summary", ""),
        "content": content[0].get("value", "") if content else "",
        "published": _utc(e.get("published_parsed") or e.get("updated_parsed")),
    }


def _utc(t: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(calendar.timegm(t), UTC) if t else None
    except (OverflowError, ValueError, TypeError):
        return None


def _ttl(value: Any) -> float | None:
    try:
        return float(value) * 60 if value else None  # RSS <ttl> is in minutes
    except ValueError:
        return None
