"""OPML in and out: the subscription lists feed readers import and export (`sources import`, `sources export`).

Reading: OPML 1.0 and 2.0 (and the 1.1 of some readers), folders nested to any depth, the feed URL in `xmlUrl` (any
case) or, as newsboat also reads it, in `url`. The file is parsed with defusedxml's SAX reader: a document that
declares entities (XXE, "billion laughs") or refers to an external DTD is refused before anything is expanded or
fetched, and a file over 10 MB is refused unread. SAX also gives every outline its line, so that a message can say
where the problem is.

Writing: OPML 2.0, one outline per feed (`type="rss"`, text, title, xmlUrl, htmlUrl where the source has a `site`,
language), nested in an outline per source when a source has several feeds.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler
from xml.sax.xmlreader import InputSource

import defusedxml.sax
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from crawler.sources import Source, derive_id, feed_key, language_code, site_of, source_table
from talentwatch.schema import ConfigError

MAX_BYTES = 10 * 1024 * 1024
FEED_TYPES = {"rss", "atom", "feed"}  # an outline of one of these types must have a feed URL
NOT_FEEDS = {"link", "include"}  # OPML 2.0 types whose `url` is a web page or another outline, not a feed


class OpmlError(ConfigError):
    """A file that cannot be imported, named with the line of the problem (exit status 2)."""

    def __init__(self, file: Path | str, line: int | None, message: str) -> None:
        super().__init__(file, f"line {line}" if line else "", message)


@dataclass(frozen=True)
class OpmlFeed:
    """One feed outline of an OPML file."""

    url: str
    title: str | None
    html_url: str | None
    language: str | None
    line: int


def read_opml(path: Path) -> list[OpmlFeed]:
    """Every feed outline of an OPML file, in document order (duplicates included)."""
    data = _read_capped(path)
    handler = _Outlines(path)
    source = InputSource(str(path))
    source.setByteStream(io.BytesIO(data))
    try:
        defusedxml.sax.parse(source, handler, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except EntitiesForbidden as e:
        raise OpmlError(path, handler.line(), f"refused: the file declares the XML entity '{e.name}' (OPML needs "
                        "none; entities are how XXE and 'billion laughs' attacks work)") from None
    except (ExternalReferenceForbidden, DTDForbidden) as e:
        raise OpmlError(path, handler.line(), f"refused: the file refers to an external document "
                        f"({getattr(e, 'sysid', None) or 'a DTD'}); OPML needs none") from None
    except SAXParseException as e:
        raise OpmlError(path, e.getLineNumber(), f"not an OPML file: not well-formed XML ({e.getMessage()})") from None
    if not handler.seen_body:
        raise OpmlError(path, None, "not an OPML file: <opml> has no <body>")
    return handler.feeds


@dataclass
class ImportPlan:
    """What `sources import` adds: new [[source]] tables, and the feeds it leaves out."""

    tables: list[dict[str, Any]] = field(default_factory=list)
    already: int = 0  # feeds already in sources.toml
    repeated: int = 0  # feeds listed more than once in the file (in two folders, say): added once


def plan_import(feeds: Sequence[OpmlFeed], configured: Sequence[Source]) -> ImportPlan:
    """One source per new feed, its id derived from the outline's title and unique among the configured ones."""
    plan = ImportPlan()
    known = {feed_key(url) for s in configured for url in s.feeds}
    seen: set[str] = set()
    taken = {s.id for s in configured}
    for f in feeds:
        key = feed_key(f.url)
        if key in seen:
            plan.repeated += 1
        elif key in known:
            plan.already += 1
        else:
            sid = derive_id(f.title, f.url, taken)
            plan.tables.append(source_table(sid, f.title or site_of(f.url) or sid, [f.url], site_of(f.html_url),
                                            f.language))
        seen.add(key)
    return plan


def _read_capped(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise OpmlError(path, None, f"refused: larger than {MAX_BYTES // 2**20} MB ({path.stat().st_size:,} "
                            "bytes); a subscription list is far smaller")
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)  # a pipe or a growing file has no honest size
    except OSError as e:
        raise OpmlError(path, None, f"cannot read: {e.strerror}") from None
    if len(data) > MAX_BYTES:
        raise OpmlError(path, None, f"refused: larger than {MAX_BYTES // 2**20} MB")
    return data


class _Outlines(ContentHandler):
    """Collects the feed outlines under <body>, each with its line, checking them as they come (no tree is built,
    so nesting depth costs nothing)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path, self.feeds, self.stack, self.seen_body = path, [], [], False
        self.locator = None

    def setDocumentLocator(self, locator) -> None:  # noqa: N802 (SAX's naming)
        self.locator = locator

    def line(self) -> int | None:
        return self.locator.getLineNumber() if self.locator else None

    def startElement(self, name: str, attrs) -> None:  # noqa: N802
        if not self.stack and name != "opml":
            raise OpmlError(self.path, self.line(), f"not an OPML file: the document is <{name}>, not <opml>")
        if self.stack == ["opml"] and name == "body":
            self.seen_body = True
        if name == "outline" and self.stack[:2] == ["opml", "body"]:
            self._outline({k.lower(): v.strip() for k, v in attrs.items()})
        self.stack.append(name)

    def endElement(self, name: str) -> None:  # noqa: N802
        self.stack.pop()

    def _outline(self, a: dict[str, str]) -> None:
        kind = a.get("type", "").lower()
        url = a.get("xmlurl") or (a.get("url") if kind not in NOT_FEEDS else None)
        label = a.get("title") or a.get("text")
        if not url:
            if kind in FEED_TYPES:
                named = f" '{label}'" if label else ""
                raise OpmlError(self.path, self.line(), f'the outline{named} has type="{kind}" but no xmlUrl')
            return  # a folder, or an outline that is not a feed
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise OpmlError(self.path, self.line(), f"xmlUrl: expected an http(s) URL, got {url!r}")
        self.feeds.append(OpmlFeed(url, label or None, a.get("htmlurl") or None, language_code(a.get("language")),
                                   self.line()))


def write_opml(sources: Sequence[Source], title: str = "talentwatch sources") -> bytes:
    """OPML 2.0 of every feed of ``sources``."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = formatdate(usegmt=True)
    body = ET.SubElement(root, "body")
    for s in sources:
        parent = body if len(s.feeds) == 1 else ET.SubElement(body, "outline", text=s.name, title=s.name)
        for n, url in enumerate(s.feeds, 1):
            name = s.name if len(s.feeds) == 1 else f"{s.name} (feed {n})"
            attrs = {"type": "rss", "text": name, "title": name, "xmlUrl": url}
            if s.site:
                attrs["htmlUrl"] = f"https://{s.site}/"
            if s.language:
                attrs["language"] = s.language
            ET.SubElement(parent, "outline", attrs)
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"
