"""Select what a digest shows: a period's tagged items grouped into stories and sections, counts per topic against
the periods before, the most-mentioned entities, and the feeds that failed all period."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from digest.period import Period
from store import models as m
from store.queries import ItemFilter, items_query
from store.stories import assign_stories, unassigned

HISTORY = 4  # earlier periods in the counts chart
TOP_ENTITIES = 10
LEAD_CHARS = 240


@dataclass
class Story:
    id: int
    title: str
    url: str | None  # http(s) only: anything else from a feed is not made a link
    source: str  # the best source's name
    also: list[str]  # the other outlets' names
    published: datetime | None
    latest: datetime
    topics: list[str]
    evidence: str | None  # the snippet that matched the topic, unless that was just the title
    lead: str | None  # the start of the summary, shown when the evidence adds nothing to the title
    entities: list[str]

    @property
    def outlets(self) -> int:
        return 1 + len(self.also)


@dataclass
class Section:
    topic: str
    name: str
    stories: list[Story]


@dataclass
class TopicCounts:
    topic: str
    name: str
    counts: list[int]  # stories per period, oldest first; the last is this period


@dataclass
class FeedProblem:
    source: str
    url: str
    failures: int
    last_success: datetime | None
    last_error: str | None


@dataclass
class DigestData:
    period: Period
    history: list[Period]  # the earlier periods of the chart, oldest first
    sections: list[Section]
    counts: list[TopicCounts]
    entities: list[tuple[str, int]]  # name, stories mentioning it
    failing: list[FeedProblem]
    items: int
    outlets: int
    generated: datetime
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def stories(self) -> int:
        return sum(len(s.stories) for s in self.sections)


def select_digest(session: Session, period: Period, now: datetime, topic_order: Sequence[str] = (),
                  feed_urls: Sequence[str] | None = None) -> DigestData:
    """Everything a digest shows. Items of the period that have no story yet are clustered first (so this writes:
    call it inside a transaction)."""
    assign_stories(session, unassigned(session, period.start, period.end))
    topics = topic_names(session, topic_order)
    tagged = list(session.scalars(items_query(ItemFilter(since=period.start, until=period.end, tagged=True))))
    items = with_story_members(session, tagged)
    sources = dict(session.execute(select(m.Source.id, m.Source.name)).all())
    entities = {e.id: e for e in session.scalars(select(m.Entity))}
    stories = [story_of(group, topics, sources, entities) for group in group_stories(items).values()]
    history = period.before(HISTORY)
    return DigestData(
        period=period, history=history, sections=_sections(stories, topics),
        counts=story_counts(session, [*history, period], topics),
        entities=_top_entities(items, entities), failing=failing_feeds(session, period, feed_urls),
        items=len(items), outlets=len({i.source_id for i in items}), generated=now)


def topic_names(session: Session, order: Sequence[str]) -> dict[str, str]:
    """Topic id -> name, in the configured order (topics no longer configured last)."""
    names = dict(session.execute(select(m.Topic.id, m.Topic.name)).all())
    rank = {t: n for n, t in enumerate(order)}
    return {t: names[t] for t in sorted(names, key=lambda t: (rank.get(t, len(rank)), t))}


def with_story_members(session: Session, tagged: Sequence[m.Item]) -> list[m.Item]:
    """The tagged items and the other items of their stories (another outlet's report of a tagged story counts
    as coverage even when its own words matched no topic)."""
    ids = sorted({i.story_id for i in tagged if i.story_id is not None})
    members = {i.id: i for i in tagged}
    for chunk in (ids[n:n + 500] for n in range(0, len(ids), 500)):
        query = select(m.Item).where(m.Item.story_id.in_(chunk))
        for item in session.scalars(query.options(selectinload(m.Item.tags), selectinload(m.Item.entities))):
            members.setdefault(item.id, item)
    return list(members.values())


def group_stories(items: Sequence[m.Item]) -> dict[int, list[m.Item]]:
    groups: dict[int, list[m.Item]] = defaultdict(list)
    for item in items:
        groups[item.story_id or item.id].append(item)
    return groups


def _when(item: m.Item) -> datetime:
    return item.published or item.fetched


def safe_url(url: str | None) -> str | None:
    return url if url and urlsplit(url).scheme in ("http", "https") else None


def story_of(items: list[m.Item], topics: dict[str, str], sources: dict[str, str], entities: dict) -> Story:
    """One story: linked to its first report that has a link (the original, when others carry it later)."""
    items = sorted(items, key=lambda i: (safe_url(i.url) is None, _when(i), i.id))
    best = items[0]
    tagged = {t.topic_id for i in items for t in i.tags}
    story_topics = [t for t in topics if t in tagged] + sorted(tagged - set(topics))
    outlets = list(dict.fromkeys(sources.get(i.source_id, i.source_id) for i in items))
    mentions = Counter(e.entity_id for i in items for e in i.entities)
    names = [entities[e].name if e in entities else e for e, _ in mentions.most_common()
             if e not in entities or entities[e].kind != "place"]
    title = best.title or best.url or "(untitled)"
    evidence = _evidence(items, story_topics[0])
    if evidence and _squash(evidence) in _squash(title):
        evidence = None
    return Story(id=best.story_id or best.id, title=title, url=safe_url(best.url), source=outlets[0],
                 also=outlets[1:], published=best.published, latest=max(map(_when, items)), topics=story_topics,
                 evidence=evidence, lead=None if evidence else _lead(best.summary), entities=names)


def _squash(text: str) -> str:
    return " ".join(text.replace("\u2026", " ").split()).casefold()


def _lead(summary: str, limit: int = LEAD_CHARS) -> str | None:
    text = " ".join(summary.split())
    if len(text) <= limit:
        return text or None
    return text[:limit].rsplit(" ", 1)[0] + "\u2026"


def _evidence(items: Sequence[m.Item], topic: str) -> str | None:
    """The first snippet that matched the story's topic, from its best item first."""
    for item in items:
        for tag in item.tags:
            if tag.topic_id == topic and tag.evidence:
                return str(tag.evidence[0])
    return None


