"""Entity aliases: which entities a document mentions, and where.

An alias is a phrase of tokens matched on word boundaries (Latin) or without them (CJK),
case-insensitively, except the entity's case-sensitive aliases, which must also match the
original case token by token ("Meta" the company, not "meta" the word; "BIS", not "bis").
An entity's ``exclude`` phrases, when present anywhere in the document, switch its
case-sensitive aliases off: "BIS" next to "Bank for International Settlements" is not the
Bureau of Industry and Security.

The longest alias wins among entities of the same kind: an occurrence inside a longer alias
of another entity of that kind is part of that name, not a mention of its own (商务部,
MOFCOM, inside 美国商务部, the US Commerce Department; 北京 inside 北京大学). Across kinds
both count: 美国商务部 mentions the United States too.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .prefilter import key
from .query import is_token_char, raw_tokens, word_tokens

if TYPE_CHECKING:
    from .document import Doc, Span
    from .matcher import Entity


@dataclass(frozen=True)
class _Alias:
    entity_id: str
    kind: str
    tokens: tuple[str, ...]  # casefolded
    exact: tuple[str, ...] | None  # the original case, for case-sensitive aliases

    @functools.cached_property
    def marked(self) -> str:
        """The alias as it appears in :attr:`Doc.joined` (or, case-sensitive, in the raw tokens)."""
        return f" {' '.join(self.exact or self.tokens)} "

    @functools.cached_property
    def marked_folded(self) -> str:
        """The alias's key: how it shows in :attr:`Doc.joined`, whatever its case."""
        return key(self.tokens)


class AliasIndex:
    """All aliases of all entities, by their key (the alias as it shows in the joined tokens, casefolded)."""

    def __init__(self, entities: Sequence[Entity]) -> None:
        self._by_entity: dict[str, list[_Alias]] = {}
        self._exclude: dict[str, list[str]] = {}
        for entity in entities:
            self._by_entity[entity.id] = _aliases(entity)
            phrases = [word_tokens(p) for p in entity.exclude]
            if marked := [key(p) for p in phrases if p]:
                self._exclude[entity.id] = marked
        every = [a for aliases in self._by_entity.values() for a in aliases]
        self._shadows = _shadows(every)
        # An alias of any case that nothing shadows is present iff its key is found: a set lookup.
        self._plain: dict[str, set[str]] = {}
        self._checked: dict[str, list[_Alias]] = {}
        for alias in every:
            if alias.exact is None and id(alias) not in self._shadows:
                self._plain.setdefault(alias.marked_folded, set()).add(alias.entity_id)
            else:
                self._checked.setdefault(alias.marked_folded, []).append(alias)
        self._plain_keys = frozenset(self._plain)
        self._checked_keys = frozenset(self._checked)
        # what the scan must report (Doc.found): every alias and every exclude phrase
        self.keys = self._plain_keys | self._checked_keys | {m for ms in self._exclude.values() for m in ms}

    def phrases_of(self, entity_id: str) -> list[tuple[str, ...]]:
        """The (casefolded) tokens of an entity's aliases: what the prefilter looks for."""
        return list(dict.fromkeys(alias.tokens for alias in self._by_entity.get(entity_id, ())))

    def mentioned(self, doc: Doc) -> list[str]:
        """Sorted ids of the entities the document mentions."""
        found = doc.found
        ids: set[str] = set()
        for marked in self._plain_keys.intersection(found):
            ids |= self._plain[marked]
        for marked in self._checked_keys.intersection(found):
            for alias in self._checked[marked]:
                if alias.entity_id in ids or not self._occurs(doc, alias):
                    continue
                if not self._shadowed_here(doc, alias) or self._spans(doc, alias):
                    ids.add(alias.entity_id)
        return sorted(ids)

    def spans(self, doc: Doc, entity_id: str) -> list[Span]:
        """Where the entity's aliases occur in the document."""
        spans = []
        for alias in self._by_entity.get(entity_id, ()):
            if self._occurs(doc, alias):
                spans += self._spans(doc, alias)
        return spans

    def _shadowed_here(self, doc: Doc, alias: _Alias) -> bool:
        """Whether a longer alias that could contain this one occurs in the document at all."""
        return any(shadow.marked_folded in doc.found for shadow in self._shadows.get(id(alias), ()))

    def _spans(self, doc: Doc, alias: _Alias) -> list[Span]:
        """The alias's occurrences, less those inside a longer alias of another entity."""
        last = len(alias.tokens) - 1
        spans = [(p, p + last) for p in doc.positions(alias.tokens[0]) if self._at(doc, p, alias)]
        longer = [s for shadow in self._shadows.get(id(alias), ()) if shadow.marked_folded in doc.found
                  for s in self._spans(doc, shadow)]
        return [s for s in spans if not any(a <= s[0] and s[1] <= b for a, b in longer)]

    def _occurs(self, doc: Doc, alias: _Alias) -> bool:
        if alias.marked_folded not in doc.found:  # necessary, in any case
            return False
        if alias.exact is not None:
            if len(alias.exact) == 1:
                found = _has_word(doc.title, alias.exact[0]) or _has_word(doc.body, alias.exact[0])
            else:
                found = doc.has_phrase(alias.marked, exact_case=True)
            if not found or self._excluded(doc, alias.entity_id):
                return False
        return True

    def _excluded(self, doc: Doc, entity_id: str) -> bool:
        return any(marked in doc.found for marked in self._exclude.get(entity_id, ()))

    def _at(self, doc: Doc, p: int, alias: _Alias) -> bool:
        if len(alias.tokens) > 1 and not doc.phrase_at(p, alias.tokens, False):
            return False
        return alias.exact is None or doc.raw(p, p + len(alias.tokens)) == alias.exact


def _has_word(text: str, word: str) -> bool:
    """Whether ``word`` (a token in its original case) occurs in the text as a whole token."""
    end = len(text)
    i = text.find(word)
    while i >= 0:
        j = i + len(word)
        if (i == 0 or not is_token_char(text[i - 1])) and (j == end or not is_token_char(text[j])):
            return True
        i = text.find(word, i + 1)
    return False


def _aliases(entity: Entity) -> list[_Alias]:
    case_sensitive = set(entity.case_sensitive)
    aliases: dict[tuple[tuple[str, ...], tuple[str, ...] | None], _Alias] = {}
    for text in (entity.name, *entity.aliases):
        tokens = tuple(word_tokens(text))
        if not tokens:
            continue
        exact = tuple(raw_tokens(text)) if text in case_sensitive else None
        aliases.setdefault((tokens, exact), _Alias(entity.id, entity.kind, tokens, exact))
    return list(aliases.values())


def _shadows(aliases: list[_Alias]) -> dict[int, list[_Alias]]:
    """By id of an alias: the longer aliases of other entities of its kind that contain it as consecutive tokens."""
    containing: dict[str, list[_Alias]] = {}
    for alias in aliases:
        for token in set(alias.tokens):
            containing.setdefault(token, []).append(alias)
    shadows: dict[int, list[_Alias]] = {}
    for alias in aliases:
        n = len(alias.tokens)
        for other in containing.get(alias.tokens[0], ()):
            if (other.entity_id != alias.entity_id and other.kind == alias.kind and len(other.tokens) > n
                    and any(other.tokens[i : i + n] == alias.tokens for i in range(len(other.tokens) - n + 1))):
                shadows.setdefault(id(alias), []).append(other)
    return shadows
