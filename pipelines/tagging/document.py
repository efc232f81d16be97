"""A document as the matchers see it: title and body as one token sequence.

Tokens are casefolded runs of letters/digits, except that every Chinese, Japanese or
Korean character is a token of its own (:func:`.query.word_tokens`). Title and body are
joined by a separator token (FIELD_SEPARATOR), which no phrase matches. ``found`` holds the
keys of the rules that occur in the document (:mod:`.scan`): most documents are settled by
it alone. Everything else (the tokens themselves, positions, the vocabulary, original-case
tokens, character offsets) is built on first use, from the joined tokens where the scan made them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection
from typing import TYPE_CHECKING

from .query import FIELD_SEPARATOR, TOKEN_RE, raw_tokens, word_tokens

if TYPE_CHECKING:
    from .entities import AliasIndex

Span = tuple[int, int]  # positions of the first and last token
LOOKUPS_BEFORE_INDEX = 12  # tokens looked up one by one before a document indexes all of its tokens


class Doc:
    """Title and body as one token sequence, with positions and offsets built on demand."""

    __slots__ = ("_body_joined", "_body_start", "_entity_spans", "_indexed", "_joined", "_offsets", "_positions",
                 "_raw", "_raw_joined", "_sorted", "_title_joined", "_tokens", "_vocab", "aliases", "body", "found",
                 "title")

    def __init__(self, title: str, body: str, aliases: AliasIndex | None, found: Collection[str],
                 joined: str | None = None, title_joined: str | None = None, body_joined: str | None = None) -> None:
        """``found``: the keys of the rules that occur in the document (all of them: matchers and entity
        lookups take a key missing from it as absent); ``joined``, else ``title_joined`` and ``body_joined``:
        :attr:`joined` and the fields' tokens joined the same way, where already made."""
        self.title, self.body, self.aliases, self.found = title, body, aliases, found
        self._joined = joined
        self._title_joined, self._body_joined = title_joined, body_joined
        self._tokens: list[str] | None = None
        self._body_start: int | None = None
        self._vocab: set[str] | None = None
        self._positions: dict[str, list[int]] = {}
        self._indexed = False
        self._sorted: list[str] | None = None
        self._raw: list[str] | None = None
        self._raw_joined: str | None = None
        self._offsets: list[tuple[int, int]] | None = None
        self._entity_spans: dict[str, list[Span]] = {}

    @property
    def tokens(self) -> list[str]:
        """Title tokens, FIELD_SEPARATOR, body tokens."""
        if self._tokens is None:
            if self._joined is not None:
                self._tokens = self._joined[1:-1].split(" ")
                self._body_start = self._tokens.index(FIELD_SEPARATOR) + 1
            else:
                title = self._title_joined.split() if self._title_joined is not None else word_tokens(self.title)
                body = self._body_joined.split() if self._body_joined is not None else word_tokens(self.body)
                self._body_start = len(title) + 1
                self._tokens = [*title, FIELD_SEPARATOR, *body]
        return self._tokens

    @property
    def body_start(self) -> int:
        """The position of the first body token."""
        if self._body_start is None:
            self.tokens  # noqa: B018 - sets it
        return self._body_start  # type: ignore[return-value]

    @property
    def vocab(self) -> set[str]:
        """The distinct tokens."""
        if self._vocab is None:
            self._vocab = set(self.tokens)
        return self._vocab

    def positions(self, token: str) -> list[int]:
        """Token indices where ``token`` occurs. The first tokens asked for are looked up one by one (a scan in C);
        a document asked for more has all its tokens indexed in one pass."""
        found = self._positions.get(token)
        if found is not None or self._indexed:
            return found or []
        if len(self._positions) < LOOKUPS_BEFORE_INDEX:
            found = []
            index, i = self.tokens.index, -1
            try:
                while True:
                    i = index(token, i + 1)
                    found.append(i)
            except ValueError:
                pass
            self._positions[token] = found
            return found
        positions: dict[str, list[int]] = {}
        for i, t in enumerate(self.tokens):
            positions.setdefault(t, []).append(i)
        self._positions, self._indexed = positions, True
        return positions.get(token, [])

    @property
    def joined(self) -> str:
        """The tokens joined by single spaces, with a space at each end.

        A phrase occurs iff " " + " ".join(phrase) + " " is a substring; a token starting with a
        stem occurs iff " " + stem is one. Substring search runs in C, so these checks are cheap.
        """
        if self._joined is None:
            if self._title_joined is not None and self._body_joined is not None:
                self._joined = self._title_joined + FIELD_SEPARATOR + self._body_joined
            else:
                self._joined = f" {' '.join(self.tokens)} "
        return self._joined

    def has_phrase(self, marked: str, exact_case: bool = False) -> bool:
        """Whether a phrase (given as " tok1 tok2 ") occurs; ``exact_case``: in the original case."""
        if exact_case:
            if self._raw_joined is None:
                self._raw_joined = f" {' '.join(self._raw_tokens())} "
            return marked in self._raw_joined
        return marked in self.joined

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
        doc = self.tokens
        if p + last >= len(doc):
            return False
        if any(doc[p + i] != tokens[i] for i in range(1, last)):
            return False
        return doc[p + last].startswith(tokens[last]) if prefix else doc[p + last] == tokens[last]

    def raw(self, start: int, end: int) -> tuple[str, ...]:
        """The original-case tokens at positions start..end-1."""
        return tuple(self._raw_tokens()[start:end])

    def _raw_tokens(self) -> list[str]:
        if self._raw is None:
            self._raw = [*raw_tokens(self.title), FIELD_SEPARATOR, *raw_tokens(self.body)]
        return self._raw

    def entity_spans(self, entity_id: str) -> list[Span]:
        """Where the entity's aliases occur (empty without an alias index)."""
        spans = self._entity_spans.get(entity_id)
        if spans is None:
            spans = self.aliases.spans(self, entity_id) if self.aliases else []
            self._entity_spans[entity_id] = spans
        return spans

    def locate(self, span: Span) -> tuple[str, int, int]:
        """The field text holding ``span`` and the span's character offsets in it."""
        if self._offsets is None:
            title = [m.span() for m in TOKEN_RE.finditer(self.title)]
            self._offsets = [*title, (0, 0), *(m.span() for m in TOKEN_RE.finditer(self.body))]
        text = self.title if span[0] < self.body_start else self.body
        return text, self._offsets[span[0]][0], self._offsets[span[1]][1]
