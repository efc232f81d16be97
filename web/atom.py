"""Atom 1.0 feeds of the workbench (/feeds/topic/{id}.atom, /feeds/search.atom?q=...): the newest items, so that
the analyst's own feed reader can subscribe. Built with ElementTree: feed text is escaped as text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from digest.select import safe_url
from store import models as m

ATOM = "http://www.w3.org/2005/Atom"


def atom(title: str, self_url: str, base: str, items: Sequence[m.Item]) -> bytes:
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "title", title)
    _text(feed, "id", self_url)
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=self_url)
    updated = max((_when(i) for i in items), default=datetime.now(UTC))
    _text(feed, "updated", updated.isoformat())
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "talentwatch")
    for item in items:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "title", item.title or "(no title)")
        _text(entry, "id", f"{base}/items/{item.id}")
        _text(entry, "updated", _when(item).isoformat())
        if item.published:
            _text(entry, "published", item.published.isoformat())
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=safe_url(item.url) or f"{base}/items/{item.id}")
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="related", href=f"{base}/items/{item.id}")
        _text(entry, "summary", item.summary or "")
        for tag in item.tags:
            ET.SubElement(entry, f"{{{ATOM}}}category", term=tag.topic_id)
        source = ET.SubElement(entry, f"{{{ATOM}}}author")
        _text(source, "name", item.source_id)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")


def _text(parent: ET.Element, name: str, value: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}{name}").text = value


def _when(item: m.Item) -> datetime:
    return (item.published or item.fetched).astimezone(UTC)
