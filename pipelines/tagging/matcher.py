"""Match compiled topic queries and entity aliases against a document.

A document (title and body) is tokenized (:mod:`.document`): Latin text matches on word
boundaries, CJK text without them, and each CJK character counts as one word for NEAR.
Positions are token indices, so ``a NEAR/n b`` (either order, at most n tokens between the
two) never pairs a title span with a body span.

Every term of every query, every alias and every exclude phrase is a *key* (the term as it
shows in the tokens joined by spaces); one pass over a document finds which keys occur in it
(:mod:`.scan`), before anything else. Each topic is compiled twice: into a
:class:`.prefilter.Prefilter` (keys any match needs, as set tests) and into a matcher, which
runs only for the few documents that pass. Evaluating a matcher gives ``None`` (false) or the
list of spans that made it true; the list is empty when it is true only through NOT. Spans
become the evidence snippets (:mod:`.evidence`). A term whose key did not occur is false
without looking at positions, and so is an entity, AND or NEAR whose prefilter condition the
document's keys fail; most documents are settled by the keys alone.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from .document import Doc, Span
from .entities import AliasIndex
from .evidence import evidence
from .learned import Model
from .prefilter import EntityPhrases, Prefilter, Requirement, key, requirement
from .query import And, EntityRef, Near, Node, Not, Or, QueryError, Term, Title, parse
from .scan import Scanner

Spans = list[Span] | None  # None: false; []: true without positions (only through NOT)
CLAUSE_CHARS = 100


@dataclass(frozen=True)
class Entity:
    """A named thing; its ``name`` is matched as an alias too.

    ``case_sensitive`` lists those of ``aliases`` that match only in their written case;
    ``exclude`` phrases anywhere in a document switch the case-sensitive aliases off.
    """

    id: str
    name: str
    kind: str
    aliases: tuple[str, ...]
    case_sensitive: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Topic:
    """A topic defined by a query."""

    id: str
    name: str
    query: str


@dataclass
class TagResult:
    """Matching topic ids -> evidence snippets (in topic order), and sorted entity ids."""

    topics: dict[str, list[str]] = field(default_factory=dict)
    entities: list[str] = field(default_factory=list)


@dataclass
class Clause:
    """One part of a query and, if the document satisfies it, the snippets that show it."""

    text: str
    snippets: list[str] | None


@dataclass
class Explanation:
    """Why a topic did or did not match: the alternative of its query that came closest."""

    matched: bool
    clauses: list[Clause]

    @property
    def missing(self) -> list[str]:
        return [c.text for c in self.clauses if c.snippets is None]


class RuleError(ValueError):
    """A topic whose query is bad or names an unknown entity."""

    def __init__(self, topic_id: str, message: str, position: int) -> None:
        super().__init__(f"topic '{topic_id}': {message} at position {position}")
        self.topic_id = topic_id
        self.message = message
        self.position = position


Matcher = Callable[[Doc, bool], Spans]  # (document, title only) -> spans


@dataclass(frozen=True)
class _Compiled:
    topic: Topic
    node: Node
    prefilter: Prefilter
    matcher: Matcher
    alternatives: tuple[tuple[tuple[str, Matcher], ...], ...]  # OR of ANDs of (query text, matcher)


class Tagger:
    """Tags documents with topics and entities; compile once, call :meth:`tag` per item."""

    def __init__(self, topics: Sequence[Topic], entities: Sequence[Entity],
                 lists: Mapping[str, Sequence[str]] | None = None, model: Model | None = None) -> None:
        """Compile all queries and aliases, ``$name`` in a query taken from ``lists`` (term list id -> words);
        raise :class:`RuleError` for a bad topic. ``model``: the learned second route (:mod:`.learned`), which
        may add a topic the rules missed to a document that passed the topic's prefilter (it has the terms a
        match of the query needs, but the query did not match)."""
        self._model = model
        self._aliases = AliasIndex(entities)
        self._topics = [_compile(topic, entity_kinds(entities), self._aliases, lists or {}) for topic in topics]
        terms = {key(t.tokens, t.prefix) for c in self._topics for t in _terms(c.node)}
        self._scanner = Scanner(self._aliases.keys.union(terms, *(c.prefilter.keys for c in self._topics)))
        # A document with none of these keys mentions no entity and passes no prefilter (None: a topic's
        # query can match without any term, e.g. one of only NOT).
        gates = [c.prefilter.gate for c in self._topics]
        self._gate = None if None in gates else self._aliases.keys.union(*gates)

    @property
    def topic_ids(self) -> list[str]:
        return [c.topic.id for c in self._topics]

    def document(self, title: str, body: str) -> Doc:
        """The document as the matchers see it, with the keys of the rules found in it (:mod:`.scan`)."""
        found, *joined = self._scanner.scan(title, body)
        return Doc(title, body, self._aliases, found, *joined)

    def reference_document(self, title: str, body: str) -> Doc:
        """:meth:`document` made the slow and obvious way, to check it against: tokenized first, and each key
        of the rules looked up in the joined tokens."""
        doc = Doc(title, body, self._aliases, ())
        joined = doc.joined
        doc.found = {k for k in self._scanner.keys if k in joined}
        return doc

    def tag(self, title: str, body: str) -> TagResult:
        """Return the topics (with evidence) and entities found in one document."""
        found, *joined = self._scanner.scan(title, body)
        if self._gate is not None and self._gate.isdisjoint(found):
            return TagResult()  # most documents
        return self.tag_document(Doc(title, body, self._aliases, found, *joined))

    def tag_document(self, doc: Doc, prefilter: bool = True, learned: bool = True) -> TagResult:
        """:meth:`tag` for a document made by :meth:`document` or :meth:`reference_document`; without
        ``prefilter``, every topic's query is evaluated in full; without ``learned``, the rules alone."""
        result = TagResult(entities=self._aliases.mentioned(doc))
        near_misses = []  # topics whose prefilter lets the document through but whose query did not match
        for compiled in self._topics:
            possible = compiled.prefilter.possible(doc.found)
            if prefilter and not possible:
                continue
            spans = compiled.matcher(doc, False)
            if spans is not None:
                result.topics[compiled.topic.id] = evidence(doc, spans)
            elif possible:
                near_misses.append(compiled.topic.id)
        if learned and self._model is not None and near_misses:
            added = self._model.score(doc, result.entities, near_misses)
            if added:
                result.topics = {t: result.topics.get(t) or added[t] for t in self.topic_ids
                                 if t in result.topics or t in added}
        return result

    def requirement(self, topic_id: str) -> Requirement | None:
        """What a document must contain for the topic's query to match (its prefilter's condition: keys of
        casefolded tokens, see :mod:`.prefilter`); None: nothing is required. A search index narrows on it."""
        return next(c.prefilter.requirement for c in self._topics if c.topic.id == topic_id)

    def candidates(self, title: str, body: str) -> list[str]:
        """The topics whose prefilter lets the document through to the full evaluation."""
        found = self.document(title, body).found
        return [c.topic.id for c in self._topics if c.prefilter.possible(found)]

    def explain(self, topic_id: str, title: str, body: str) -> Explanation:
        """Evaluate a topic's query part by part: the matching alternative, else the nearest miss."""
        compiled = next((c for c in self._topics if c.topic.id == topic_id), None)
        if compiled is None:
            raise KeyError(f"no topic {topic_id!r}")
        doc = self.document(title, body)
        best: list[Clause] = []
        for alternative in compiled.alternatives:
            clauses = []
            for text, matcher in alternative:
                spans = matcher(doc, False)
                clauses.append(Clause(text, None if spans is None else evidence(doc, spans)))
            if all(c.snippets is not None for c in clauses):
                return Explanation(True, clauses)
            if not best or _score(clauses) > _score(best):
                best = clauses
        return Explanation(False, best)


