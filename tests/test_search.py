"""The search index (store/search.py) narrows a query's candidates and never loses a match: on SQLite (FTS5 trigram)
and PostgreSQL (pg_trgm), every query returns exactly what evaluating it over every stored item returns. Data: the
labelled story set (its real items, English and Chinese) stored through the real store."""

from __future__ import annotations

from pathlib import Path

import pytest
import storyset
from conftest import need, pg_available, scratch_database
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipelines.tag import body
from pipelines.tagging.rules import load_rules
from store import models as m
from store.db import open_database
from store.search import catch_up, condition, matching

RULES = load_rules(storyset.TOPICS)
QUERIES = [
    "deepseek", "approv*", '"export controls"', "travel NEAR/8 approv*", "poach* AND NOT meta", "title:nvidia",
    "@deepseek", "@kind:gov", "$approval-words", "h20 OR h200", "出境", "英伟达", "出口管制 AND 芯片",
    "(china OR 中国) NEAR/5 (chip* OR 芯片)", "ai", "talent NEAR/3 war", "passport* OR 护照", "审批",
    "NOT nvidia", "@nvidia AND licen*", "openai AND (hire* OR hiring OR poach*)", "rare NEAR/2 earth*",
    *(t.query for t in RULES.topics),
]


def _store(url: str) -> None:
    storyset.store_stories(storyset.load(), url)


def _check(url: str, index: bool = True) -> None:
    engine = open_database(url)
    if index:
        assert catch_up(engine) == (len(storyset.load()) if engine.dialect.name == "sqlite" else 0)
        assert catch_up(engine) == 0
    with Session(engine) as session:
        everything = list(session.scalars(select(m.Item)))
        total = len(everything)
        narrowed = 0
        for q in QUERIES:
            search = RULES.search(q)
            plain = {i.id for i in everything if search.tag(i.title or "", body(i.summary, i.text)).topics}
            indexed = {i.id for i in matching(session, select(m.Item), search)}
            assert indexed == plain, (q, sorted(plain - indexed)[:5], sorted(indexed - plain)[:5])
            if condition(search.requirement("q")) is not None:
                narrowed += 1
        assert total > 1000 and narrowed >= 14  # the others need a word of two characters or fewer (ai, 出境)
        # the index is used: a rare word's candidates are few
        from store.search import narrowing

        clause = narrowing(RULES.search("英伟达").requirement("q"), session.get_bind().dialect)
        candidates = session.scalar(select(func.count()).select_from(m.Item).where(clause))
        assert 0 < candidates < total / 10 or not index  # not indexed yet: every item is a candidate
    engine.dispose()


def test_indexed_search_equals_plain_evaluation_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'search.db'}"
    _store(url)
    _check(url, index=False)  # stored, not indexed yet: the same results
    _check(url)
    engine = open_database(url)  # an indexed item edited: the index follows
    with engine.begin() as conn:
        conn.execute(m.Item.__table__.update().where(m.Item.id == 1).values(title="Zyxwvut quokka"))
    with Session(engine) as session:
        found = list(matching(session, select(m.Item), RULES.search("quokka")))
        assert [i.id for i in found] == [1]
    engine.dispose()


def test_indexed_search_equals_plain_evaluation_on_postgresql() -> None:
    need(pg_available(), "PostgreSQL is not reachable")
    with scratch_database("tw_search") as url:
        _store(url)
        _check(url)


@pytest.mark.parametrize("query, expected", [
    ("deepseek", "deepseek"),
    ("ai", None),  # too short for trigrams: no narrowing
    ("travel NEAR/8 approv*", ("all", ["approv", "travel"])),
    ("出境审批", "出境审批"),
    ("NOT nvidia", None),
    ("nvidia OR ai", None),  # one alternative needs nothing
])
def test_conditions(query: str, expected: object) -> None:
    cond = condition(RULES.search(query).requirement("q"))
    if isinstance(cond, tuple):
        cond = (cond[0], sorted(cond[1]))
    assert cond == expected
