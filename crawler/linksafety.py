"""Link-following safety: a downloader middleware that lets a request for a link found in a feed through only when
its URL is http(s) and every address its host resolves to is public, or lies in a non-public range that one of the
link's own feeds is configured on (a feed on 127.0.0.1 may link to 127.0.0.1, not to 10.0.0.1).

Every hop is checked: a redirect is a new request and comes back through ``process_request``. A refused request
raises ``UnsafeLink`` (an ``IgnoreRequest``): the request's errback sees it, a warning is logged, and
``talentwatch/linksafety/refused`` is counted.

The check resolves the host itself (``TALENTWATCH_RESOLVER``, a dotted path to an ``async (host, port) ->
[addresses]`` function; tests stub it); Scrapy then resolves the host again to connect, so a DNS server that
answers differently within seconds (DNS rebinding) is not stopped by this check alone.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.misc import load_object

logger = logging.getLogger(__name__)
Resolver = Callable[[str, int], Awaitable[list[str]]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LINK_FROM = "talentwatch_link_from"  # request meta: the feed URLs the link was found in
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")  # ::1 counts as this range too
NAMED_RANGES = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10",
)]


class UnsafeLink(IgnoreRequest):
    """A request refused by the link-safety check."""


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6), without blocking the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (an IPv4-mapped IPv6 address is judged as its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
                                 or ip.is_unspecified)


def range_of(address: str) -> Network:
    """The non-public range an address belongs to (loopback, a private block, ...), else the address alone."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return LOOPBACK
    for network in NAMED_RANGES:
        if ip.version == network.version and ip in network:
            return network
    return ipaddress.ip_network(ip)


class LinkSafetyMiddleware:
    """Refuses links that are not http(s) or that reach a non-public address the link's feeds do not allow."""

    def __init__(self, crawler: Crawler, resolver: Resolver) -> None:
        self.stats, self.resolver = crawler.stats, resolver
        self.feed_ranges: dict[str, set[Network]] = {}  # feed host -> its non-public ranges
        self.granted: dict[str, set[Network]] = {}  # link host -> ranges allowed by the links that reached it

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LinkSafetyMiddleware:
        if not crawler.settings.getbool("TALENTWATCH_LINK_SAFETY", True):
            raise NotConfigured("TALENTWATCH_LINK_SAFETY is off")
        return cls(crawler, load_object(crawler.settings.get("TALENTWATCH_RESOLVER", "crawler.linksafety.resolve")))

    async def process_request(self, request: Request) -> None:
        reason = await self.refusal(request)
        if reason:
            logger.warning("link refused: %s: %s", request.url, reason)
            self.stats.inc_value("talentwatch/linksafety/refused")
            raise UnsafeLink(reason)

    async def refusal(self, request: Request) -> str | None:
        """Why the request may not be made, or None when it may."""
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            return f"only http(s) links are followed, not {parts.scheme or 'a relative link'}"
        host = parts.hostname
        if not host:
            return "no host"
        try:
            addresses = await self.resolver(host, parts.port or (443 if parts.scheme == "https" else 80))
        except (OSError, UnicodeError, ValueError) as e:
            return f"{host} does not resolve ({e})"
        if not addresses:
            return f"{host} does not resolve"
        allowed = await self._allowed(request, host)
        if reason := address_refusal(host, addresses, allowed):
            return reason
        if LINK_FROM in request.meta:
            self.granted.setdefault(host, set()).update(allowed)
        return None

    async def _allowed(self, request: Request, host: str) -> set[Network]:
        """The non-public ranges of the link's feeds; for a request made on a link's behalf (robots.txt), those
        granted to the links that reached its host."""
        if LINK_FROM not in request.meta:
            return self.granted.get(host, set())
        allowed: set[Network] = set()
        for feed_url in request.meta[LINK_FROM]:
            allowed |= await self._ranges_of_feed(feed_url)
        return allowed

    async def _ranges_of_feed(self, feed_url: str) -> set[Network]:
        parts = urlsplit(feed_url)
        host = parts.hostname or ""
        if host not in self.feed_ranges:
            try:
                addresses = await self.resolver(host, parts.port or 80)
            except (OSError, UnicodeError, ValueError):
                addresses = []
            self.feed_ranges[host] = non_public_ranges(addresses)
        return self.feed_ranges[host]


def non_public_ranges(addresses: Iterable[str]) -> set[Network]:
    """The non-public ranges of a feed's (or a URL's) addresses: what links from it may reach besides the public."""
    return {range_of(a) for a in addresses if not is_public(a)}


def address_refusal(host: str, addresses: Iterable[str], allowed: Iterable[Network]) -> str | None:
    """Why ``host`` may not be reached at these addresses (one that is neither public nor in an allowed range),
    or None. Shared by this middleware and `sources add` (crawler/discover.py)."""
    allowed = list(allowed)
    for address in addresses:
        if not is_public(address) and not any(_within(address, net) for net in allowed):
            return f"{host} resolves to the non-public address {address}"
    return None


def _within(address: str, network: Network) -> bool:
    return range_of(address) == network or ipaddress.ip_address(address.split("%", 1)[0]) in network


def link_meta(feed_urls: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The request meta that marks a link found in these feeds."""
    return {LINK_FROM: tuple(feed_urls)}