def entity_kinds(entities: Sequence[Entity]) -> dict[str, list[str]]:
    """Entity kind -> the ids of its entities (what ``@kind:K`` in a query stands for)."""
    kinds: dict[str, list[str]] = {}
    for entity in entities:
        kinds.setdefault(entity.kind, []).append(entity.id)
    return kinds


def _score(clauses: list[Clause]) -> tuple[int, int]:
    hits = sum(c.snippets is not None for c in clauses)
    return hits, -len(clauses)


def _compile(topic: Topic, kinds: Mapping[str, Sequence[str]], aliases: AliasIndex,
             lists: Mapping[str, Sequence[str]]) -> _Compiled:
    try:
        node = parse(topic.query, lists, kinds)
    except QueryError as exc:
        raise RuleError(topic.id, exc.message, exc.position) from exc
    known = {i for ids in kinds.values() for i in ids}
    for ref in _entity_refs(node):
        if ref.id not in known:
            raise RuleError(topic.id, f"unknown entity '@{ref.id}'", ref.pos)
    compile_node = partial(_compile_node, phrases=aliases.phrases_of)
    return _Compiled(topic, node, Prefilter(node, aliases.phrases_of), compile_node(node),
                     _alternatives(topic.query, node, compile_node))


def _alternatives(query: str, node: Node, compile_node: Callable[[Node], Matcher],
                  ) -> tuple[tuple[tuple[str, Matcher], ...], ...]:
    """The query as an OR of ANDs (top two levels), each part with its text, for explanations."""
    alternatives = node.children if isinstance(node, Or) and node.children[0].pos < node.children[1].pos else (node,)
    result = []
    for alt, (start, stop) in zip(alternatives, _bounds(alternatives, len(query)), strict=True):
        if isinstance(alt, And):
            bounds = _bounds(alt.children, stop)
            parts = tuple((_text(query, *b), compile_node(c)) for c, b in zip(alt.children, bounds, strict=True))
        else:
            parts = ((_text(query, start, stop), compile_node(alt)),)
        result.append(parts)
    return tuple(result)


