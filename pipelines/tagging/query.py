"""Lexer and recursive-descent parser for topic queries.

Grammar, loosest binding first::

    query    := or_expr EOF
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*        adjacent operands are ANDed
    unary    := "NOT" unary | near            "a NOT b" is "a AND (NOT b)"
    near     := primary ("NEAR/n" primary)*   left-associative
    primary  := WORD | "PHRASE" | @ENTITY | $LIST | title: primary | "(" or_expr ")"

``$list-id`` stands for a named term list (``[[terms]]`` in topics.toml): an OR of its words
and phrases, each read as a query word or phrase (a trailing ``*`` is a prefix). A ``$`` not
followed by a letter is an ordinary character (``$18M``). ``@kind:K`` is an OR of every entity of kind K.

Operators are upper-case keywords; ``and``, ``or`` and ``near`` are plain words
(``title:`` is accepted in any case). NEAR operands must give match positions: words,
phrases, @entities, title:-restricted or OR-groups of those, or another NEAR; AND or NOT
inside NEAR is an error at the offending operand.

The tokenizer lives here because query words and documents share it (:func:`word_tokens`):
a word yielding several tokens (``U.S.``, ``出境``) is a phrase, and a trailing ``*``
makes the last token a prefix.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

# Han, Hiragana, Katakana and Hangul letters (punctuation such as '・' left out).
_CJK = (
    "\u1100-\u11ff\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u3131-\u318e"
    "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7a3\ud7b0-\ud7ff"
    "\uf900-\ufaff\uff66-\uff9f\uffa0-\uffdc\U00020000-\U0003134f"
)
# A maximal run of non-CJK letters and digits, or one CJK character.
TOKEN_CHAR = rf"[^\W_{_CJK}]"  # a character of a Latin (non-CJK) token
TOKEN_RE = re.compile(rf"{TOKEN_CHAR}+|[{_CJK}]")
CJK_CHAR = re.compile(rf"[{_CJK}]")
_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")
FIELD_SEPARATOR = "\x1f"  # the token between title and body in a document: no word or phrase matches it


@functools.cache
def _separator_table() -> list[str]:
    """str.translate table for the BMP: separators to a space, CJK characters padded with spaces.

    ``text.translate(table).split()`` gives exactly the tokens of TOKEN_RE (alphanumerics in the
    sense of ``str.isalnum``, as re's ``\\w`` without ``_``), and several times faster.
    """
    table = [" "] * 0x10000
    for cp in range(0x10000):
        ch = chr(cp)
        if CJK_CHAR.match(ch):
            table[cp] = f" {ch} "
        elif ch.isalnum() and ch != "_":
            table[cp] = ch
    return table


def raw_tokens(text: str) -> list[str]:
    """The tokens of :func:`word_tokens` in their original case."""
    if text.isascii() or _BEYOND_BMP.search(text) is None:
        return text.translate(_separator_table()).split()
    return TOKEN_RE.findall(text)


def word_tokens(text: str) -> list[str]:
    """Split text into casefolded tokens: Latin words, single CJK characters."""
    latin = latin_text(text)
    if latin is not None:
        return latin.split()
    tokens = []
    for token, cjk in token_runs(text):
        if token:
            tokens.append(token.casefold())
        else:
            tokens += cjk
    return tokens


def latin_joined(text: str) -> str | None:
    """The tokens of a text without CJK characters joined by single spaces, with a space at each end
    (" " if none); None for a text with CJK characters."""
    latin = latin_text(text)
    return None if latin is None else _single_spaced(f" {latin} ")


def latin_document_joined(title: str, body: str) -> str | None:
    """:attr:`.Doc.joined` of a title and a body without CJK characters (their tokens and FIELD_SEPARATOR
    between them, joined by single spaces, a space at each end), made in one pass; None if either field has
    CJK characters (or FIELD_SEPARATOR, or many non-ASCII characters)."""
    text = f"{title}{FIELD_SEPARATOR}{body}"
    if text.count(FIELD_SEPARATOR) != 1:
        return None
    latin = _latin_text(text, _ascii_bytes_table(FIELD_SEPARATOR), long=False)
    return None if latin is None else _single_spaced(f" {latin.replace(FIELD_SEPARATOR, _SPACED_SEPARATOR)} ")


def latin_text(text: str) -> str | None:
    """A text without CJK characters, casefolded, with every separator a space (its tokens are what
    ``split()`` gives); None for a text with CJK characters."""
    return _latin_text(text, _ascii_bytes_table())


def _latin_text(text: str, bytes_table: bytes, long: bool = True) -> str | None:
    # ASCII is mapped as bytes (a 256-byte table: several times faster than str.translate even on ASCII, which
    # looks up every distinct character). A text whose few non-ASCII characters are separators (curly quotes,
    # dashes) or Latin letters gets those replaced or kept one distinct character at a time, then the same.
    if text.isascii():
        return text.encode().translate(bytes_table).decode()
    nonascii = text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")
    if len(nonascii) > _FEW_NONASCII:
        if not long or CJK_CHAR.search(nonascii):
            return None
        return " ".join(token for token, _ in token_runs(text)).casefold()
    letters = False
    for ch in set(nonascii):
        kind = _KINDS.get(ch) or _kind(ch)
        if kind == _SEPARATOR:
            text = text.replace(ch, " ")
        elif kind == _LETTER:
            letters = True
        else:
            return None
    if not letters:  # ASCII now
        return text.encode().translate(bytes_table).decode()
    return text.encode("utf-8", "surrogatepass").translate(bytes_table).decode("utf-8", "surrogatepass").casefold()


def _single_spaced(text: str) -> str:
    while "  " in text:
        text = text.replace("  ", " ")
    return text


_SPACED_SEPARATOR = f" {FIELD_SEPARATOR} "


def token_runs(text: str) -> list[tuple[str, str]]:
    """The text's Latin tokens (in their original case) and runs of CJK characters, in order, each as
    (token, "") or ("", run); what stands between them (separators) is left out."""
    runs = _bmp_runs() if len(text.encode("utf-16-le", "surrogatepass")) == 2 * len(text) else _RUNS
    return runs.findall(text)


_RUNS = re.compile(rf"({TOKEN_CHAR}+)|([{_CJK}]+)")  # exact for any text, but slow: a category test per character


@functools.cache
def _bmp_runs() -> re.Pattern[str]:
    """_RUNS for text within the Basic Multilingual Plane, with explicit character sets (much faster to test)."""
    latin = [cp for cp in range(0x10000) if chr(cp).isalnum() and cp != ord("_") and not CJK_CHAR.match(chr(cp))]
    ranges, start = [], latin[0]
    for prev, cp in zip(latin, [*latin[1:], -1], strict=True):
        if cp != prev + 1:
            ranges.append(re.escape(chr(start)) + (f"-{re.escape(chr(prev))}" if prev > start else ""))
            start = cp
    return re.compile(f"([{''.join(ranges)}]+)|([{_CJK}]+)")


_ASCII_BYTES = bytes(range(128))
_FEW_NONASCII = 200  # with more non-ASCII characters than this, going character by character is as fast
_SEPARATOR, _LETTER, _CJK_LETTER = 1, 2, 3
_KINDS: dict[str, int] = {}


def is_token_char(ch: str) -> bool:
    """Whether a character is part of a Latin token (TOKEN_CHAR)."""
    kind = _KINDS.get(ch) or _kind(ch)
    return kind == _LETTER


def _kind(ch: str) -> int:
    """Whether a character separates tokens, is part of a Latin token, or is a CJK token."""
    kind = _CJK_LETTER if CJK_CHAR.match(ch) else _LETTER if ch.isalnum() else _SEPARATOR
    if len(_KINDS) < 50_000:
        _KINDS[ch] = kind
    return kind


@functools.cache
def _ascii_bytes_table(keep: str = "") -> bytes:
    """A bytes.translate table: ASCII letters lower-cased, other ASCII characters (separators) but ``keep``
    to a space, the bytes of non-ASCII characters kept."""
    return bytes(b if chr(b).isalnum() or chr(b) in keep else 32 for b in range(128)).lower() + bytes(range(128, 256))


class QueryError(ValueError):
    """A syntax error in a query, at a 0-based character ``position``."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Term:
    """A word or phrase: consecutive tokens; ``prefix`` makes the last one a prefix."""

    tokens: tuple[str, ...]
    prefix: bool
    pos: int


@dataclass(frozen=True)
class EntityRef:
    id: str
    pos: int


@dataclass(frozen=True)
class Title:
    child: Node
    pos: int


@dataclass(frozen=True)
class Not:
    child: Node
    pos: int


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]
    pos: int


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]
    pos: int


