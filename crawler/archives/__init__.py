"""Archive providers: where `recrawl` finds the items a feed no longer carries.

Each provider is one module behind one small interface. ``discover(source, window)`` gives the first requests for
one source and one date range; every request names the provider method (a *step*) that reads its response, and a
step yields further requests, ``Found`` entries (the parser's entry shape, ``crawler.feedparse``) and ``Planned``
units of work for the progress bar. A step is called with ``None`` instead of a response when its request failed
(after retries), so a chain of requests can go on past an error.

The archive spider (``crawler.spiders.archive``) does the rest for every provider alike: it keeps the entries
published inside the range, drops what is already stored, and hands ``FeedFetch`` items to the normal pipelines.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from scrapy import Request

from crawler.sources import Source

NAMES = ("wayback", "sitemap", "gdelt", "gnews")  # also the order the providers run in: richest data first


@dataclass(frozen=True)
class Window:
    """A range of time, ``start`` inclusive, ``end`` exclusive, both UTC."""

    start: datetime
    end: datetime

    def __contains__(self, when: object) -> bool:
        return isinstance(when, datetime) and self.start <= when < self.end

    def days(self) -> list[Window]:
        """The range cut at UTC midnights: one window per calendar day it touches."""
        days, start = [], self.start
        while start < self.end:
            midnight = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=1)
            days.append(Window(start, min(midnight, self.end)))
            start = days[-1].end
        return days


@dataclass(frozen=True)
class ArchiveOptions:
    """The `[archive]` configuration the providers read."""

    wayback_url: str = "https://web.archive.org"
    google_news_url: str = "https://news.google.com"
    gdelt_url: str = "https://api.gdeltproject.org"
    terms: tuple[str, ...] = ()  # search terms for gnews and gdelt (key terms of the topics)


@dataclass
class Found:
    """Candidate entries an archive turned up, in ``crawler.feedparse``'s entry shape."""

    entries: list[dict[str, Any]]
    where: str  # the URL they were read from, for the logs
    seen: datetime | None = None  # when the archive saw them (a capture's time): bounds entries without a date


@dataclass
class Planned:
    """``units`` more units of work (captures, days, sitemaps) for the progress bar."""

    units: int


StepOutput = Iterable[Request | Found | Planned] | AsyncIterator[Request | Found | Planned]
Step = Callable[..., StepOutput]


@dataclass
class Provider(ABC):
    """One archive: how to discover candidate items of a source in a date range."""

    name: ClassVar[str]
    options: ArchiveOptions = field(default_factory=ArchiveOptions)

    @abstractmethod
    def applies(self, source: Source) -> bool:
        """Whether this archive can say anything about ``source`` (e.g. it needs the source's ``site``)."""

    @abstractmethod
    def discover(self, source: Source, window: Window) -> Iterable[Request | Planned]:
        """The first requests (and planned units) for ``source`` and ``window``."""

    def request(self, url: str, step: Step, *, source: Source, unit: bool = False,
                meta: dict[str, Any] | None = None, **kwargs: Any) -> Request:
        """A request whose response goes to ``step(response, source=source, **kwargs)``; ``unit`` marks one
        planned unit of work as done when it is answered (or fails)."""
        return Request(url, cb_kwargs={"step": step, "source": source, **kwargs},
                       meta={"unit": unit, **(meta or {})}, dont_filter=True)


class DailySearch(Provider):
    """A search archive asked once per calendar day of the range, about the source's site."""

    def applies(self, source: Source) -> bool:
        return bool(source.site)

    def discover(self, source: Source, window: Window) -> Iterable[Request | Planned]:
        days = window.days()
        yield Planned(len(days))
        for day in days:
            yield self.search(source, day)

    @abstractmethod
    def search(self, source: Source, day: Window) -> Request:
        """The request for one day's results."""


def provider_classes() -> dict[str, type[Provider]]:
    """Every provider by name, in the order they run."""
    from crawler.archives.gdelt import Gdelt
    from crawler.archives.gnews import GoogleNews
    from crawler.archives.sitemap import Sitemaps
    from crawler.archives.wayback import Wayback

    classes: dict[str, type[Provider]] = {c.name: c for c in (Wayback, Sitemaps, Gdelt, GoogleNews)}
    return {name: classes[name] for name in NAMES}


def make_providers(names: Sequence[str], options: ArchiveOptions) -> list[Provider]:
    """Providers for ``names`` (unknown names are the caller's to reject), in the order they run."""
    return [cls(options) for name, cls in provider_classes().items() if name in names]


def key_terms(queries: Sequence[str], budget: int = 24, lists: Mapping[str, Sequence[str]] | None = None,
              kinds: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """Search terms from topic queries: the words and phrases each query looks for, in the query's order (not
    those under NOT, not wildcards, no single word under 4 letters), taken from the topics in turn until ``budget``
    words are used (Google reads 32 words of a query)."""
    from pipelines.tagging import parse

    per_topic = [[t for t in dict.fromkeys(_positive_terms(parse(q, lists, kinds)))
                  if " " in t or len(t) >= 4 or not t.isascii()] for q in queries]
    terms: list[str] = []
    words = 0
    for rank in range(max(map(len, per_topic), default=0)):
        for ranked in per_topic:
            if rank < len(ranked) and ranked[rank] not in terms and words + len(ranked[rank].split()) <= budget:
                terms.append(ranked[rank])
                words += len(ranked[rank].split())
    return terms


def _positive_terms(node: Any) -> Iterator[str]:
    if type(node).__name__ == "Not":
        return
    tokens = getattr(node, "tokens", None)
    if tokens and not getattr(node, "prefix", False):
        cjk = all(len(t) == 1 and not t.isascii() for t in tokens)  # CJK text is tokenized per character
        yield ("" if cjk else " ").join(tokens)
    for child in (getattr(node, "child", None), getattr(node, "left", None), getattr(node, "right", None),
                  *getattr(node, "children", ())):
        if child is not None:
            yield from _positive_terms(child)


def search_query(terms: Sequence[str]) -> str:
    """``(a OR "b c")``, or an empty string without terms."""
    quoted = [f'"{t}"' if " " in t else t for t in terms]
    return f"({' OR '.join(quoted)})" if quoted else ""


def utc_stamp(when: datetime, fmt: str = "%Y%m%d%H%M%S") -> str:
    return when.astimezone(UTC).strftime(fmt)
