"""`recrawl` on the store side: re-process stored items of a date range with the current rules, cluster them into
stories again, and tell the archive spider which of its candidates are stored already.

Re-processing works in batches, one transaction each, so an interrupted run leaves every item either done or not
yet touched; running it again finishes the work (it is idempotent: an item that already matches the rules is left
as it is).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from crawler.items import Article
from pipelines.normalize import canonical_url, identity_key
from pipelines.tag import tag_article
from pipelines.tagging import Tagger
from store import models as m
from store.queries import utcnow

logger = logging.getLogger(__name__)
BATCH = 200


@dataclass
class Counts:
    """One row of the recrawl summary: a source and a provider ("stored" for the re-processing)."""

    candidates: int = 0
    new: int = 0
    updated: int = 0
    retagged: int = 0
    errors: int = 0


def items_in_range(session: Session, source_ids: Sequence[str], start: datetime, end: datetime) -> list[int]:
    """Ids of the items of ``source_ids`` published in [start, end), or fetched in it when they have no date."""
    when = func.coalesce(m.Item.published, m.Item.fetched)
    query = select(m.Item.id).where(m.Item.source_id.in_(source_ids), when >= start, when < end)
    return list(session.scalars(query.order_by(m.Item.id)))


def reprocess(engine: Engine, tagger: Tagger, item_ids: Sequence[int],
              done: Callable[[int], None] = lambda n: None) -> dict[str, Counts]:
    """Normalize (the URL: canonical form and identity) and tag the items again; per source, what changed.
    ``done(n)`` is called after each committed batch of ``n`` items."""
    counts: dict[str, Counts] = {}
    for first in range(0, len(item_ids), BATCH):
        batch = item_ids[first:first + BATCH]
        with Session(engine) as session, session.begin():
            query = (select(m.Item).where(m.Item.id.in_(batch))
                     .options(selectinload(m.Item.tags), selectinload(m.Item.entities)))
            for item in session.scalars(query):
                c = counts.setdefault(item.source_id, Counts())
                c.candidates += 1
                c.updated += renormalize(session, item)
                c.retagged += retag(tagger, item)
        done(len(batch))
    return counts


def renormalize(session: Session, item: m.Item) -> bool:
    """Bring the stored URL (and the identity derived from it) to the current canonical form, unless another item
    already has that identity."""
    if not item.url:
        return False
    url = canonical_url(item.url)
    if url == item.url:
        return False
    key = identity_key(url, None, "", "") if item.key == identity_key(item.url, None, "", "") else item.key
    if key != item.key and session.scalar(select(m.Item.id).where(m.Item.key == key)) is not None:
        logger.warning("item %d: its canonical URL %s is another item's; left as it is", item.id, url)
        return False
    item.url, item.key, item.updated = url, key, utcnow()
    return True


def retag(tagger: Tagger, item: m.Item) -> bool:
    """Tag the item with the current rules; change only the tags, evidence and entity links that differ."""
    article = Article(key=item.key, url=item.url, guid=item.guid, title=item.title, summary=item.summary,
                      published=item.published, text=item.text)
    tag_article(tagger, article)
    return apply_tags(item, article)


def apply_tags(item: m.Item, article: Article) -> bool:
    """Make the item's tags, evidence and entity links those of the tagged ``article``, changing only those that
    differ; returns whether any did."""
    changed = False
    for tag in list(item.tags):
        if tag.topic_id not in article.tags:
            item.tags.remove(tag)
            changed = True
        elif tag.evidence != article.tags[tag.topic_id]:
            tag.evidence = list(article.tags[tag.topic_id])
            changed = True
    have = {t.topic_id for t in item.tags}
    for topic_id, evidence in article.tags.items():
        if topic_id not in have:
            item.tags.append(m.Tag(topic_id=topic_id, evidence=list(evidence)))
            changed = True
    wanted = set(article.entities)
    for link in list(item.entities):
        if link.entity_id not in wanted:
            item.entities.remove(link)
            changed = True
    for entity_id in wanted - {e.entity_id for e in item.entities}:
        item.entities.append(m.ItemEntity(entity_id=entity_id))
        changed = True
    return changed


def stored_articles(engine: Engine, source_id: str, articles: Iterable[Article]) -> set[str]:
    """Keys of the ``articles`` that are stored already: by key (any source), or by GUID within the source."""
    articles = list(articles)
    keys = [a.key for a in articles]
    guids = [a.guid for a in articles if a.guid]
    with Session(engine) as session:
        known = set(session.scalars(select(m.Item.key).where(m.Item.key.in_(keys))))
        if guids:
            known_guids = set(session.scalars(select(m.Item.guid).where(
                m.Item.source_id == source_id, m.Item.guid.in_(guids))))
            known.update(a.key for a in articles if a.guid in known_guids)
    return known


def recluster(engine: Engine, source_ids: Sequence[str], start: datetime, end: datetime) -> int:
    """Cluster the range's items again with the current method (store/stories.py), in one transaction; returns how
    many joined another item's story. A story whose items stay the same keeps its id."""
    from store.stories import recluster as recluster_items

    with Session(engine) as session, session.begin():
        return recluster_items(session, items_in_range(session, source_ids, start, end))