@dataclass(frozen=True)
class Near:
    left: Node
    right: Node
    n: int
    pos: int


Node = Term | EntityRef | Title | Not | And | Or | Near


class _Tok(NamedTuple):
    kind: str  # WORD PHRASE ENTITY LIST TITLE AND OR NOT NEAR ( ) EOF
    pos: int
    text: str = ""
    n: int = 0


_WORD_END = re.compile(r'[\s()"]')
_OPERAND_START = {"WORD", "PHRASE", "ENTITY", "LIST", "TITLE", "(", "NOT"}
_LIST_REF = re.compile(r"\$[a-z]")


def _lex(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(query):
        if query[i].isspace():
            i += 1
        elif query[i] in "()":
            toks.append(_Tok(query[i], i))
            i += 1
        elif query[i] == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QueryError("unterminated phrase (missing closing '\"')", i)
            toks.append(_Tok("PHRASE", i, query[i + 1 : end]))
            i = end + 1
        elif query[i : i + 6].lower() == "title:":
            toks.append(_Tok("TITLE", i))
            i += 6
        else:
            match = _WORD_END.search(query, i)
            end = match.start() if match else len(query)
            toks.append(_classify(query[i:end], i))
            i = end
    toks.append(_Tok("EOF", len(query)))
    return toks


def _classify(word: str, pos: int) -> _Tok:
    if word in ("AND", "OR", "NOT"):
        return _Tok(word, pos)
    if word == "NEAR" or word.startswith("NEAR/"):
        digits = word[5:]
        if not (digits.isascii() and digits.isdigit() and int(digits) > 0):
            raise QueryError("NEAR needs a positive word distance, like NEAR/5", pos)
        return _Tok("NEAR", pos, word, int(digits))
    if word.startswith("@"):
        if len(word) == 1:
            raise QueryError("expected an entity id after '@'", pos)
        return _Tok("ENTITY", pos, word[1:])
    if _LIST_REF.match(word):
        return _Tok("LIST", pos, word[1:])
    return _Tok("WORD", pos, word)


def _describe(tok: _Tok) -> str:
    if tok.kind == "EOF":
        return "end of query"
    if tok.kind == "TITLE":
        return "'title:'"
    return f"'{tok.text or tok.kind}'"


def list_words(words: Sequence[str]) -> tuple[Term, ...]:
    """The terms of a term list's words; QueryError's position is the index of the bad word."""
    terms = []
    for n, word in enumerate(words):
        text = word.strip()
        try:
            terms.append(_term(text, 0, quoted=" " in text))
        except QueryError as e:
            raise QueryError(f"{word!r}: {e.message}", n) from None
    return tuple(terms)


def _term(text: str, pos: int, quoted: bool) -> Term:
    prefix = text.endswith("*")
    stem = text[:-1] if prefix else text
    if "*" in stem:
        raise QueryError("'*' is only allowed at the end of a word", pos + quoted + stem.index("*"))
    tokens = tuple(word_tokens(stem))
    if not tokens:
        raise QueryError("empty phrase" if quoted else f"{text!r} has no letters or digits", pos)
    return Term(tokens, prefix, pos)


def _check_positional(node: Node) -> None:
    """Raise unless node yields match positions (NEAR operands must)."""
    if isinstance(node, Title):
        _check_positional(node.child)
    elif isinstance(node, Or):
        for child in node.children:
            _check_positional(child)
    elif isinstance(node, And | Not):
        word = "AND" if isinstance(node, And) else "NOT"
        raise QueryError(
            f"{word} cannot be used inside NEAR (operands must be words, phrases, @entities or OR-groups of them)",
            node.pos,
        )


class _Parser:
    def __init__(self, query: str, lists: Mapping[str, Sequence[str]], kinds: Mapping[str, Sequence[str]]) -> None:
        self.toks = _lex(query)
        self.lists = lists
        self.kinds = kinds
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        self.i += 1
        return self.toks[self.i - 1]

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise QueryError("empty query", 0)
        node = self.or_expr()
        tok = self.peek()
        if tok.kind == ")":
            raise QueryError("unbalanced ')'", tok.pos)
        if tok.kind != "EOF":
            raise QueryError(f"unexpected {_describe(tok)}", tok.pos)
        return node

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.peek().kind == "OR":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts), parts[0].pos)

    def and_expr(self) -> Node:
        parts = [self.unary()]
        while self.peek().kind in _OPERAND_START or self.peek().kind == "AND":
            if self.peek().kind == "AND":
                self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts), parts[0].pos)

    def unary(self) -> Node:
        if self.peek().kind == "NOT":
            tok = self.take()
            return Not(self.unary(), tok.pos)
        return self.near()

    def near(self) -> Node:
        node = self.primary()
        while self.peek().kind == "NEAR":
            n = self.take().n
            if self.peek().kind == "NOT":
                raise QueryError("NOT cannot be used inside NEAR", self.peek().pos)
            right = self.primary()
            _check_positional(node)
            _check_positional(right)
            node = Near(node, right, n, node.pos)
        return node

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind in ("WORD", "PHRASE"):
            return _term(tok.text, tok.pos, quoted=tok.kind == "PHRASE")
        if tok.kind == "ENTITY" and tok.text.startswith("kind:"):
            ids = self.kinds.get(tok.text[5:])
            if not ids:
                known = ", ".join(f"@kind:{k}" for k in sorted(self.kinds)) or "none"
                raise QueryError(f"no entity of kind '@{tok.text}' (kinds: {known})", tok.pos)
            refs = tuple(EntityRef(i, tok.pos) for i in ids)
            return refs[0] if len(refs) == 1 else Or(refs, tok.pos)
        if tok.kind == "ENTITY":
            return EntityRef(tok.text, tok.pos)
        if tok.kind == "LIST":
            words = self.lists.get(tok.text)
            if words is None:
                known = ", ".join(f"${name}" for name in sorted(self.lists)) or "none"
                raise QueryError(f"unknown term list '${tok.text}' (defined: {known})", tok.pos)
            terms = tuple(replace(t, pos=tok.pos) for t in list_words(words))
            return terms[0] if len(terms) == 1 else Or(terms, tok.pos)
        if tok.kind == "TITLE":
            if self.peek().kind not in _OPERAND_START - {"NOT"}:
                raise QueryError("expected a word, phrase or group after 'title:'", tok.pos)
            return Title(self.primary(), tok.pos)
        if tok.kind == "(":
            inner = self.or_expr()
            if self.take().kind != ")":
                raise QueryError("unclosed '('", tok.pos)
            return replace(inner, pos=tok.pos)
        if tok.kind == "EOF":
            prev = self.toks[self.i - 2]
            raise QueryError(f"expected a term after {_describe(prev)}", prev.pos)
        raise QueryError(f"expected a term but found {_describe(tok)}", tok.pos)


def parse(query: str, lists: Mapping[str, Sequence[str]] | None = None,
          kinds: Mapping[str, Sequence[str]] | None = None) -> Node:
    """Parse a query into an AST, ``$name`` taken from ``lists`` (term list id -> words) and ``@kind:K`` from
    ``kinds`` (kind -> entity ids); raise :class:`QueryError` with a 0-based position."""
    return _Parser(query, lists or {}, kinds or {}).parse()
