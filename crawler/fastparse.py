"""The fast parse path: well-formed RSS 2.0, RSS 1.0 (RDF) and Atom 1.0 documents read with lxml.

It gives what feedparser (``sanitize_html=False, resolve_relative_uris=False``) gives for the entry fields
talentwatch keeps (title, link, id, summary, content, dates) and the feed's ``ttl``, by following feedparser's own
rules for them: which element wins when several are present, the GUID that doubles as the link, a second
description that becomes content, whitespace stripping, the Windows-1252 and double-UTF-8 repairs. It reuses
feedparser's encoding detection, URL joining and date parsing, so those agree by construction.

Whatever it cannot read exactly that way it declines (``parse_fast`` returns None) and feedparser parses the
document: XML errors (but for two common slips, see ``_repaired``), DTDs with entities, ``xml:base`` below the root
element, markup inside text elements, base64 or XHTML content, entry fields other than titles and descriptions
nested below an entry's children, unusual document roots. tests/test_parse_differential.py holds the two paths to
each other over the shared corpus and over generated entries.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.encodings import convert_to_utf8
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.sanitizer import replace_doctype
from feedparser.urls import _urljoin, make_safe_absolute_uri
from lxml import etree

_NAMESPACES = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
_USERLAND = "http://backend.userland.com/rss"
_RDF_ABOUT = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_FEED_ROOTS = {"rss", "rdf_rdf", "feed"}
_ATOM10 = "{http://www.w3.org/2005/Atom}feed"
_RSS1_NAMESPACES = ("http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/")
_BASE = re.compile(rb"base\s*=")
_C1 = re.compile("[\x80-\x9f]")  # what feedparser's Windows-1252 table maps
_LINK_ENTITY = re.compile(r"&([A-Za-z0-9_]+);")
_LATE_DECLARATION = re.compile(rb"(?<=.)\s*<\?xml\s[^>]*\?>", re.DOTALL)
_BARE_AMP = re.compile(rb"(<!\[CDATA\[.*?\]\]>|<!--.*?-->)|&(?!#[0-9]+;|#[xX][0-9a-fA-F]+;|[A-Za-z_][\w.-]*;)",
                       re.DOTALL)
_HTML_TYPES = {"application/xhtml+xml", "text/html"}

# What an element does to an entry, by feedparser's name for it (namespace prefix + lower-case local name).
TITLE, MEDIA_TITLE, LINK, GUID, DESCRIPTION, SUMMARY, ABSTRACT, CONTENT, ENCODED, PUBLISHED, UPDATED = range(11)
RESETS_TITLE, ENTRY, DECLINE, TTL = range(11, 15)
_KINDS = {
    "title": TITLE, "dc_title": TITLE, "media_title": MEDIA_TITLE, "link": LINK, "guid": GUID, "id": GUID,
    "description": DESCRIPTION, "dc_description": DESCRIPTION, "media_description": DESCRIPTION,
    "summary": SUMMARY, "itunes_summary": SUMMARY, "abstract": ABSTRACT, "content": CONTENT,
    "content_encoded": ENCODED, "fullitem": ENCODED,
    "published": PUBLISHED, "issued": PUBLISHED, "pubdate": PUBLISHED, "dcterms_issued": PUBLISHED,
    "updated": UPDATED, "modified": UPDATED, "lastbuilddate": UPDATED, "dc_date": UPDATED, "dcterms_modified": UPDATED,
    "source": RESETS_TITLE, "image": RESETS_TITLE, "textinput": RESETS_TITLE,
    "item": ENTRY, "entry": ENTRY, "body": DECLINE, "xhtml_body": DECLINE, "channel": DECLINE, "feed": DECLINE,
    "rss": DECLINE, "rdf_rdf": DECLINE, "ttl": TTL,
}
_TEXT_KINDS = {TITLE, MEDIA_TITLE, DESCRIPTION, SUMMARY, ABSTRACT, CONTENT, ENCODED}  # feedparser's push_content
_DEFAULT_TYPES = {TITLE: "text/plain", MEDIA_TITLE: "text/plain", DESCRIPTION: "text/html",
                  SUMMARY: "text/plain", ABSTRACT: "text/plain", CONTENT: "text/plain", ENCODED: "text/html"}
_FEED_LEVEL_DECLINE = {SUMMARY, CONTENT, ENCODED, DECLINE}  # they would change how entries read their text
_NESTED_KINDS = {TITLE, MEDIA_TITLE, DESCRIPTION}  # may sit below an entry's children (media:group, media:content)
_names: dict[Any, str] = {}  # by tag, or by (tag, prefix) in namespaces feedparser does not know


@dataclass
class ParsedFeed:
    entries: list[dict[str, Any]] = field(default_factory=list)
    ttl_seconds: float | None = None
    problem: str | None = None  # feedparser's bozo exception, when the document is not quite well-formed
    error: str | None = None  # the document is not a feed at all


def entry_dict(title: str, link: str | None, guid: str | None, summary: str, content: str, when: Any
               ) -> dict[str, Any]:
    """The parser's entry shape (plain picklable values), from feedparser's fields for it."""
    return {"title": title, "link": link, "guid": guid, "summary": summary, "content": content,
            "published": _utc(when)}


def ttl_seconds(value: Any) -> float | None:
    try:
        return float(value) * 60 if value else None  # RSS <ttl> is in minutes
    except ValueError:
        return None


def _utc(t: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(calendar.timegm(t), UTC) if t else None
    except (OverflowError, ValueError, TypeError):
        return None


class Decline(Exception):
    """The document is not one the fast path reads exactly as feedparser does."""


def parse_fast(body: bytes, headers: dict[str, str]) -> ParsedFeed | None:
    """Parse ``body`` like ``feedparse.parse_feed`` does with feedparser, or return None to leave it to feedparser."""
    try:
        return _parse(body, headers)
    except Decline:
        return None


def _parse(body: bytes, headers: dict[str, str]) -> ParsedFeed:
    bases = _bases(body)
    if bases > 1:
        raise Decline("xml:base below the root")
    result: dict[str, Any] = {"bozo": False}
    data = convert_to_utf8(headers, body, result)
    if not result.get("encoding"):
        raise Decline("unknown encoding")
    _, data, entities = replace_doctype(data)
    if entities:
        raise Decline("entity declarations")
    root, slip = _root(data)
    root_base = root.get(_XML_BASE) or next((v for k, v in root.attrib.items() if k.lower() == "base"), None)
    if bases and root_base is None:
        raise Decline("xml:base below the root")
    reader = _Reader(_base_uri(headers.get("content-location", ""), root_base))
    reader.feed(root)
    problem = slip
    if result.get("bozo"):
        exc = result.get("bozo_exception")
        problem = f"{type(exc).__name__}: {exc}"
    return ParsedFeed(reader.entries, ttl_seconds(reader.ttl), problem)


def _bases(body: bytes) -> int:
    """How many elements may carry xml:base or base (feedparser lower-cases attribute names), at most."""
    lowered = body.lower()
    return sum(1 for m in _BASE.finditer(lowered) if m.start() and lowered[m.start() - 1] in b" \t\r\n:")


def _base_uri(contentloc: str, root_base: str | None) -> str:
    """The base feedparser resolves links against: the response's location, joined with the root's xml:base."""
    attribute = root_base or contentloc
    if contentloc:
        return make_safe_absolute_uri(contentloc, attribute) or contentloc
    return _urljoin(contentloc, attribute)


def _root(data: bytes) -> tuple[Any, str | None]:
    """The document's root element, and what was wrong with it when it is well-formed only once ``_repaired``."""
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, collect_ids=False)
    slip = None
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as e:
        slip = f"{type(e).__name__}: {e}"
        try:
            root = etree.fromstring(_repaired(data), parser)
        except (etree.XMLSyntaxError, ValueError):
            raise Decline("not well-formed") from e
    if root.getroottree().docinfo.internalDTD is not None or _name(root) not in _FEED_ROOTS:
        raise Decline("DTD or root")
    if _name(root) == "rdf_rdf" and not any(ns in _RSS1_NAMESPACES for ns in root.nsmap.values()):
        raise Decline("RDF without RSS 1.0")  # feedparser would not call it a feed
    if _name(root) == "feed" and root.tag != _ATOM10:
        raise Decline("Atom 0.3")
    return root, slip


