"""What the spiders hand to the pipelines.

The unit of work is one fetch of one feed: its outcome and the entries it carried travel together as a
``FeedFetch``, so that the store writes a feed's new items and its new fetch state (ETag, body hash, next due
time) in one transaction. A crash can never record a feed as seen while losing the items it carried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Article:
    """One entry after normalization (and, further down the pipeline, tagging)."""

    key: str  # identity: sha1 of the canonical URL, or of the GUID/content when there is no link
    url: str | None
    guid: str | None
    title: str
    summary: str
    published: datetime | None
    via: str = "feed"
    text: str | None = None
    text_status: str | None = None
    tags: dict[str, list[str]] = field(default_factory=dict)  # topic id -> evidence snippets
    entities: list[str] = field(default_factory=list)


@dataclass
class FeedFetch:
    """The outcome of fetching one feed. ``entries`` are raw parser output; normalize turns them into ``articles``."""

    feed_id: int | None  # None for an archive fetch (recrawl): no feed state to record
    source_id: str
    url: str
    fetched: datetime
    interval: float  # the source's poll interval, seconds
    status: int | None = None  # HTTP status, None when no response came
    error: str | None = None  # set when the fetch or the parse failed
    not_modified: bool = False  # 304, or a body identical to the last one: nothing parsed
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    server_delay: float | None = None  # seconds the server asked us to wait (ttl, max-age, Retry-After)
    moved_to: str | None = None  # the feed's new URL, after permanent redirects (301, 308) only
    via: str = "feed"  # how the entries were found: the feed, or an archive provider (wayback, gnews, ...)
    tagged: bool = False  # the articles were tagged where they were parsed (a parse worker): the tag stage skips them
    entries: list[dict[str, Any]] = field(default_factory=list, repr=False)
    articles: list[Article] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class FeedState:
    """What the spider needs to poll one feed: its identity and the validators of the last fetch."""

    feed_id: int
    source_id: str
    url: str
    interval: float
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    fetch_url: str | None = None  # where the feed moved (permanent redirect): polled instead of ``url``


@dataclass
class ArticleText:
    """One stored item of a fulltext source on its way through the extract stage (the articles spider).

    ``article`` carries the item as stored (title, summary, date); the extract stage fills in its ``text`` and
    ``text_status`` (ok, paywalled, blocked, failed, skipped), the tag stage its tags when the text is new, and the
    store writes it back onto the item's row. ``html`` is the fetched page, dropped once extracted."""

    item_id: int
    source_id: str
    article: Article
    page_url: str | None = None  # the URL the page came from, after redirects
    html: str | None = field(default=None, repr=False)
    reason: str = ""  # why the status is not ok
    author: str | None = None
    language: str | None = None
    dated_by_page: bool = False  # the feed gave no date: the one in ``article.published`` came from the page
    tagged: bool = False  # tags and entities were computed again, with the text
