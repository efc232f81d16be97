"""Match compiled topic queries and entity aliases against a document.

A document (title and body) is tokenized once with the query tokenizer: casefolded runs
of letters/digits, except that every Chinese, Japanese or Korean character is a token of
its own, so Latin text matches on word boundaries and CJK text without them. Token
positions are found on demand through a token -> positions index; character offsets are
computed only for evidence.

Positions are token indices, so ``a NEAR/n b`` (either order, at most n tokens between
the two) counts each CJK character as one word. Title and body form one token sequence
joined by an empty separator token, which no phrase matches; NEAR never pairs a title
span with a body span.

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

Span = tuple[int, int]  # positions of the first and last token
Spans = list[Span] | None  # None: false; []: true without positions (only through NOT)
SNIPPET_CHARS = 240
MAX_SNIPPETS = 3
_SENTENCE_END = re.compile(r"(?:(?<![A-Z])\.|[!?])(?=\s)|[。！？\n]")


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
        super().__init__(f"topic '{topic_id}': {message} at position {position}")
        self.topic_id = topic_id
        self.message = message
        self.position = position


class _Doc:
    """Title and body as one token sequence, with positions and offsets built on demand."""

    __slots__ = ("_offsets", "_positions", "_sorted", "body", "body_start", "entities", "title", "tokens", "vocab")

    def __init__(self, title: str, body: str) -> None:
        self.title, self.body = title, body
        title_tokens = word_tokens(title)
        self.body_start = len(title_tokens) + 1
        self.tokens = [*title_tokens, "", *word_tokens(body)]
        self.vocab = set(self.tokens)
        self.entities: dict[str, list[Span]] = {}
        self._positions: dict[str, list[int]] | None = None
        self._sorted: list[str] | None = None
        self._offsets: list[tuple[int, int]] | None = None

    def positions(self, token: str) -> list[int]:
        """Token indices where ``token`` occurs."""
        if token not in self.vocab:
            return []
        if self._positions is None:
            self._positions = {}
            for i, t in enumerate(self.tokens):
                self._positions.setdefault(t, []).append(i)
        return self._positions[token]

    def prefixed(self, stem: str) -> list[int]:
        """Positions of tokens starting with ``stem``."""
        if self._sorted is None:
            self._sorted = sorted(self.vocab)
        lo = bisect_left(self._sorted, stem)
        tokens = self._sorted[lo : bisect_left(self._sorted, stem + "\U0010ffff", lo)]
        return [p for token in tokens for p in self.positions(token)]

    def phrase_at(self, p: int, tokens: tuple[str, ...], prefix: bool) -> bool:
        """Whether the phrase ``tokens`` starts at position ``p``."""
        last = len(tokens) - 1
        if p + last >= len(self.tokens):
            return False
        doc = self.tokens
        if any(doc[p + i] != tokens[i] for i in range(1, last)):
            return False
        return doc[p + last].startswith(tokens[last]) if prefix else doc[p + last] == tokens[last]

    def locate(self, span: Span) -> tuple[str, int, int]:
        """The field text holding ``span`` and the span's character offsets in it."""
        if self._offsets is None:
            title = [m.span() for m in TOKEN_RE.finditer(self.title)]
            self._offsets = [*title, (0, 0), *(m.span() for m in TOKEN_RE.finditer(self.body))]
        text = self.title if span[0] < self.body_start else self.body
        return text, self._offsets[span[0]][0], self._offsets[span[1]][1]


Matcher = Callable[[_Doc, bool], Spans]  # (document, title only) -> spans


def _compile_node(node: Node) -> Matcher:
    """Turn an AST node into a function (doc, title_only) -> spans, or None when false."""
    match node:
        case Term((token,), False):
            return partial(_match_word, token)
        case Term((stem,), True):
            return partial(_match_prefix, stem)
        case Term(tokens, prefix):
            return partial(_match_phrase, tokens, prefix)
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


def _in_title(spans: list[Span], doc: _Doc, title_only: bool) -> Spans:
    if title_only:
        spans = [s for s in spans if s[0] < doc.body_start]
    return spans or None


def _match_word(token: str, doc: _Doc, title_only: bool) -> Spans:
    if token not in doc.vocab:
        return None
    return _in_title([(p, p) for p in doc.positions(token)], doc, title_only)


def _match_prefix(stem: str, doc: _Doc, title_only: bool) -> Spans:
    return _in_title([(p, p) for p in doc.prefixed(stem)], doc, title_only)


def _match_phrase(tokens: tuple[str, ...], prefix: bool, doc: _Doc, title_only: bool) -> Spans:
    if tokens[0] not in doc.vocab:
        return None
    last = len(tokens) - 1
    found = [(p, p + last) for p in doc.positions(tokens[0]) if doc.phrase_at(p, tokens, prefix)]
    return _in_title(found, doc, title_only)


def _match_entity(entity_id: str, doc: _Doc, title_only: bool) -> Spans:
    return _in_title(doc.entities.get(entity_id, []), doc, title_only)


def _match_title(child: Matcher, doc: _Doc, title_only: bool) -> Spans:
    return child(doc, True)


def _match_not(child: Matcher, doc: _Doc, title_only: bool) -> Spans:
    return None if child(doc, title_only) is not None else []


def _match_and(children: tuple[Matcher, ...], doc: _Doc, title_only: bool) -> Spans:
    spans: list[Span] = []
    for child in children:
        result = child(doc, title_only)
        if result is None:
            return None
        spans += result
    return spans


def _match_or(children: tuple[Matcher, ...], doc: _Doc, title_only: bool) -> Spans:
    results = [r for child in children if (r := child(doc, title_only)) is not None]
    return [s for r in results for s in r] if results else None


def _match_near(left: Matcher, right: Matcher, n: int, doc: _Doc, title_only: bool) -> Spans:
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
    """Bounds of the sentence(s) around text[start:end], looking at most SNIPPET_CHARS either side."""
    begin = max(start - SNIPPET_CHARS, 0)
    for match in _SENTENCE_END.finditer(text, begin, start):
        begin = match.end()
    match = _SENTENCE_END.search(text, end, end + SNIPPET_CHARS)
    if match is None:
        return begin, min(end + SNIPPET_CHARS, len(text))
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
        text = doc.title if doc.title.strip() else doc.body
        return [_clip(text, 0, 0)] if text.strip() else []
    snippets: list[str] = []
    seen = (False, -1)  # (in body, end offset) of the last sentence looked at
    tries = MAX_SNIPPETS * 4  # repetitive text can give the same snippet many times
    for span in sorted(set(spans)):
        text, start, end = doc.locate(span)
        in_body = span[0] >= doc.body_start
        if seen[0] == in_body and start < seen[1]:
            continue
        tries -= 1
        if tries < 0:
            break
        begin, stop = _sentence(text, start, end)
        seen = (in_body, stop)
        snippet = _clip(text[begin:stop], start - begin, end - begin)
        if snippet not in snippets:
            snippets.append(snippet)
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
            spans = matcher(doc, False)
            if spans is not None:
                result.topics[topic_id] = _evidence(doc, spans)
        return result

    def _find_entities(self, doc: _Doc) -> dict[str, list[Span]]:
        found: dict[str, list[Span]] = {}
        for first in doc.vocab & self._aliases.keys():
            for entity_id, tokens in self._aliases[first]:
                last = len(tokens) - 1
                spans = [(p, p + last) for p in doc.positions(first) if doc.phrase_at(p, tokens, False)]
                if spans:
                    found.setdefault(entity_id, []).extend(spans)
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
