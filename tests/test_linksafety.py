"""The link-safety check (crawler/linksafety.py) with a stub resolver: which links from which feeds may be fetched."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest
from scrapy import Request

from crawler.linksafety import LinkSafetyMiddleware, UnsafeLink, is_public, link_meta

DNS = {
    "news.example.com": ["93.184.216.34"],
    "cdn.example.com": ["93.184.216.35", "2606:2800:220:1::1"],
    "intranet.example.com": ["10.1.2.3"],
    "mixed.example.com": ["93.184.216.36", "127.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "feeds.lan": ["192.168.1.10"],
    "wiki.lan": ["192.168.7.20"],
    "localhost": ["127.0.0.1", "::1"],
}
PUBLIC_FEED = ["http://news.example.com/feed.xml"]
LOOPBACK_FEED = ["http://127.0.0.1:8080/feed.xml"]
LAN_FEED = ["http://feeds.lan/rss"]


class Stats:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str, n: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + n


async def stub_resolver(host: str, port: int) -> list[str]:
    if host in DNS:
        return DNS[host]
    try:
        return [str(__import__("ipaddress").ip_address(host))]
    except ValueError:
        raise OSError(f"unknown host {host}") from None


@pytest.fixture
def middleware() -> LinkSafetyMiddleware:
    return LinkSafetyMiddleware(SimpleNamespace(stats=Stats()), stub_resolver)  # type: ignore[arg-type]


def check(mw: LinkSafetyMiddleware, url: str, feeds: list[str] | None) -> str | None:
    """None when the request may go, else the refusal."""
    request = Request(url, meta=link_meta(feeds) if feeds is not None else {})
    try:
        asyncio.run(mw.process_request(request))
    except UnsafeLink as e:
        return str(e)
    return None


@pytest.mark.parametrize(("url", "feeds", "allowed"), [
    ("https://news.example.com/2026/story", PUBLIC_FEED, True),
    ("https://cdn.example.com/a", PUBLIC_FEED, True),  # IPv4 and IPv6, both public
    ("http://intranet.example.com/hr", PUBLIC_FEED, False),  # a public-looking name on a private address
    ("http://mixed.example.com/", PUBLIC_FEED, False),  # every address is checked, not just the first
    ("http://metadata.example.com/latest/meta-data/", PUBLIC_FEED, False),  # link-local: cloud metadata
    ("http://169.254.169.254/latest/", LOOPBACK_FEED, False),  # a loopback feed allows loopback only
    ("http://mapped.example.com/", PUBLIC_FEED, False),  # IPv4-mapped IPv6 loopback
    ("http://127.0.0.1:9000/admin", PUBLIC_FEED, False),
    ("http://localhost/", PUBLIC_FEED, False),
    ("http://127.0.0.1:8080/article.html", LOOPBACK_FEED, True),  # the feed's own range
    ("http://localhost:8080/article.html", LOOPBACK_FEED, True),  # 127.0.0.1 and ::1: both loopback
    ("http://10.0.0.1/", LOOPBACK_FEED, False),  # another private range than the feed's
    ("http://wiki.lan/page", LAN_FEED, True),  # 192.168.0.0/16, as the feed
    ("http://10.0.0.1/", LAN_FEED, False),
    ("http://unknown.invalid/", PUBLIC_FEED, False),  # does not resolve
    ("file:///etc/passwd", PUBLIC_FEED, False),
    ("ftp://news.example.com/a.txt", PUBLIC_FEED, False),
    ("data:text/html,hello", PUBLIC_FEED, False),
])
def test_links_from_feeds(middleware: LinkSafetyMiddleware, url: str, feeds: list[str], allowed: bool) -> None:
    assert (check(middleware, url, feeds) is None) is allowed


def test_a_refusal_is_logged_and_counted(middleware: LinkSafetyMiddleware, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="crawler.linksafety"):
        reason = check(middleware, "http://intranet.example.com/hr", PUBLIC_FEED)
    assert reason is not None and "10.1.2.3" in reason
    assert "link refused: http://intranet.example.com/hr" in caplog.text
    assert middleware.stats.values == {"talentwatch/linksafety/refused": 1}


def test_every_redirect_hop_is_checked(middleware: LinkSafetyMiddleware) -> None:
    """A redirect is a new request carrying the old one's meta (RedirectMiddleware): it is checked again."""
    first = Request("https://news.example.com/short", meta=link_meta(PUBLIC_FEED))
    asyncio.run(middleware.process_request(first))
    hop = first.replace(url="http://127.0.0.1:2375/containers/json")
    with pytest.raises(UnsafeLink):
        asyncio.run(middleware.process_request(hop))


def test_requests_on_a_links_behalf_get_its_allowance(middleware: LinkSafetyMiddleware) -> None:
    """robots.txt (no link meta) is fetched from a private host only after a link from a feed there reached it."""
    assert check(middleware, "http://wiki.lan/robots.txt", None) is not None
    assert check(middleware, "http://wiki.lan/page", LAN_FEED) is None
    assert check(middleware, "http://wiki.lan/robots.txt", None) is None
    assert check(middleware, "https://news.example.com/robots.txt", None) is None  # public: always


@pytest.mark.parametrize(("address", "public"), [
    ("93.184.216.34", True), ("2606:2800:220:1::1", True), ("10.0.0.1", False), ("172.16.5.4", False),
    ("192.168.0.1", False), ("100.64.0.1", False), ("127.0.0.1", False), ("0.0.0.0", False),
    ("169.254.169.254", False), ("224.0.0.1", False), ("255.255.255.255", False), ("::1", False),
    ("fe80::1", False), ("fd00::1", False), ("::ffff:10.0.0.1", False), ("240.0.0.1", False),
])
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public
