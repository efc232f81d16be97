"""bytes + headers -> entries. The one place feeds are parsed: the fast path (``crawler.fastparse``) reads the
common well-formed documents, feedparser everything it declines."""

from __future__ import annotations

import io
from typing import Any

import feedparser

from crawler.fastparse import ParsedFeed, entry_dict, parse_fast, ttl_seconds

__all__ = ["ParsedFeed", "parse_feed", "parse_with_feedparser"]


def parse_feed(body: bytes, headers: dict[str, str]) -> ParsedFeed:
    """Parse a feed document. Never raises on bad input: problems are returned as data.

    ``headers`` are the HTTP response headers with lower-case names (content-type selects the encoding;
    content-location is the base for relative links). Entries are plain dicts of picklable values.
    """
    return parse_fast(body, headers) or parse_with_feedparser(body, headers)


def parse_with_feedparser(body: bytes, headers: dict[str, str]) -> ParsedFeed:
    """feedparser's reading of the document: the reference the fast path is held to, and the fallback."""
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=False,
                                  resolve_relative_uris=False)
    except Exception as e:  # feedparser's own bugs, e.g. UnicodeEncodeError on "&#xD800;" in its loose parser
        return ParsedFeed(error=f"not a feed: feedparser failed: {type(e).__name__}: {e}")
    problem = None
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        problem = f"{type(exc).__name__}: {exc}"
        if not parsed.entries and not parsed.get("version"):
            return ParsedFeed(error=f"not a feed: {problem}")
    return ParsedFeed([_entry(e) for e in parsed.entries], ttl_seconds(parsed.feed.get("ttl")), problem)


def _entry(e: Any) -> dict[str, Any]:
    content = e.get("content") or []
    return entry_dict(e.get("title", ""), e.get("link"), e.get("id"), e.get("summary", ""),
                      content[0].get("value", "") if content else "",
                      e.get("published_parsed") or e.get("updated_parsed"))