def _repaired(data: bytes) -> bytes:
    """The document without the two slips of real feeds that feedparser's loose parser reads past: an XML
    declaration after the start (after a blank line: feedparser puts its own declaration first) and an ``&`` that
    begins no entity reference (``?a=1&b=2`` in an attribute), which becomes ``&amp;`` outside CDATA sections and
    comments."""
    return _BARE_AMP.sub(lambda m: m[1] or b"&amp;", _LATE_DECLARATION.sub(b"", data))


def _name(el: Any) -> str:
    """feedparser's name for an element: its known namespace's prefix (or the document's), then the local name."""
    name = _names.get(el.tag)
    if name is None:
        name = _names.get((el.tag, el.prefix)) or _new_name(el)
    return name


def _new_name(el: Any) -> str:
    namespace, _, local = el.tag[1:].partition("}") if el.tag[0] == "{" else ("", "", el.tag)
    namespace = namespace.lower()
    if _USERLAND[7:] in namespace:
        namespace = _USERLAND
    known = namespace in _NAMESPACES
    prefix = _NAMESPACES[namespace] if known else el.prefix
    name = f"{prefix.lower()}_{local.lower()}" if prefix else local.lower()
    if len(_names) > 10_000:
        _names.clear()
    _names[el.tag if known or not namespace else (el.tag, el.prefix)] = name  # else the document's prefix counts
    return name


