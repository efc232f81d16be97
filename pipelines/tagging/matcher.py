"""Match compiled topic queries and entity aliases against a document.

A document has two fields, title and body, each tokenized once into casefolded tokens
with character offsets and indexed token -> positions. Tokens are maximal runs of
letters/digits, except that every Chinese, Japanese or Korean character is a token of
its own: Latin text matches on word boundaries, CJK text without them.

Positions are token indices within one field, so ``a NEAR/n b`` (either order, at most
n tokens between the two) counts each CJK character as one word and never spans the
title and the body.

Evaluating a node gives ``None`` (false) or the list of spans that made it true; the
list is empty when it is true only through NOT. Spans become the evidence snippets.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

from .query import (
    TOKEN_RE,
    And,
    EntityRef,
    Near,
    Node,
    Not,
    Or,
    QueryError,
    Term,
    Title,
    parse,
    word_tokens,
)

Span = tuple[int, int, int]  # (field, first token, last token)
TITLE, BODY = 0, 1
ANY_FIELD = (TITLE, BODY)
Spans = list[Span] | None  # None: false; []: true without positions (through NOT)
Fields = tuple[int, ...]
SNIPPET_CHARS = 240
MAX_SNIPPETS = 3
_SENTENCE_END = re.compile(r"(?<![A-Z])\.(?=\s)|[!?](?=\s)|[。！？]|\n")


@dataclass(frozen=True)
class Entity:
    """A named thing; its ``name`` is matched as an alias too."""

    id: str
    name: str
    kind: str
    aliases: tuple[str, ...]


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


class RuleError(ValueError):
    """A topic whose query is bad or names an unknown entity."""

    def __init__(self, topic_id: str, message: str, position: int) -> None:
        super().__init__(f"topic {topic_id!r}: {message} at position {position}")
        self.topic_id = topic_id
        self.message = message
        self.position = position


class _Field:
    """One field's text and tokens; positions, sorted vocabulary and offsets built on demand."""

    __slots__ = ("_offsets", "_positions", "_sorted", "text", "tokens", "vocab")

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = word_tokens(text)
        self.vocab = set(self.tokens)
        self._positions: dict[str, list[int]] = {}
        self._sorted: list[str] | None = None
        self._offsets: list[tuple[int, int]] | None = None

    def positions(self, token: str) -> list[int]:
        """Token indices where ``token`` occurs."""
        if token not in self.vocab:
            return []
        found = self._positions.get(token)
        if found is None:
            found = self._positions[token] = [i for i, t in enumerate(self.tokens) if t == token]
        return found

    def find(self, tokens: tuple[str, ...], prefix: bool) -> list[int]:
        """Start positions of the phrase ``tokens`` (last token a prefix if ``prefix``)."""
        if len(tokens) > 1:
            return [p for p in self.positions(tokens[0]) if self.phrase_at(p, tokens, prefix)]
        if not prefix:
            return self.positions(tokens[0])
        completions = self._completions(tokens[0])
        if len(completions) == 1:
            return self.positions(completions[0])
        return [p for token in completions for p in self.positions(token)]

    def phrase_at(self, p: int, tokens: tuple[str, ...], prefix: bool) -> bool:
        last = len(tokens) - 1
        if p + last >= len(self.tokens):
            return False
        doc = self.tokens
        if any(doc[p + i] != tokens[i] for i in range(1, last)):
            return False
        return doc[p + last].startswith(tokens[last]) if prefix else doc[p + last] == tokens[last]

    def offsets(self, position: int) -> tuple[int, int]:
        """Character offsets (start, end) of the token at ``position`` in ``text``."""
        if self._offsets is None:
            self._offsets = [m.span() for m in TOKEN_RE.finditer(self.text)]
        return self._offsets[position]

    def _completions(self, stem: str) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.vocab)
        lo = bisect_left(self._sorted, stem)
        hi = bisect_left(self._sorted, stem + "\U0010ffff")
        return self._sorted[lo:hi]


class _Doc:
    __slots__ = ("entities", "fields")

    def __init__(self, title: str, body: str) -> None:
        self.fields = (_Field(title), _Field(body))
        self.entities: dict[str, list[Span]] = {}


Matcher = Callable[[_Doc, Fields], Spans]


def _compile_node(node: Node) -> Matcher:
    """Turn an AST node into a function (doc, fields) -> spans, or None when false."""
    match node:
        case Term(tokens, prefix):
            return partial(_match_term, tokens, prefix, len(tokens) - 1)
        case EntityRef(entity_id):
            return partial(_match_entity, entity_id)
        case Title(child):
            return partial(_match_title, _compile_node(child))
        case Not(child):
            return partial(_match_not, _compile_node(child))
        case And(children):
            return partial(_match_and, tuple(map(_compile_node, children)))
        case Or(children):
            return partial(_match_or, tuple(map(_compile_node, children)))
        case Near(left, right, n):
            return partial(_match_near, _compile_node(left), _compile_node(right), n)
    raise TypeError(f"not a query node: {node!r}")


def _match_term(tokens: tuple[str, ...], prefix: bool, last: int, doc: _Doc, fields: Fields) -> Spans:
    spans = [(f, p, p + last) for f in fields for p in doc.fields[f].find(tokens, prefix)]
    return spans or None


def _match_entity(entity_id: str, doc: _Doc, fields: Fields) -> Spans:
    return [s for s in doc.entities.get(entity_id, ()) if s[0] in fields] or None


def _match_title(child: Matcher, doc: _Doc, fields: Fields) -> Spans:
    return child(doc, (TITLE,))


