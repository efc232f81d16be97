"""Which of the rules' keys occur in a document, found in one pass per field before any query runs.

A key is a term as it shows in a document's tokens joined by single spaces (:func:`.prefilter.key`):
" word ", " stem" (a wildcard: some token starts with the stem), " two words ". Every query term,
alias and exclude phrase of the rules is one. :meth:`Scanner.scan` reports exactly the keys ``k``
with ``k in Doc.joined``, and for most documents without making the document's token list:

* A field without CJK characters becomes its joined tokens cheaply (:func:`.query.latin_document_joined`:
  ASCII mapped with ``bytes.translate``, a few distinct non-ASCII characters one by one; title and body
  in one go), and those go through one Aho-Corasick automaton (pyahocorasick) holding every key without
  CJK tokens. It reports overlapping matches, so every key that occurs is found, in one pass.
* A field with CJK characters would be costly to tokenize (each character is a token, and
  ``str.translate`` is slow beyond ASCII). One regular expression splits it into Latin tokens and
  runs of CJK characters, separators left out. A key of CJK tokens occurs iff its characters stand
  together in what is left, since CJK characters are consecutive tokens iff nothing but separators
  stands between them; a second automaton finds those keys in its UTF-8 bytes (bytes keep the
  automaton's alphabet small, which its cost per character depends on). The Latin tokens go through
  the first automaton. A key mixing Latin and CJK tokens whose Latin words occur is confirmed on
  the field's tokens; documents that need this are rare.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from operator import itemgetter

import ahocorasick

from .prefilter import key
from .query import CJK_CHAR, FIELD_SEPARATOR, latin_document_joined, latin_joined, token_runs

_first, _second = itemgetter(0), itemgetter(1)


class Scanner:
    """Reports which of a fixed set of keys occur in a document's joined tokens; build once, scan per document.

    :attr:`keys`: the keys given, and a few it looks for on the way (the Latin words of keys that mix Latin and
    CJK tokens); a scan reports each of them iff it occurs.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = frozenset(keys)
        latin: set[str] = set()
        cjk: dict[str, list[str]] = {}  # the CJK characters of a key, without spaces -> keys
        mixed: list[tuple[str, frozenset[str]]] = []  # (key, the keys of its Latin tokens)
        for k in self.keys:
            tokens, prefix = k.split(), not k.endswith(" ")
            is_cjk = [bool(CJK_CHAR.match(t)) for t in tokens]  # a CJK token is a single character
            if not any(is_cjk):
                latin.add(k)
            elif all(is_cjk):
                cjk.setdefault("".join(tokens), []).append(k)
            else:
                last = len(tokens) - 1
                parts = frozenset(key((t,), prefix and i == last) for i, t in enumerate(tokens) if not is_cjk[i])
                mixed.append((k, parts))
                latin |= parts
        self.keys |= latin  # with the keys of mixed keys' Latin tokens: every key the scan reports
        self._latin = _automaton({k: k for k in latin})
        self._mixed = tuple(sorted(mixed))
        self._cjk = _automaton({c.encode().decode("latin-1"): tuple(ks) for c, ks in cjk.items()})

    def scan(self, title: str, body: str) -> tuple[set[str], str | None, str | None, str | None]:
        """The keys that occur in the document, and the document's joined tokens (:attr:`.Doc.joined`),
        else the title's and body's, where they were made."""
        found: set[str] = set()
        joined = latin_document_joined(title, body)
        if joined is not None:  # most documents
            self._latin_keys(joined, found)
            return found, joined, None, None
        title_joined = latin_joined(title)
        body_joined = latin_joined(body)
        if title_joined is not None and body_joined is not None:
            joined = title_joined + FIELD_SEPARATOR + body_joined
            self._latin_keys(joined, found)
            return found, joined, None, None
        if title_joined is None:
            title_joined = self._cjk_field(title, found)
        else:
            self._latin_keys(title_joined, found)
        if body_joined is None:
            body_joined = self._cjk_field(body, found)
        else:
            self._latin_keys(body_joined, found)
        return found, None, title_joined, body_joined

    def _latin_keys(self, joined: str, found: set[str]) -> None:
        if self._latin is not None:
            found.update(map(_second, self._latin.iter(joined)))

    def _cjk_field(self, text: str, found: set[str]) -> str | None:
        """Add the keys found in a field with CJK characters; its joined tokens if they had to be made."""
        latin_cjk = token_runs(text)
        if self._cjk is not None:
            compact = "".join(chain.from_iterable(latin_cjk)).encode(errors="surrogatepass").decode("latin-1")
            found.update(*map(_second, self._cjk.iter(compact)))
        # The Latin tokens, one space between two that follow each other, two where CJK characters stand between
        # (a CJK run gives ""): a key of Latin tokens occurs in the field iff it occurs in this.
        words: set[str] = set()
        self._latin_keys(f" {' '.join(map(_first, latin_cjk))} ".casefold(), words)
        found |= words
        mixed = [k for k, parts in self._mixed if parts <= words]
        if not mixed:
            return None
        tokens = []
        for token, cjk in latin_cjk:
            if token:
                tokens.append(token.casefold())
            else:
                tokens += cjk
        joined = f" {' '.join(tokens)} " if tokens else " "
        found.update(k for k in mixed if k in joined)
        return joined


def _automaton(values: dict[str, object]) -> ahocorasick.Automaton | None:
    if not values:
        return None
    automaton = ahocorasick.Automaton()
    for k in sorted(values):
        automaton.add_word(k, values[k])
    automaton.make_automaton()
    return automaton
