"""Lexer and recursive-descent parser for topic queries.

Grammar, loosest binding first::

    query    := or_expr EOF
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*        adjacent operands are ANDed
    unary    := "NOT" unary | near            "a NOT b" is "a AND (NOT b)"
    near     := primary ("NEAR/n" primary)*   left-associative
    primary  := WORD | "PHRASE" | @ENTITY | title: primary | "(" or_expr ")"

Operators are upper-case keywords; ``and``, ``or`` and ``near`` are plain words
(``title:`` is accepted in any case). NEAR operands must give match positions: words,
phrases, @entities, title:-restricted or OR-groups of those, or another NEAR; AND or NOT
inside NEAR is an error at the offending operand.

The tokenizer lives here because query words and documents share it (:func:`word_tokens`):
a word yielding several tokens (``U.S.``, ``出境``) is a phrase, and a trailing ``*``
makes the last token a prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import NamedTuple

# Han, Hiragana, Katakana and Hangul letters (punctuation such as '・' left out).
_CJK = (
    "\u1100-\u11ff\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u3131-\u318e"
    "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7a3\ud7b0-\ud7ff"
    "\uf900-\ufaff\uff66-\uff9f\uffa0-\uffdc\U00020000-\U0003134f"
)
# A maximal run of non-CJK letters and digits, or one CJK character.
TOKEN_RE = re.compile(rf"[^\W_{_CJK}]+|[{_CJK}]")
_RUN_RE = re.compile(r"[^\W_]+")  # the same as TOKEN_RE on text without CJK, and faster
_HAS_CJK = re.compile(rf"[{_CJK}]")


def word_tokens(text: str) -> list[str]:
    """Split text into casefolded tokens: Latin words, single CJK characters."""
    if text.isascii():
        return _RUN_RE.findall(text.lower())
    if _HAS_CJK.search(text) is None:
        return [token.casefold() for token in _RUN_RE.findall(text)]
    return [token.casefold() for token in TOKEN_RE.findall(text)]


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
    kind: str  # WORD PHRASE ENTITY TITLE AND OR NOT NEAR ( ) EOF
    pos: int
    text: str = ""
    n: int = 0


_WORD_END = re.compile(r'[\s()"]')
_OPERAND_START = {"WORD", "PHRASE", "ENTITY", "TITLE", "(", "NOT"}


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
    return _Tok("WORD", pos, word)


def _describe(tok: _Tok) -> str:
    if tok.kind == "EOF":
        return "end of query"
    if tok.kind == "TITLE":
        return "'title:'"
    return f"'{tok.text or tok.kind}'"


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
    def __init__(self, query: str) -> None:
        self.toks = _lex(query)
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
        if tok.kind == "ENTITY":
            return EntityRef(tok.text, tok.pos)
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


def parse(query: str) -> Node:
    """Parse a query into an AST; raise :class:`QueryError` with a 0-based position."""
    return _Parser(query).parse()
