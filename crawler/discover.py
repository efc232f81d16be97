"""Find the feed of a site from a URL (`sources add`): the URL itself when it is a feed, else the page's
``<link rel="alternate" type="application/rss+xml|application/atom+xml">`` feeds, else the usual paths (/feed,
/rss, ...). Each candidate is fetched once and parsed with the crawler's own parser (``crawler.feedparse``); the
first with entries wins.

Every request, redirects included, passes the crawler's link-safety check (``crawler.linksafety``): a page may
lead to public addresses only, or to the non-public range of the URL given on the command line (a page on
127.0.0.1 may name a feed on 127.0.0.1, not one on 10.0.0.1 or 169.254.169.254). As in the crawler, the host is
resolved once for the check and again to connect.
"""

from __future__ import annotations

import asyncio
import io
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import feedparser
import lxml.html
from lxml.etree import ParserError

from crawler.feedparse import parse_feed
from crawler.linksafety import Network, address_refusal, non_public_ranges, resolve
from crawler.sources import language_code

MAX_BYTES = 5 * 1024 * 1024
FEED_TYPES = {"application/rss+xml", "application/atom+xml"}
USUAL_PATHS = ("/feed", "/rss", "/feed.xml", "/atom.xml", "/rss.xml", "/index.xml")


class Refused(Exception):
    """A URL the link-safety check does not allow."""


class FetchFailed(Exception):
    """A URL that could not be fetched (HTTP error, timeout, too large, no answer)."""


class NoFeed(Exception):
    """No candidate was a feed with entries; the message lists each one tried and why it was not taken."""


@dataclass
class Found:
    """The feed chosen, with what its document says about itself."""

    url: str
    how: str  # "the URL is a feed", "a <link rel=alternate> of the page", "a usual path"
    entries: int
    title: str | None = None
    link: str | None = None
    language: str | None = None
    passed: list[tuple[str, str]] = field(default_factory=list)  # candidates tried before it, and why not taken


def discover(url: str, timeout: float, user_agent: str) -> Found:
    """The feed of ``url``. Raises Refused or FetchFailed for the URL itself, NoFeed when nothing fits."""
    fetcher = _Fetcher(_ranges_of(url), timeout, user_agent)
    final_url, headers, body = fetcher.get(url)
    passed: list[tuple[str, str]] = []
    entries, itself = _entries(body, headers, final_url)
    if entries:
        return _found(url, "the URL is a feed", entries, body, headers, final_url, passed)
    links = alternate_links(body, final_url)
    tried = {url, final_url}
    for how, candidates in (("a <link rel=alternate> of the page", links),
                            ("a usual path", [urljoin(final_url, p) for p in USUAL_PATHS])):
        for candidate in candidates:
            if candidate in tried:
                continue
            tried.add(candidate)
            try:
                got_url, got_headers, got_body = fetcher.get(candidate)
            except (Refused, FetchFailed) as e:
                passed.append((candidate, f"{'refused: ' if isinstance(e, Refused) else ''}{e}"))
                continue
            entries, reason = _entries(got_body, got_headers, got_url)
            if entries:
                return _found(candidate, how, entries, got_body, got_headers, got_url, passed)
            passed.append((candidate, reason))
    raise NoFeed(f"no feed found for {url} (itself {itself}); tried:\n"
                 + "\n".join(f"  {u}: {r}" for u, r in passed))


def alternate_links(body: bytes, base: str) -> list[str]:
    """The RSS and Atom ``<link rel="alternate">`` hrefs of an HTML page, resolved against its base, in order."""
    try:
        doc = lxml.html.document_fromstring(body)
    except (ParserError, ValueError):
        return []
    base = urljoin(base, (doc.xpath("string(//base/@href)") or "").strip())
    found: list[str] = []
    for link in doc.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" in rel and kind in FEED_TYPES and href:
            absolute = urljoin(base, href)
            if absolute not in found:
                found.append(absolute)
    return found


def _entries(body: bytes, headers: dict[str, str], url: str) -> tuple[int, str]:
    """The number of entries the crawler's parser reads in the document, and why it is not taken when none."""
    parsed = parse_feed(body, {"content-location": url, **headers})
    return len(parsed.entries), parsed.error or "a feed without entries"


def _found(url: str, how: str, entries: int, body: bytes, headers: dict[str, str], final_url: str,
           passed: list[tuple[str, str]]) -> Found:
    """The feed's title, link and language are not among the crawler parser's fields: feedparser reads them."""
    meta = feedparser.parse(io.BytesIO(body), response_headers={"content-location": final_url, **headers}).feed
    return Found(url, how, entries, meta.get("title") or None, meta.get("link") or None,
                 language_code(meta.get("language")), passed)


def _ranges_of(url: str) -> set[Network]:
    """The non-public ranges the URL given on the command line is on: its own links may stay there."""
    host, port = _host_port(url)
    try:
        return non_public_ranges(asyncio.run(resolve(host, port)))
    except (OSError, UnicodeError, ValueError) as e:
        raise FetchFailed(f"{host} does not resolve ({e})") from None


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused(f"only http(s) URLs are fetched, not {parts.scheme or 'a relative URL'}")
    if not parts.hostname:
        raise Refused("no host")
    try:
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise Refused(str(e)) from None


class _Fetcher:
    """GET with a timeout and a size cap; every URL, redirects included, checked before it is requested."""

    def __init__(self, allowed: set[Network], timeout: float, user_agent: str) -> None:
        self.allowed, self.timeout, self.user_agent = allowed, timeout, user_agent
        self.opener = urllib.request.build_opener(_CheckedRedirects(self.check))

    def check(self, url: str) -> None:
        host, port = _host_port(url)
        try:
            addresses = asyncio.run(resolve(host, port))
        except (OSError, UnicodeError, ValueError) as e:
            raise Refused(f"{host} does not resolve ({e})") from None
        reason = address_refusal(host, addresses, self.allowed) if addresses else f"{host} does not resolve"
        if reason:
            raise Refused(reason)

    def get(self, url: str) -> tuple[str, dict[str, str], bytes]:
        """(final URL, headers with lower-case names, body)."""
        self.check(url)
        request = urllib.request.Request(url, headers={
            "User-Agent": self.user_agent,
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/html;q=0.8, */*;q=0.5"})
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                body = self._read(response)
                return response.geturl(), {k.lower(): v for k, v in response.headers.items()}, body
        except urllib.error.HTTPError as e:
            raise FetchFailed(f"HTTP {e.code} {e.reason}") from None
        except urllib.error.URLError as e:
            raise FetchFailed(f"cannot fetch: {e.reason}") from None
        except (TimeoutError, OSError) as e:
            raise FetchFailed(f"cannot fetch: {e}") from None

    def _read(self, response: object) -> bytes:
        deadline, chunks, size = time.monotonic() + self.timeout, [], 0
        while chunk := response.read1(65536):  # type: ignore[attr-defined]
            size += len(chunk)
            if size > MAX_BYTES:
                raise FetchFailed(f"larger than {MAX_BYTES // 2**20} MB")
            if time.monotonic() > deadline:
                raise FetchFailed(f"timed out after {self.timeout:g} s")
            chunks.append(chunk)
        return b"".join(chunks)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL the link-safety check allows."""

    def __init__(self, check: Callable[[str], None]) -> None:
        self.check = check

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        self.check(urljoin(req.full_url, newurl))
        return super().redirect_request(req, fp, code, msg, headers, newurl)
