"""Load and validate sources.toml: the outlets and their feed URLs; and add sources to it (`sources import`,
`sources add`) without losing its comments or order."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomlkit
from tomlkit.items import AoT

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


# ---- adding sources ---------------------------------------------------------------------------------------------

def feed_key(url: str) -> str:
    """A feed URL as compared for "already configured": scheme and host are case-insensitive, a default port and
    surrounding blanks do not count; the path and query do (servers tell them apart)."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:  # not a port number: compare the URL as written
        return url.strip()
    port_text = f":{port}" if port and port != {"http": 80, "https": 443}.get(parts.scheme.lower()) else ""
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}{port_text}{rest or '/'}"


def site_of(url: str | None) -> str | None:
    """The outlet's domain (the `site` key) from one of its http(s) URLs: the host without "www."."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.removeprefix("www.")


def language_code(tag: str | None) -> str | None:
    """A feed's or an outline's language tag as sources.toml writes it: the language alone ("en-US" -> "en"), but
    traditional Chinese kept apart ("zh-TW" -> "zh-hant"), as the archive searches tell them apart; None for none."""
    m = re.fullmatch(r"([a-z]{2,3})(?:[-_]([a-z0-9-]+))?", (tag or "").strip().lower().replace("_", "-"))
    if not m:
        return None
    if m.group(1) == "zh" and re.match(r"(hant|tw|hk|mo)\b", m.group(2) or ""):
        return "zh-hant"
    return m.group(1)


def derive_id(title: str | None, url: str, taken: set[str]) -> str:
    """An id of [a-z0-9-]+ from a title (accents folded), else from the feed's host; made unique against ``taken``
    with -2, -3, ... and added to it."""
    base = _slug(title or "") or _slug(site_of(url) or "") or "feed"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:48].strip("-")


def source_table(sid: str, name: str, feeds: Sequence[str], site: str | None = None,
                 language: str | None = None) -> dict[str, Any]:
    """A [[source]] table with the keys that are known (in the README's order)."""
    table: dict[str, Any] = {"id": sid, "name": name, "feeds": list(feeds)}
    table.update({k: v for k, v in (("site", site), ("language", language)) if v})
    return table


def sources_toml(tables: Sequence[dict[str, Any]]) -> str:
    """[[source]] tables as TOML text, separated by blank lines ("" for none)."""
    doc = tomlkit.document()
    doc["source"] = tomlkit.aot()
    for t in tables:
        doc["source"].append(_table(t))
    return tomlkit.dumps(doc) if tables else ""


def append_sources(path: Path, tables: Sequence[dict[str, Any]]) -> None:
    """Append [[source]] tables to sources.toml, keeping everything already written (comments, order, layout):
    the new tables go after the file's text as it is. The new file is read back with ``load_sources`` before it
    replaces the old one, so an error leaves it untouched."""
    text = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(text)
    if isinstance(doc.get("source"), AoT):
        new_text = text.rstrip() + "\n\n" + sources_toml(tables)
    else:  # `source = [{...}, ...]`, an inline array: TOML allows no [[source]] after it, so extend the array
        for t in tables:
            doc["source"].append(_table(t, inline=True))
        new_text = tomlkit.dumps(doc)
    fd, tmp = tempfile.mkstemp(prefix=".sources-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new_text)
        try:
            load_sources(Path(tmp))
        except ConfigError as e:
            raise ConfigError(path, e.key, f"{e.message} (in the sources to be added; nothing was written)") from None
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _table(values: dict[str, Any], inline: bool = False) -> Any:
    table = tomlkit.inline_table() if inline else tomlkit.table()
    table.update(values)
    return table