def _bounds(nodes: Sequence[Node], end: int) -> list[tuple[int, int]]:
    """Each node's stretch of the query: from its position to the next node's (or ``end``)."""
    return list(zip((n.pos for n in nodes), [*(n.pos for n in nodes[1:]), end], strict=True))


def _text(query: str, start: int, stop: int) -> str:
    text = " ".join(query[start:stop].split())
    for keyword in (" AND", " OR"):
        text = text.removesuffix(keyword)
    return text if len(text) <= CLAUSE_CHARS else text[: CLAUSE_CHARS - 1] + "…"


def _compile_node(node: Node, phrases: EntityPhrases) -> Matcher:
    """Turn an AST node into a function (doc, title_only) -> spans, or None when false. An entity, AND or NEAR is
    first checked against the document's keys (its prefilter condition, a few set tests): positions are looked up
    only where the keys allow a match."""
    def compile_node(child: Node) -> Matcher:
        return _compile_node(child, phrases)

    match node:
        case Term((token,), False):
            return partial(_match_word, token, key((token,)))
        case Term((stem,), True):
            return partial(_match_prefix, stem, key((stem,), True))
        case Term(tokens, prefix):
            return partial(_match_phrase, tokens, prefix, key(tokens, prefix))
        case EntityRef(entity_id):
            return _guarded(node, phrases, partial(_match_entity, entity_id))
        case Title(child):
            return partial(_match_title, compile_node(child))
        case Not(child):
            return partial(_match_not, compile_node(child))
        case And(children):
            return _guarded(node, phrases, partial(_match_and, tuple(map(compile_node, children))))
        case Or(children):
            # A term list makes ORs of many words: only those whose key the document has are evaluated.
            by_key: dict[str, list[Matcher]] = {}
            for child in children:
                if isinstance(child, Term):
                    by_key.setdefault(key(child.tokens, child.prefix), []).append(compile_node(child))
            others = tuple(compile_node(c) for c in children if not isinstance(c, Term))
            return partial(_match_or, frozenset(by_key), by_key, others)
        case Near(left, right, n):
            return _guarded(node, phrases, partial(_match_near, compile_node(left), compile_node(right), n))
    raise TypeError(f"not a query node: {node!r}")