def _match_not(child: Matcher, doc: _Doc, fields: Fields) -> Spans:
    return None if child(doc, fields) is not None else []


def _match_and(children: tuple[Matcher, ...], doc: _Doc, fields: Fields) -> Spans:
    spans: list[Span] = []
    for child in children:
        result = child(doc, fields)
        if result is None:
            return None
        spans += result
    return spans


def _match_or(children: tuple[Matcher, ...], doc: _Doc, fields: Fields) -> Spans:
    results = [r for child in children if (r := child(doc, fields)) is not None]
    return [s for r in results for s in r] if results else None


def _match_near(left: Matcher, right: Matcher, n: int, doc: _Doc, fields: Fields) -> Spans:
    lefts = left(doc, fields)
    rights = right(doc, fields) if lefts else None
    if not lefts or not rights:
        return None
    return sorted(set(_near_pairs(lefts, sorted(set(rights)), n))) or None


def _near_pairs(lefts: list[Span], rights: list[Span], n: int) -> Iterator[Span]:
    """Spans covering a left and a right span in one field with at most n tokens between."""
    keys = [(f, start) for f, start, _ in rights]
    longest = max(end - start for _, start, end in rights)
    for a in lefts:
        f, start, end = a
        lo = bisect_left(keys, (f, start - n - 1 - longest))
        hi = bisect_right(keys, (f, end + n + 1))
        for b in rights[lo:hi]:
            if b != a and max(b[1] - end, start - b[2]) - 1 <= n:
                yield (f, min(start, b[1]), max(end, b[2]))


def _entity_refs(node: Node) -> Iterator[EntityRef]:
    match node:
        case EntityRef():
            yield node
        case Title(child) | Not(child):
            yield from _entity_refs(child)
        case And(children) | Or(children):
            for child in children:
                yield from _entity_refs(child)
        case Near(left, right):
            yield from _entity_refs(left)
            yield from _entity_refs(right)


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    """Bounds of the sentence(s) enclosing text[start:end]."""
    begin = 0
    for match in _SENTENCE_END.finditer(text, 0, start):
        begin = match.end()
    match = _SENTENCE_END.search(text, end)
    if match is None:
        return begin, len(text)
    return begin, match.start() if match.group() == "\n" else match.end()


def _clip(text: str, start: int, end: int) -> str:
    """text around text[start:end], at most SNIPPET_CHARS long, '…' where cut."""
    if len(text) > SNIPPET_CHARS:
        room = max(SNIPPET_CHARS - (end - start), 0)
        lo = max(start - room // 2, 0)
        hi = min(lo + SNIPPET_CHARS, len(text))
        lo = max(hi - SNIPPET_CHARS, 0)
        text = ("…" if lo else "") + text[lo:hi] + ("…" if hi < len(text) else "")
    return " ".join(text.split())


def _evidence(doc: _Doc, spans: list[Span]) -> list[str]:
    """Up to MAX_SNIPPETS snippets, one per sentence, title first; the title if no spans."""
    if not spans:
        text = doc.fields[TITLE].text.strip() or doc.fields[BODY].text
        return [_clip(text, 0, 0)] if text.strip() else []
    seen: set[tuple[int, int, int]] = set()
    snippets: list[str] = []
    for f, first, last in sorted(set(spans)):
        fld = doc.fields[f]
        start, end = fld.offsets(first)[0], fld.offsets(last)[1]
        begin, stop = _sentence(fld.text, start, end)
        snippet = _clip(fld.text[begin:stop], start - begin, end - begin)
        if (f, begin, stop) not in seen and snippet not in snippets:
            snippets.append(snippet)
        seen.add((f, begin, stop))
        if len(snippets) == MAX_SNIPPETS:
            break
    return snippets


class Tagger:
    """Tags documents with topics and entities; compile once, call :meth:`tag` per item."""

    def __init__(self, topics: Sequence[Topic], entities: Sequence[Entity]) -> None:
        """Compile all queries and aliases; raise :class:`RuleError` for a bad topic."""
        self._aliases: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for entity in entities:
            phrases = {tuple(word_tokens(alias)) for alias in (entity.name, *entity.aliases)}
            for tokens in sorted(p for p in phrases if p):
                self._aliases.setdefault(tokens[0], []).append((entity.id, tokens))
        known = {entity.id for entity in entities}
        self._topics = [(topic.id, _compile(topic, known)) for topic in topics]

    def tag(self, title: str, body: str) -> TagResult:
        """Return the topics (with evidence) and entities found in one document."""
        doc = _Doc(title, body)
        doc.entities = self._find_entities(doc)
        result = TagResult(entities=sorted(doc.entities))
        for topic_id, matcher in self._topics:
            spans = matcher(doc, ANY_FIELD)
            if spans is not None:
                result.topics[topic_id] = _evidence(doc, spans)
        return result

    def _find_entities(self, doc: _Doc) -> dict[str, list[Span]]:
        found: dict[str, list[Span]] = {}
        for f, fld in enumerate(doc.fields):
            for first in fld.vocab & self._aliases.keys():
                for entity_id, tokens in self._aliases[first]:
                    for p in fld.positions(first):
                        if fld.phrase_at(p, tokens, False):
                            found.setdefault(entity_id, []).append((f, p, p + len(tokens) - 1))
        return found


def _compile(topic: Topic, known: set[str]) -> Matcher:
    try:
        node = parse(topic.query)
    except QueryError as exc:
        raise RuleError(topic.id, exc.message, exc.position) from exc
    for ref in _entity_refs(node):
        if ref.id not in known:
            raise RuleError(topic.id, f"unknown entity '@{ref.id}'", ref.pos)
    return _compile_node(node)
