"""SQLAlchemy 2.0 models. Every change here needs an Alembic revision (``alembic check`` runs in the tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime}


class Source(Base):
    __tablename__ = "sources"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    site: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    feeds: Mapped[list[Feed]] = relationship(back_populates="source")


class Feed(Base):
    """One feed URL and its fetch state: the scheduler's and `status`'s source of truth."""

    __tablename__ = "feeds"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"), index=True)
    url: Mapped[str] = mapped_column(Text, unique=True)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    last_fetch: Mapped[datetime | None]
    last_success: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(default=0)
    next_due: Mapped[datetime | None] = mapped_column(index=True)
    disabled: Mapped[bool] = mapped_column(default=False)  # set on 410 Gone; a changed URL is a new, enabled row
    fetch_url: Mapped[str | None] = mapped_column(Text)  # where a permanent redirect (301, 308) moved the feed
    polled_by: Mapped[str | None] = mapped_column(String(128))  # the worker (host:pid) whose poll was recorded last
    leased_by: Mapped[str | None] = mapped_column(String(128), index=True)  # PostgreSQL: the worker polling it now
    lease_until: Mapped[datetime | None]  # ... until then (the database's clock), unless it renews
    source: Mapped[Source] = relationship(back_populates="feeds")


class Item(Base):
    """One article. ``key`` is the hash of its canonical URL (or, with no link, of its GUID/content)."""

    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("source_id", "guid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    url: Mapped[str | None] = mapped_column(Text)
    guid: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"), index=True)
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    published: Mapped[datetime | None] = mapped_column(index=True)
    fetched: Mapped[datetime] = mapped_column(index=True)
    updated: Mapped[datetime]
    via: Mapped[str] = mapped_column(String(16), default="feed")
    text: Mapped[str | None] = mapped_column(Text)
    text_status: Mapped[str | None] = mapped_column(String(16))
    story_id: Mapped[int | None] = mapped_column(index=True)
    text_leased_by: Mapped[str | None] = mapped_column(String(128))  # PostgreSQL: the worker fetching its article
    text_lease_until: Mapped[datetime | None]  # ... until then (the database's clock)
    tags: Mapped[list[Tag]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    entities: Mapped[list[ItemEntity]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


# An item's date (publication, else fetch): lists are ordered by it, newest first, and periods select by it
Index("ix_items_when", func.coalesce(Item.published, Item.fetched), Item.id)


class Topic(Base):
    __tablename__ = "topics"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    query: Mapped[str] = mapped_column(Text)


class Entity(Base):
    __tablename__ = "entities"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)


class Tag(Base):
    """An item matched a topic; ``evidence`` holds the snippets that matched."""

    __tablename__ = "tags"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    topic_id: Mapped[str] = mapped_column(ForeignKey("topics.id"), primary_key=True, index=True)
    evidence: Mapped[list[str]] = mapped_column(JSON, default=list)


class ItemEntity(Base):
    __tablename__ = "item_entities"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    entity_id: Mapped[str] = mapped_column(ForeignKey("entities.id"), primary_key=True, index=True)


class StoryKey(Base):
    """A key an item is found by when stories are assigned (store/stories.py): one of its entities or rarest words
    (``pipelines.cluster.term_key``), or its exact key. ``items.story_id`` is the id of the story's first item."""

    __tablename__ = "story_keys"
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True)


class TermCount(Base):
    """Document frequency of a clustering feature (``pipelines.cluster.term_key``): how many stored items have it;
    key 0 counts the items (store/stories.py)."""

    __tablename__ = "term_counts"
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    df: Mapped[int] = mapped_column(default=0)


class Judgement(Base):
    """The analyst's verdict on an item for one topic (web view): relevant or not. A new verdict replaces the old;
    ``talentwatch judgements export`` writes them in ``rules test``'s format."""

    __tablename__ = "judgements"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    topic_id: Mapped[str] = mapped_column(ForeignKey("topics.id"), primary_key=True)
    relevant: Mapped[bool]
    judged: Mapped[datetime]


class Worker(Base):
    """A daemon sharing the feeds of a PostgreSQL database (store/leases.py); its row goes when it stops cleanly."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid, or [daemon] worker_id
    started: Mapped[datetime]
    heartbeat: Mapped[datetime]  # the database's clock


class Outgoing:
    """A message recorded before it is sent: status pending -> sending -> sent (digest/ledger.py). ``message`` is
    what is sent (a whole RFC 5322 message, or a webhook's JSON), so that a retry sends the same bytes."""

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    stories: Mapped[int] = mapped_column(default=0)
    message: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[datetime]
    claimed: Mapped[datetime | None]  # when a sender took it (status sending); a stale claim may be taken over
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent: Mapped[datetime | None]
    delivered_to: Mapped[str | None] = mapped_column(Text)  # "smtp://host:port", the outbox file, a webhook


class Digest(Outgoing, Base):
    """The digest of one period, sent once."""

    __tablename__ = "digests"
    period: Mapped[str] = mapped_column(String(32), unique=True)  # 2026-W48, or 2026-11-02..2026-11-08
    starts: Mapped[datetime]
    ends: Mapped[datetime]


class AlertMessage(Outgoing, Base):
    """One alert's message for one batch of stories, on one channel (email or webhook)."""

    __tablename__ = "alert_messages"
    alert: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | webhook
    not_before: Mapped[datetime | None]  # after a failure: no new attempt before this (backoff)


class AlertStory(Base):
    """A story an alert has recorded for sending: the primary key makes each story go out at most once per alert,
    whatever the number of daemons or restarts."""

    __tablename__ = "alert_stories"
    alert: Mapped[str] = mapped_column(String(64), primary_key=True)
    story_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    batch: Mapped[str] = mapped_column(Text)  # the batch's Message-ID (shared by its email and webhook rows)
    recorded: Mapped[datetime]
