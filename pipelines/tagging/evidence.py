"""Evidence: the sentence(s) around the spans that made a topic match, trimmed for a reader.

A snippet is the sentence holding a matched span (at most SNIPPET_CHARS, cut around the
span with '…' where text was left out), one per sentence, title first, at most
MAX_SNIPPETS per topic. A topic true only through NOT has no span: its evidence is the
title (or the start of the body).
"""

from __future__ import annotations

import re

from .document import Doc, Span

SNIPPET_CHARS = 240
MAX_SNIPPETS = 3
_SENTENCE_END = re.compile(r"(?:(?<![A-Z])\.|[!?])(?=\s)|[。！？\n]")


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


def evidence(doc: Doc, spans: list[Span]) -> list[str]:
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
