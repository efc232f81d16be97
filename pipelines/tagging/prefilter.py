"""A cheap necessary condition for a query, checked before the query itself runs.

The condition is the query with positions forgotten: NEAR becomes AND, ``title:`` is dropped,
NOT is dropped (a negated part requires nothing), and every word, wildcard, phrase and
@entity becomes a presence test for a *key*: the term as it appears in a document's tokens
joined by single spaces (" word ", " stem" for a wildcard, " two words "; :func:`key`). The
Tagger finds which keys of all its rules occur in a document in one pass (:mod:`.scan`), so
each test is a set lookup. Words, wildcards, phrases and entities under one OR merge into a
single :class:`Clause`; each part of the condition also has a ``quick`` clause, a weaker
condition of one set test, tried first (a topic's whole condition usually fails on that one
test). A document failing the condition cannot match; only the few that pass are evaluated
with positions. This is the multi-pattern prefilter that keeps tagging fast when most items
are about something else.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from .query import And, EntityRef, Near, Node, Not, Or, Term, Title

Found = Collection[str]  # the keys that occur in a document


def key(tokens: Sequence[str], prefix: bool = False) -> str:
    """How a phrase (or, with ``prefix``, a phrase whose last token is a stem) shows in the joined tokens."""
    return f" {' '.join(tokens)}" + ("" if prefix else " ")


@dataclass(frozen=True)
class Clause:
    """True if one of ``keys`` occurs in the document."""

    keys: frozenset[str]

    def possible(self, found: Found) -> bool:
        return not self.keys.isdisjoint(found)

    def merge(self, other: Clause) -> Clause:
        return Clause(self.keys | other.keys)

    @property
    def quick(self) -> Clause:
        """A weaker condition of one set test: the clause itself."""
        return self

    @functools.cached_property
    def cost(self) -> int:
        """How often the clause is expected to hold (a guess used for ordering; correctness does not depend on it)."""
        return len(self.keys) + 100 * len(self.keys & COMMON)


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Requirement, ...]  # the most selective first

    def possible(self, found: Found) -> bool:
        for part in self.parts:
            if part.quick.keys.isdisjoint(found) or not part.possible(found):
                return False
        return True

    @functools.cached_property
    def quick(self) -> Clause:
        """A weaker condition, one set test: the most selective part's."""
        return min((part.quick for part in self.parts), key=lambda c: c.cost)

    @property
    def cost(self) -> int:
        return self.quick.cost


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Requirement, ...]

    def possible(self, found: Found) -> bool:
        for part in self.parts:
            if not part.quick.keys.isdisjoint(found) and part.possible(found):
                return True
        return False

    @functools.cached_property
    def quick(self) -> Clause:
        """A weaker condition, one set test: any part's."""
        quick = self.parts[0].quick
        for part in self.parts[1:]:
            quick = quick.merge(part.quick)
        return quick

    @property
    def cost(self) -> int:
        return self.quick.cost


Requirement = Clause | AllOf | AnyOf

# Frequent words of news text: a requirement built on them rarely rejects anything, so they count as expensive.
COMMON = frozenset(key((word,)) for word in """
a about after again against all also an and any are as at back be because been before being but by can
china chinese could country day did do does down each even first for from get go going had has have he her
him his how i if in into is it its just know last like made make many may me more most much must my new no
not now of off on one only or other our out over people said say says see she should since so some still
such take than that the their them then there these they this those through time to two up us use very
want was way we well were what when where which while who why will with world would year years you your
ai tech technology us u s american america company companies government state states report reports
""".split())
EntityPhrases = Callable[[str], Sequence[tuple[str, ...]]]  # entity id -> its aliases' (casefolded) tokens


class Prefilter:
    """``possible(found)`` is False only when the query cannot match the document."""

    def __init__(self, node: Node, entity_phrases: EntityPhrases) -> None:
        self.requirement = requirement(node, entity_phrases)
        self._quick = self.requirement.quick.keys if self.requirement is not None else None

    @property
    def gate(self) -> frozenset[str] | None:
        """Keys one of which every document that passes has (None: a document may pass without any)."""
        return self._quick

    @property
    def keys(self) -> frozenset[str]:
        """Every key the checks look up (the scan must report each of these that occurs)."""
        return frozenset().union(*(c.keys for c in _clauses(self.requirement)))

    def possible(self, found: Found) -> bool:
        if self._quick is None:
            return True
        return not self._quick.isdisjoint(found) and self.requirement.possible(found)  # type: ignore[union-attr]


def requirement(node: Node, entity_phrases: EntityPhrases) -> Requirement | None:
    """What a document must contain for ``node`` to match; None: nothing (e.g. under NOT)."""
    match node:
        case Term(tokens, prefix):
            return Clause(frozenset((key(tokens, prefix),)))
        case EntityRef(entity_id):
            return Clause(frozenset(key(phrase) for phrase in entity_phrases(entity_id)))
        case Title(child):
            return requirement(child, entity_phrases)
        case Not():
            return None
        case And(children):
            return _all([requirement(c, entity_phrases) for c in children])
        case Near(left, right):
            return _all([requirement(left, entity_phrases), requirement(right, entity_phrases)])
        case Or(children):
            return _any([requirement(c, entity_phrases) for c in children])
    raise TypeError(f"not a query node: {node!r}")


def _all(parts: list[Requirement | None]) -> Requirement | None:
    flat: list[Requirement] = []
    for part in parts:
        if isinstance(part, AllOf):
            flat.extend(part.parts)
        elif part is not None:
            flat.append(part)
    if not flat:
        return None
    flat.sort(key=lambda p: p.cost)  # the most selective first
    return flat[0] if len(flat) == 1 else AllOf(tuple(flat))


def _any(parts: list[Requirement | None]) -> Requirement | None:
    if any(part is None for part in parts):
        return None
    clauses = [p for p in parts if isinstance(p, Clause)]
    others = [p for part in parts if not isinstance(part, Clause)
              for p in (part.parts if isinstance(part, AnyOf) else (part,))]
    merged: list[Requirement] = []
    if clauses:
        clause = clauses[0]
        for other in clauses[1:]:
            clause = clause.merge(other)
        merged.append(clause)
    merged.extend(others)
    return merged[0] if len(merged) == 1 else AnyOf(tuple(merged))


def _clauses(req: Requirement | None) -> list[Clause]:
    if req is None:
        return []
    if isinstance(req, Clause):
        return [req]
    return [c for part in req.parts for c in _clauses(part)]