def _guarded(node: Node, phrases: EntityPhrases, matcher: Matcher) -> Matcher:
    condition = requirement(node, phrases)
    return matcher if condition is None else partial(_match_possible, condition, matcher)


def _match_possible(condition: Requirement, matcher: Matcher, doc: Doc, title_only: bool) -> Spans:
    return matcher(doc, title_only) if condition.possible(doc.found) else None


def _in_title(spans: list[Span], doc: Doc, title_only: bool) -> Spans:
    if title_only:
        spans = [s for s in spans if s[0] < doc.body_start]
    return spans or None


def _match_word(token: str, marked: str, doc: Doc, title_only: bool) -> Spans:
    if marked not in doc.found:
        return None
    return _in_title([(p, p) for p in doc.positions(token)], doc, title_only)


def _match_prefix(stem: str, marked: str, doc: Doc, title_only: bool) -> Spans:
    if marked not in doc.found:
        return None
    return _in_title([(p, p) for p in doc.prefixed(stem)], doc, title_only)


def _match_phrase(tokens: tuple[str, ...], prefix: bool, marked: str, doc: Doc, title_only: bool) -> Spans:
    if marked not in doc.found:
        return None
    last = len(tokens) - 1
    found = [(p, p + last) for p in doc.positions(tokens[0]) if doc.phrase_at(p, tokens, prefix)]
    return _in_title(found, doc, title_only)


def _match_entity(entity_id: str, doc: Doc, title_only: bool) -> Spans:
    return _in_title(doc.entity_spans(entity_id), doc, title_only)


def _match_title(child: Matcher, doc: Doc, title_only: bool) -> Spans:
    return child(doc, True)


def _match_not(child: Matcher, doc: Doc, title_only: bool) -> Spans:
    return None if child(doc, title_only) is not None else []


def _match_and(children: tuple[Matcher, ...], doc: Doc, title_only: bool) -> Spans:
    spans: list[Span] = []
    for child in children:
        result = child(doc, title_only)
        if result is None:
            return None
        spans += result
    return spans


def _match_or(keys: frozenset[str], by_key: dict[str, list[Matcher]], others: tuple[Matcher, ...], doc: Doc,
              title_only: bool) -> Spans:
    children = [m for k in keys.intersection(doc.found) for m in by_key[k]]
    results = [r for child in (*children, *others) if (r := child(doc, title_only)) is not None]
    return [s for r in results for s in r] if results else None


def _match_near(left: Matcher, right: Matcher, n: int, doc: Doc, title_only: bool) -> Spans:
    lefts = left(doc, title_only)
    rights = right(doc, title_only) if lefts else None
    if not lefts or not rights:
        return None
    return sorted(set(_near_pairs(lefts, sorted(set(rights)), n, doc.body_start))) or None


def _near_pairs(lefts: list[Span], rights: list[Span], n: int, body_start: int) -> Iterator[Span]:
    """Spans covering a left and a right span in one field with at most n tokens between."""
    starts = [start for start, _ in rights]
    longest = max(end - start for start, end in rights)
    for a in lefts:
        start, end = a
        lo = bisect_left(starts, start - n - 1 - longest)
        for b in rights[lo : bisect_right(starts, end + n + 1)]:
            same_field = (start < body_start) == (b[0] < body_start)
            if b != a and same_field and max(b[0] - end, start - b[1]) - 1 <= n:
                yield (min(start, b[0]), max(end, b[1]))


def _nodes(node: Node) -> Iterator[Node]:
    """Every node of a query tree, depth first."""
    yield node
    match node:
        case Title(child) | Not(child):
            yield from _nodes(child)
        case And(children) | Or(children):
            for child in children:
                yield from _nodes(child)
        case Near(left, right):
            yield from _nodes(left)
            yield from _nodes(right)


def _terms(node: Node) -> Iterator[Term]:
    return (n for n in _nodes(node) if isinstance(n, Term))


def _entity_refs(node: Node) -> Iterator[EntityRef]:
    return (n for n in _nodes(node) if isinstance(n, EntityRef))