def _fix(text: str) -> str:
    """feedparser's last touches to every text it pops: undo double UTF-8, map Windows-1252 C1 characters."""
    if text.isascii():
        return text
    try:
        text = text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return text.translate(_cp1252) if _C1.search(text) else text


def _attrs(el: Any) -> dict[str, str]:
    attrs = {k.lower(): v for k, v in el.attrib.items() if k[0] != "{"}
    for key in ("rel", "type"):
        if key in attrs:
            attrs[key] = attrs[key].lower()
    return attrs


def _href(el: Any) -> bool:
    """Whether a link element names its target in an attribute (then its children are not its text)."""
    attrs = _attrs(el)
    return bool(attrs.get("url", attrs.get("uri", attrs.get("href")))) or "href" in attrs


def _content_type(value: str) -> str:
    value = value.lower()
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html",
            "xhtml": "application/xhtml+xml"}.get(value, value)


class _Reader:
    """Walks the document in order, keeping the state feedparser keeps for the fields we read."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.entries: list[dict[str, Any]] = []
        self.ttl: str | None = None

    def feed(self, parent: Any, level: int = 0) -> None:
        """Feed-level elements, in order: entries where feedparser finds them (under the root or its channel),
        the channel's ttl; elements that would change how the entries read decline."""
        parent_name = _name(parent)
        for el in parent.iterchildren(etree.Element):
            name = _name(el)
            kind = _KINDS.get(name)
            if kind == ENTRY:
                if not (level == 0 or (level == 1 and parent_name == "channel")):
                    raise Decline("entry in an unusual place")
                self.entries.append(self.entry(el))
                continue
            if kind in _FEED_LEVEL_DECLINE and not (name == "channel" and level == 0):
                raise Decline("feed-level element changes how entries read")
            if kind == TTL:
                if len(el) or not (parent_name == "channel" or (level == 0 and parent_name == "feed")):
                    raise Decline("ttl in an unusual place")
                self.ttl = _fix((el.text or "").strip())
            if len(el):
                self.feed(el, level + 1)

    def entry(self, item: Any) -> dict[str, Any]:
        attrs = _attrs(item)
        if "lastmod" in attrs or "href" in attrs:
            raise Decline("CDF attributes")
        state = _Entry()
        if about := item.get(_RDF_ABOUT):
            state.fields["id"] = about
        for el in item.iterchildren(etree.Element):
            kind = _KINDS.get(_name(el))
            if kind in (ENTRY, DECLINE) or (kind is not None and len(el) and not (kind == LINK and _href(el))):
                raise Decline("markup inside an entry field")
            if kind is not None:
                self.element(state, kind, el, 1)
            if len(el):
                self.nested(state, el, 2)
        return state.result()

    def nested(self, state: _Entry, parent: Any, depth: int) -> None:
        """Below an entry's children only titles and descriptions may appear (Media RSS puts them in its groups);
        feedparser reads them too, by the rules of depth."""
        for el in parent.iterchildren(etree.Element):
            kind = _KINDS.get(_name(el))
            if kind is not None:
                if kind not in _NESTED_KINDS or len(el):
                    raise Decline("entry field nested below an entry's child")
                self.element(state, kind, el, depth)
            elif len(el):
                self.nested(state, el, depth + 1)

    def element(self, state: _Entry, kind: int, el: Any, depth: int) -> None:
        attrs = _attrs(el) if el.attrib else {}
        if kind in _TEXT_KINDS:
            ctype = _content_type(attrs.get("type", _DEFAULT_TYPES[kind]))
            if attrs.get("mode") == "base64" or ctype == "application/xhtml+xml" or not (
                    ctype.startswith("text/") or ctype.endswith("+xml") or ctype.endswith("/xml")):
                raise Decline("base64 or XHTML text")
            state.text(kind, ctype, (el.text or "").strip(), depth)
        elif kind == LINK:
            self.link(state, attrs, el)
        elif kind == GUID:
            state.guid(attrs.get("ispermalink", "true") == "true", (el.text or "").strip(), self.base)
        elif kind in (PUBLISHED, UPDATED):
            parsed = _parse_date(_fix((el.text or "").strip()))
            if kind == PUBLISHED:
                state.published = parsed
            else:
                state.updated = parsed
        elif kind == RESETS_TITLE:
            state.title_depth = -1

    def link(self, state: _Entry, attrs: dict[str, str], el: Any) -> None:
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        href = attrs.get("url", attrs.get("uri", attrs.get("href")))
        if href:
            attrs["href"] = href
        if "href" in attrs:
            if attrs["rel"] == "alternate" and _content_type(attrs["type"]) in _HTML_TYPES:
                state.fields["link"] = _urljoin(self.base, attrs["href"])
            return
        text = (el.text or "").strip()
        if text:
            text = _urljoin(self.base, text)
        text = _fix(text)
        if "&" in text:
            text = _LINK_ENTITY.sub(r"&\g<1>", text.replace("&amp;", "&"))
        state.fields["link"] = text


