"""The real feed history in ../shared/corpus/feed-history/<outlet>/: captures listed in MANIFEST.tsv, and the
items they carried (as talentwatch normalizes them), with what a correct backfill of a range must find."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from crawler.feedparse import parse_feed
from pipelines.normalize import normalize_entries


@dataclass(frozen=True)
class Capture:
    timestamp: str  # 14 digits, as the CDX writes it
    digest: str
    path: Path

    @property
    def when(self) -> datetime:
        return datetime.strptime(self.timestamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


@dataclass(frozen=True)
class HistoryItem:
    url: str  # canonical
    title: str  # as the newest capture carrying it has it
    published: datetime | None
    captures: tuple[datetime, ...]  # when it was captured, oldest first


class FeedHistory:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        rows = csv.DictReader((folder / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t")
        self.captures = sorted((Capture(r["timestamp"], r["sha1"], folder / f"{r['timestamp']}.xml") for r in rows),
                               key=lambda c: c.timestamp)

    @cached_property
    def items(self) -> dict[str, HistoryItem]:
        """Every item of every capture, by canonical URL."""
        seen: dict[str, list] = {}
        for capture in self.captures:  # oldest first: a later capture's version replaces an earlier one
            for a in normalize_entries(parse_feed(capture.path.read_bytes(), {}).entries):
                if a.url:
                    old = seen.get(a.url)
                    seen[a.url] = [a.title, a.published or (old[1] if old else None),
                                   [*(old[2] if old else []), capture.when]]
        return {u: HistoryItem(u, t, p, tuple(c)) for u, (t, p, c) in seen.items()}

    def published_in(self, start: datetime, end: datetime) -> dict[str, HistoryItem]:
        """The items a backfill of [start, end) must recover: published in it, in any capture."""
        return {u: i for u, i in self.items.items() if i.published and start <= i.published < end}
