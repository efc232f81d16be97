"""A fake Google News: RSS search with ``site:``, ``after:`` and ``before:``, and article links in its three kinds:
an id carrying the publisher URL (``CBMi...``), an opaque id that redirects, and one whose page names the URL."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import date
from email.utils import format_datetime
from html import escape
from urllib.parse import urlsplit

from archives import Answer, Archive
from archives.history import HistoryItem

PUBLISHER = "Ars Technica"
CAP = 100


def encoded_id(url: str) -> str:
    """An old-style article id: protobuf field 4 holds the URL (then an empty field 26, as Google's ids have)."""
    data = url.encode()
    return base64.urlsafe_b64encode(b"\x08\x13\x22" + _varint(len(data)) + data + b"\xd2\x01\x00").decode().rstrip("=")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


class FakeGoogleNews(Archive):
    def __init__(self, items: list[HistoryItem], fail_first: int = 0) -> None:
        self.items = sorted(items, key=lambda i: i.url)
        self.fail_first = fail_first  # answer the first N searches 429 (Retry-After: 1)
        self.ids: dict[str, HistoryItem] = {}
        for n, item in enumerate(self.items):
            kind = n % 3
            opaque = "AU_yqL" + hashlib.sha1(item.url.encode()).hexdigest()
            self.ids[encoded_id(item.url) if kind == 0 else opaque + ("r" if kind == 1 else "p")] = item

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        if path == "/rss/search":
            if self.fail_first > 0:
                self.fail_first -= 1
                return Answer(b"slow down", 429, "text/plain", {"Retry-After": "1"})
            return self.search(query.get("q", ""))
        if path.startswith("/rss/articles/"):
            item = self.ids.get(path.rsplit("/", 1)[1])
            if item is None:
                return Answer(b"no such article", 404, "text/plain")
            if path.endswith("r"):
                return Answer(b"", 302, "text/html", {"Location": item.url})
            page = f'<html><body><c-wiz data-n-au="{escape(item.url)}" jsdata="x"></c-wiz></body></html>'
            return Answer(page.encode(), content_type="text/html; charset=utf-8")
        return Answer(b"not found", 404, "text/plain")

    def search(self, q: str) -> Answer:
        site = re.search(r"site:(\S+)", q)
        after, before = re.search(r"after:(\S+)", q), re.search(r"before:(\S+)", q)
        found = [(i, item) for i, item in self.ids.items() if item.published
                 and (not site or (urlsplit(item.url).hostname or "").endswith(site.group(1)))
                 and (not after or item.published.date() >= date.fromisoformat(after.group(1)))
                 and (not before or item.published.date() < date.fromisoformat(before.group(1)))]
        return Answer(self.rss(found[:CAP]), content_type="application/rss+xml; charset=utf-8")

    def rss(self, found: list[tuple[str, HistoryItem]]) -> bytes:
        items = "".join(
            f"<item><title>{escape(item.title)} - {PUBLISHER}</title>"
            f"<link>{self.base}/rss/articles/{aid}?oc=5</link>"
            f'<guid isPermaLink="false">{aid}</guid>'
            f"<pubDate>{format_datetime(item.published, usegmt=True)}</pubDate>"
            f"<description>{escape(self._description(aid, item))}</description>"
            f'<source url="https://arstechnica.com">{PUBLISHER}</source></item>'
            for aid, item in found if item.published)
        return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>search - Google News'
                f"</title><link>{self.base}</link>{items}</channel></rss>").encode()

    def _description(self, aid: str, item: HistoryItem) -> str:
        return (f'<a href="{self.base}/rss/articles/{aid}?oc=5" target="_blank">{escape(item.title)}</a>'
                f'&nbsp;&nbsp;<font color="#6f6f6f">{PUBLISHER}</font>')
