"""The analyst's verdicts (web view): one per item and topic, and their export in ``rules test``'s format."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store import models as m


class UnknownTopic(ValueError):
    pass


def judge(session: Session, item_id: int, topic: str, relevant: bool, now: datetime) -> None:
    """Record a verdict, replacing the item's earlier one for that topic."""
    if session.get(m.Topic, topic) is None:
        raise UnknownTopic(topic)
    session.execute(delete(m.Judgement).where(m.Judgement.item_id == item_id, m.Judgement.topic_id == topic))
    session.add(m.Judgement(item_id=item_id, topic_id=topic, relevant=relevant, judged=now))


def verdicts(session: Session, item_id: int) -> dict[str, bool]:
    """Topic -> relevant, for one item."""
    return dict(session.execute(select(m.Judgement.topic_id, m.Judgement.relevant)
                                .where(m.Judgement.item_id == item_id)).all())


def export(session: Session) -> Iterator[dict[str, Any]]:
    """One object per judged item, as ``rules test`` reads it: ``labels`` holds the topics judged relevant and
    ``judged`` every topic judged, so that the item counts only for those (it says nothing of the others)."""
    by_item: defaultdict[int, dict[str, bool]] = defaultdict(dict)
    for item_id, topic, relevant in session.execute(
            select(m.Judgement.item_id, m.Judgement.topic_id, m.Judgement.relevant).order_by(m.Judgement.item_id)):
        by_item[item_id][topic] = relevant
    for item_id, topics in by_item.items():
        item = session.get(m.Item, item_id)
        if item is None:
            continue
        yield {"title": item.title, "summary": item.summary, "labels": sorted(t for t, r in topics.items() if r),
               "judged": sorted(topics), "url": item.url, "source": item.source_id, "id": item.id}