class _Entry:
    """One entry's fields as feedparser builds them, element by element."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.depths: dict[str, int] = {}  # how deep the element that set a field was: shallower wins, then later
        self.content: list[str] = []
        self.published: Any = None
        self.updated: Any = None
        self.title_depth = -1  # feedparser's: a title as deep or deeper than the last non-empty one is ignored
        self.has_content = False

    def store(self, name: str, value: str, depth: int) -> None:
        if depth <= self.depths.get(name, depth):
            self.fields[name], self.depths[name] = value, depth

    def text(self, kind: int, ctype: str, value: str, depth: int) -> None:
        value = _fix(value)
        if kind in (TITLE, MEDIA_TITLE):
            if not -1 < self.title_depth <= depth:
                self.store("title", value, depth)
            if kind == TITLE and value:  # a media:title leaves title_depth as it was
                self.title_depth = depth
        elif kind in (DESCRIPTION, SUMMARY) and "summary" in self.fields and not self.has_content:
            self.add_content(value, ctype)
        elif kind in (DESCRIPTION, SUMMARY, ABSTRACT):
            self.store("summary", value, depth)
        else:
            self.add_content(value, ctype)

    def add_content(self, value: str, ctype: str) -> None:
        self.has_content = True
        self.content.append(value)
        self.fields["content"] = self.content
        if ctype == "text/plain" or ctype in _HTML_TYPES:
            self.fields.setdefault("summary", value)

    def result(self) -> dict[str, Any]:
        f = self.fields
        return entry_dict(f.get("title", ""), f.get("link"), f.get("id"), f.get("summary", ""),
                          self.content[0] if self.content else "", self.published or self.updated)

    def guid(self, is_link: bool, value: str, base: str) -> None:
        if value and is_link:
            value = _urljoin(base, value)
        value = _fix(value)
        self.store("id", value, 1)
        if is_link:
            self.fields.setdefault("link", value)
