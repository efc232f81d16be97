"""Load and validate sources.toml: the outlets and their feed URLs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from talentwatch.schema import ConfigError, check_keys, parse_duration, read_toml

SOURCE_ID = re.compile(r"^[a-z0-9-]+$")
KEYS = {"id", "name", "feeds", "site", "interval", "fulltext", "language", "sitemaps"}


@dataclass(frozen=True)
class Source:
    id: str
    name: str
    feeds: tuple[str, ...]
    site: str | None = None
    interval: float = 1800.0  # seconds
    fulltext: bool = False
    language: str | None = None
    sitemaps: tuple[str, ...] = ()


def load_sources(path: Path, interval: float = 1800.0, fulltext: bool = False) -> list[Source]:
    """Read sources.toml; ``interval`` and ``fulltext`` are the defaults from talentwatch.toml."""
    raw = read_toml(path)
    check_keys(path, "", raw, {"source"})
    tables = raw.get("source", [])
    if not isinstance(tables, list) or not tables:
        raise ConfigError(path, "source", "expected at least one [[source]] table")
    sources: list[Source] = []
    for n, table in enumerate(tables, 1):
        source = _source(path, n, table, interval, fulltext)
        if any(s.id == source.id for s in sources):
            raise ConfigError(path, f"source '{source.id}'", "duplicate id")
        sources.append(source)
    return sources


def _source(path: Path, n: int, t: dict, interval: float, fulltext: bool) -> Source:
    sid = t.get("id")
    if not isinstance(sid, str) or not SOURCE_ID.match(sid):
        raise ConfigError(path, f"source #{n} id", f"expected an id of [a-z0-9-]+, got {sid!r}")
    where = f"source '{sid}' "
    check_keys(path, where, t, KEYS)
    feeds = t.get("feeds")
    if not isinstance(feeds, list) or not feeds:
        raise ConfigError(path, f"{where}feeds", "expected a non-empty list of feed URLs")
    for url in [*feeds, *t.get("sitemaps", [])]:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ConfigError(path, f"{where}feeds", f"expected an http(s) URL, got {url!r}")
    try:
        seconds = parse_duration(t["interval"]) if "interval" in t else interval
    except ValueError as e:
        raise ConfigError(path, f"{where}interval", str(e)) from None
    for key, kind in (("name", str), ("site", str), ("language", str), ("fulltext", bool)):
        if key in t and not isinstance(t[key], kind):
            raise ConfigError(path, f"{where}{key}", f"expected a {kind.__name__}, got {t[key]!r}")
    return Source(
        id=sid, name=t.get("name", sid), feeds=tuple(feeds), site=t.get("site"), interval=seconds,
        fulltext=t.get("fulltext", fulltext), language=t.get("language"), sitemaps=tuple(t.get("sitemaps", [])),
    )
