"""The search index: narrows the items a query (the topics' language) can match, so that the query engine evaluates
a few candidates instead of every row; the engine still decides (the index only ever keeps too many).

The condition is the query's prefilter requirement (:meth:`pipelines.tagging.Tagger.requirement`: NEAR as AND, NOT
and ``title:`` dropped, every term a key of casefolded tokens) turned into substrings of the item's title, summary
and text: a Latin token (a wildcard's stem too) is a substring of the text in any case; a run of CJK characters
(each its own token) is the run itself. Tokens of fewer than three characters, and tokens that case folding
changes otherwise than lower case does (ß -> ss), require nothing. The substrings are looked up in an index of
trigrams, which finds any substring of three characters or more:

- SQLite: an FTS5 table ``item_search`` with the trigram tokenizer over items' title, summary and text (revision
  0006). Rows are indexed in bulk by :func:`catch_up` (the workbench does it at start and every minute), not in the
  transaction that stores them: indexing costs more than storing. Items past ``item_search_state.indexed_until``
  are candidates whatever they say, so a lagging index is slower, never wrong. Triggers keep indexed rows right.
- PostgreSQL: a pg_trgm GIN index on the lower-cased concatenation (``items_search_expression``), used by LIKE and
  regular expressions.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import ColumnElement, and_, func, literal_column, or_, select, text, union_all
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from pipelines.tag import body
from pipelines.tagging import Tagger
from pipelines.tagging.prefilter import AllOf, Clause, Requirement
from pipelines.tagging.query import CJK_CHAR
from store import models as m

MIN_CHARS = 3  # trigrams: a shorter substring cannot be looked up


def condition(req: Requirement | None) -> object | None:
    """The requirement as nested ("all", [...]) / ("any", [...]) of substrings; None where nothing is required."""
    if req is None:
        return None
    if isinstance(req, Clause):
        return _any([_key(k) for k in sorted(req.keys)])
    parts = [condition(p) for p in req.parts]
    return _all(parts) if isinstance(req, AllOf) else _any(parts)


def _key(key: str) -> object | None:
    """A key (" two words ", " stem") as the substrings its tokens need; CJK characters in a row as one."""
    tokens = key.strip().split(" ")
    substrings: list[str] = []
    run = ""
    for token in tokens:
        if len(token) == 1 and CJK_CHAR.match(token):  # the tokenizer's CJK tokens are single characters
            run += token
            continue
        if run:
            substrings.append(run)
            run = ""
        substrings.append(token)
    if run:
        substrings.append(run)
    return _all([s if len(s) >= MIN_CHARS and s.lower() == s.casefold() else None for s in substrings])


def _all(parts: list[object | None]) -> object | None:
    kept = [p for p in parts if p is not None]
    return None if not kept else kept[0] if len(kept) == 1 else ("all", kept)


def _any(parts: list[object | None]) -> object | None:
    return None if not parts or any(p is None for p in parts) else parts[0] if len(parts) == 1 else ("any", parts)


def narrowing(req: Requirement | None, dialect: Dialect) -> ColumnElement[bool] | None:
    """A WHERE clause on items that every match of the query satisfies; None: the index cannot narrow."""
    cond = condition(req)
    if cond is None:
        return None
    if dialect.name == "sqlite":
        fts = select(literal_column("rowid")).select_from(text("item_search")).where(
            text("item_search MATCH :search").bindparams(search=_fts5(cond)))
        indexed = select(literal_column("indexed_until")).select_from(text("item_search_state")).scalar_subquery()
        # one IN, not an OR of two: with an OR, SQLite walks every item in the list's order (ix_items_when) to
        # avoid sorting the few candidates
        return m.Item.id.in_(union_all(fts, select(m.Item.id).where(m.Item.id > indexed)))
    if dialect.name == "postgresql":
        return _pg(cond)
    return None


def _fts5(cond: object) -> str:
    """An FTS5 query: a substring as the AND of its trigrams (the index keeps no positions: detail=none)."""
    if isinstance(cond, str):
        grams = dict.fromkeys(cond.lower()[i:i + 3] for i in range(len(cond) - 2))
        return "(" + " AND ".join('"' + g.replace('"', '""') + '"' for g in grams) + ")"
    kind, parts = cond  # type: ignore[misc]
    return "(" + f" {'AND' if kind == 'all' else 'OR'} ".join(_fts5(p) for p in parts) + ")"


def search_expression() -> ColumnElement[str]:
    """What the PostgreSQL trigram index covers (the same expression in the index and in the queries)."""
    return func.lower(func.coalesce(m.Item.title, "") + " " + func.coalesce(m.Item.summary, "") + " "
                      + func.coalesce(m.Item.text, ""))


def _pg(cond: object) -> ColumnElement[bool]:
    """LIKE on the indexed expression; an "any" of substrings as one regular expression (a|b) instead: pg_trgm
    looks it up in the same scan of the index as the conditions beside it, where an OR of LIKEs is a BitmapOr that
    the planner tends not to intersect with them (rechecking thousands of long items). Not with characters from
    U+0800 on (CJK): pg_trgm finds no trigrams in those in a regular expression, only in LIKE."""
    if isinstance(cond, str):
        escaped = cond.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return search_expression().like(f"%{escaped}%", escape="\\")
    kind, parts = cond  # type: ignore[misc]
    if kind == "any" and all(isinstance(p, str) and max(map(ord, p)) < 0x800 for p in parts):
        return search_expression().regexp_match("(" + "|".join(_literal(p) for p in parts) + ")")
    return (and_ if kind == "all" else or_)(*(_pg(p) for p in parts))


def _literal(substring: str) -> str:
    """A substring, lower-cased, as a regular expression matching it (ASCII punctuation escaped)."""
    return "".join("\\" + c if c.isascii() and not c.isalnum() else c for c in substring.lower())


def matching(session: Session, query: Select[tuple[m.Item]], search: Tagger, topic: str = "q") -> Iterator[m.Item]:
    """The items of ``query`` that the search (a Tagger whose one topic is the query, ``Rules.search``) matches:
    the index narrows, the query engine decides, over title, summary and text as the tag stage reads them."""
    clause = narrowing(search.requirement(topic), session.get_bind().dialect)
    rows = session.scalars(query.where(clause) if clause is not None else query)
    return (i for i in rows if search.tag(i.title or "", body(i.summary, i.text)).topics)


CATCH_UP_BATCH = 20_000  # items indexed in one transaction


def catch_up(engine: Engine) -> int:
    """Index the items stored since the last call (SQLite; PostgreSQL's index needs nothing); returns how many."""
    if engine.dialect.name != "sqlite":
        return 0
    done = 0
    while True:
        with engine.begin() as conn:
            start = conn.execute(text("SELECT indexed_until FROM item_search_state")).scalar_one()
            end = conn.execute(text("SELECT max(id) FROM (SELECT id FROM items WHERE id > :start ORDER BY id "
                                    "LIMIT :n)"), {"start": start, "n": CATCH_UP_BATCH}).scalar()
            if end is None:
                return done
            done += conn.execute(text("INSERT INTO item_search(rowid, title, summary, text) SELECT id, title, "
                                      "summary, text FROM items WHERE id > :start AND id <= :end"),
                                 {"start": start, "end": end}).rowcount
            conn.execute(text("UPDATE item_search_state SET indexed_until = :end"), {"end": end})