def _sections(stories: Sequence[Story], topics: dict[str, str]) -> list[Section]:
    """Each story once, under its first topic; ranked by number of outlets, then recency."""
    by_topic: dict[str, list[Story]] = defaultdict(list)
    for story in stories:
        by_topic[story.topics[0]].append(story)
    sections = []
    for topic in [*topics, *sorted(set(by_topic) - set(topics))]:
        if by_topic.get(topic):
            ranked = sorted(by_topic[topic], key=lambda s: (-s.outlets, -s.latest.timestamp(), s.id))
            sections.append(Section(topic, topics.get(topic, topic), ranked))
    return sections


def story_counts(session: Session, periods: Sequence[Period], topics: dict[str, str]) -> list[TopicCounts]:
    """Stories per topic (each story under its first topic, as in the sections) in each period."""
    rank = {t: n for n, t in enumerate(topics)}
    when = func.coalesce(m.Item.published, m.Item.fetched)
    rows = session.execute(
        select(func.coalesce(m.Item.story_id, m.Item.id), m.Tag.topic_id, when).join(m.Tag, m.Tag.item_id == m.Item.id)
        .where(when >= periods[0].start, when < periods[-1].end)).all()
    first_topic: dict[tuple[int, int], str] = {}
    for story, topic, at in rows:
        n = next(k for k, p in enumerate(periods) if p.start <= at < p.end)
        current = first_topic.get((n, story))
        if current is None or rank.get(topic, len(rank)) < rank.get(current, len(rank)):
            first_topic[(n, story)] = topic
    table = {t: [0] * len(periods) for t in topics}
    for (n, _), topic in first_topic.items():
        table.setdefault(topic, [0] * len(periods))[n] += 1
    return [TopicCounts(t, topics.get(t, t), counts) for t, counts in table.items()]


def _top_entities(items: Sequence[m.Item], entities: dict) -> list[tuple[str, int]]:
    """Entities (not places) by the number of stories that mention them."""
    stories: dict[str, set[int]] = defaultdict(set)
    for item in items:
        for link in item.entities:
            entity = entities.get(link.entity_id)
            if entity is None or entity.kind != "place":
                stories[link.entity_id].add(item.story_id or item.id)
    ranked = sorted(stories.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:TOP_ENTITIES]
    return [(entities[e].name if e in entities else e, len(s)) for e, s in ranked]


def failing_feeds(session: Session, period: Period, urls: Sequence[str] | None = None) -> list[FeedProblem]:
    """Enabled feeds without a successful fetch during the period: failing, or not polled at all, so that a
    silent outage shows. The feed row keeps its latest success: one from before the period started means none
    during it."""
    query = (select(m.Feed, m.Source.name).join(m.Source, m.Source.id == m.Feed.source_id)
             .where(m.Feed.disabled.is_(False),
                    or_(m.Feed.last_success.is_(None), m.Feed.last_success < period.start))
             .order_by(m.Source.name, m.Feed.url))
    if urls is not None:
        query = query.where(m.Feed.url.in_(list(urls)))
    return [FeedProblem(name, f.url, f.failures, f.last_success, f.last_error) for f, name in session.execute(query)]
