"""A fake Wayback Machine over a real feed history: the CDX API and raw captures (``id_``)."""

from __future__ import annotations

import json

from archives import Answer, Archive
from archives.history import FeedHistory


class FakeWayback(Archive):
    """``/cdx/search/cdx?url=<feed>&from=&to=&output=json&filter=statuscode:200&collapse=digest`` lists the captures of
    ``feed_url`` (a header row first); ``/web/<timestamp>id_/<feed_url>`` serves a capture's bytes. ``delay``
    slows every capture down (to interrupt a recrawl midway)."""

    def __init__(self, history: FeedHistory, feed_url: str, delay: float = 0.0) -> None:
        self.history, self.feed_url, self.delay = history, feed_url, delay
        self.by_timestamp = {c.timestamp: c for c in history.captures}

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        if path == "/cdx/search/cdx":
            return self.cdx(query)
        if path.startswith("/web/"):
            timestamp, _, url = path.removeprefix("/web/").partition("id_/")
            capture = self.by_timestamp.get(timestamp)
            if capture is None or url != self.feed_url:
                return Answer(b"not archived", 404, "text/plain")
            return Answer(capture.path.read_bytes(), content_type="application/rss+xml; charset=UTF-8",
                          delay=self.delay)
        return Answer(b"not found", 404, "text/plain")

    def cdx(self, query: dict[str, str]) -> Answer:
        if query.get("output") != "json" or query.get("url") != self.feed_url:
            return Answer(b"[]", content_type="application/json")
        start, end = query.get("from", ""), query.get("to", "")
        rows, last_digest = [], None
        for c in self.history.captures:
            if c.timestamp[:len(start)] < start or (end and c.timestamp[:len(end)] > end):
                continue
            if query.get("collapse") == "digest" and c.digest == last_digest:
                continue
            last_digest = c.digest
            rows.append(["com,arstechnica)/feed", c.timestamp, self.feed_url, "application/rss+xml", "200",
                         c.digest.upper(), str(c.path.stat().st_size)])
        header = ["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"]
        return Answer(json.dumps([header, *rows] if rows else []).encode(), content_type="application/json")
