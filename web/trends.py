"""/trends: stories per topic and entity mentions per week, with the weeks well above the usual marked; drawn as
server-made SVG bars (web/templates/trends.html)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.period import Period, week
from digest.select import story_counts
from store import models as m

TOP_ENTITIES = 8
MIN_HISTORY = 4  # weeks before a week that "the usual" is judged from


@dataclass
class Series:
    name: str
    link: str  # the items behind it
    counts: list[int]  # per week, oldest first
    unusual: list[bool]  # well above the weeks before it

    @property
    def peak(self) -> int:
        return max(self.counts, default=0)


def weeks_until(last: Period, n: int) -> list[Period]:
    """The ``n`` ISO weeks ending with ``last``, oldest first."""
    out = []
    for k in range(n - 1, -1, -1):
        year, number, _ = (last.first - timedelta(days=7 * k)).isocalendar()
        out.append(week(year, number, "UTC"))
    return out


def unusual(counts: list[int]) -> list[bool]:
    """A week is well above the usual when it exceeds the mean of the weeks before it by two standard deviations
    (at least 1) and by at least 3 stories; judged once MIN_HISTORY weeks came before it."""
    flags = []
    for n, count in enumerate(counts):
        before = counts[:n]
        if len(before) < MIN_HISTORY:
            flags.append(False)
            continue
        mean, spread = statistics.fmean(before), statistics.pstdev(before)
        flags.append(count >= mean + max(2 * spread, 1) and count >= mean + 3)
    return flags


def topic_series(session: Session, weeks: list[Period], topics: dict[str, str]) -> list[Series]:
    return [Series(c.name, f"/items?tag={c.topic}", c.counts, unusual(c.counts))
            for c in story_counts(session, weeks, topics)]


def entity_series(session: Session, weeks: list[Period]) -> list[Series]:
    """The most-mentioned entities of the span (stories mentioning them, per week)."""
    when = func.coalesce(m.Item.published, m.Item.fetched)
    rows = session.execute(
        select(m.ItemEntity.entity_id, func.coalesce(m.Item.story_id, m.Item.id), when)
        .join(m.Item, m.Item.id == m.ItemEntity.item_id)
        .where(when >= weeks[0].start, when < weeks[-1].end)).all()
    stories: defaultdict[str, set[tuple[int, int]]] = defaultdict(set)
    for entity, story, at in rows:
        n = next(k for k, p in enumerate(weeks) if p.start <= at < p.end)
        stories[entity].add((n, story))
    names = dict(session.execute(select(m.Entity.id, m.Entity.name)).all())
    top = sorted(stories, key=lambda e: (-len(stories[e]), e))[:TOP_ENTITIES]
    series = []
    for entity in top:
        per_week = Counter(n for n, _ in stories[entity])
        counts = [per_week.get(n, 0) for n in range(len(weeks))]
        series.append(Series(names.get(entity, entity), f"/items?entity={entity}", counts, unusual(counts)))
    return series
