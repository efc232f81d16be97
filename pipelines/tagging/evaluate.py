"""Measure rules against labelled items: precision, recall and F1 per topic, with the errors explained.

Labelled items are JSON Lines, one object a line: ``{"title", "summary", "labels": [topic ids]}``; other
keys are kept but not needed (``url``, ``outlet``, ``date``, ``language``, ``split``...). An item counts as a
true positive for a topic when it carries the label and the rules tag it, a false positive when the rules
tag it without the label, a false negative the other way round. Each false positive keeps the evidence
that fired; each false negative the nearest miss (the parts of the query that matched and those that did
not), so that a rule can be fixed from the report alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .matcher import Clause, Tagger

HOLDOUT_SHARE = 5  # one item in five is held back


class LabelledFileError(ValueError):
    """A labelled file that cannot be read: names the file and the line."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        where = f"{path} line {line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass(frozen=True)
class LabelledItem:
    """One labelled item; ``line`` is its 1-based line in the file."""

    title: str
    summary: str
    labels: frozenset[str]
    line: int
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def split(self) -> str:
        """The item's ``split`` if the file gives one, else by :func:`held_back` on its URL."""
        split = self.extra.get("split")
        if isinstance(split, str):
            return split
        url = self.extra.get("url")
        return "holdout" if isinstance(url, str) and held_back(url) else "tune"


def held_back(url: str) -> bool:
    """The held-back fifth: chosen by a hash of the URL, so it is fixed before any rule is tuned."""
    return int(hashlib.sha256(url.encode()).hexdigest(), 16) % HOLDOUT_SHARE == 0


def read_labelled(path: Path | str, topics: Iterable[str]) -> list[LabelledItem]:
    """Read a JSON Lines file of labelled items; LabelledFileError names the file and line of a bad one."""
    known = set(topics)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LabelledFileError(path, None, f"cannot read: {e}") from None
    items = [_item(path, n, line, known) for n, line in enumerate(lines, 1) if line.strip()]
    if not items:
        raise LabelledFileError(path, None, "no labelled items")
    return items


def _item(path: Path | str, n: int, line: str, known: set[str]) -> LabelledItem:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as e:
        raise LabelledFileError(path, n, f"not JSON ({e.msg})") from None
    if not isinstance(raw, dict):
        raise LabelledFileError(path, n, "expected a JSON object")
    for key in ("title", "summary", "labels"):
        if key not in raw:
            raise LabelledFileError(path, n, f"missing '{key}'")
    for key in ("title", "summary"):
        if not isinstance(raw[key], str):
            raise LabelledFileError(path, n, f"'{key}' must be a string")
    labels = raw["labels"]
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise LabelledFileError(path, n, "'labels' must be a list of topic ids")
    unknown = sorted(set(labels) - known)
    if unknown:
        raise LabelledFileError(path, n, f"unknown topic {', '.join(map(repr, unknown))} "
                                         f"(the rules have {', '.join(sorted(known))})")
    extra = {k: v for k, v in raw.items() if k not in ("title", "summary", "labels")}
    return LabelledItem(raw["title"], raw["summary"], frozenset(labels), n, extra)


@dataclass
class TopicScore:
    """Counts for one topic; support is the number of items labelled with it."""

    topic: str
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.support if self.support else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "support": self.support, "tp": self.tp, "fp": self.fp, "fn": self.fn}


@dataclass
class Error:
    """A false positive (with the evidence that fired) or a false negative (with the nearest miss)."""

    kind: str  # "fp" | "fn"
    topic: str
    item: LabelledItem
    evidence: list[str] = field(default_factory=list)
    nearest: list[Clause] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"kind": self.kind, "topic": self.topic, "line": self.item.line,
                                  "title": self.item.title, "labels": sorted(self.item.labels)}
        if "url" in self.item.extra:
            record["url"] = self.item.extra["url"]
        if self.kind == "fp":
            record["evidence"] = self.evidence
        else:
            record["nearest_miss"] = {"matched": {c.text: c.snippets for c in self.nearest if c.snippets is not None},
                                      "missing": [c.text for c in self.nearest if c.snippets is None]}
        return record


@dataclass
class Report:
    """Scores per topic (in rule order) and the errors, for a set of labelled items."""

    items: int
    scores: list[TopicScore]
    errors: list[Error]

    def score(self, topic: str) -> TopicScore:
        return next(s for s in self.scores if s.topic == topic)

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "topics": [s.as_dict() for s in self.scores],
                "errors": [e.as_dict() for e in self.errors]}


def evaluate(tagger: Tagger, items: Sequence[LabelledItem], topics: Sequence[str] | None = None) -> Report:
    """Tag every item and compare with its labels, for ``topics`` (default: all topics of the rules)."""
    wanted = list(topics) if topics is not None else tagger.topic_ids
    scores = {topic: TopicScore(topic) for topic in wanted}
    errors: list[Error] = []
    for item in items:
        tagged = tagger.tag(item.title, item.summary).topics
        for topic, score in scores.items():
            predicted, actual = topic in tagged, topic in item.labels
            if predicted and actual:
                score.tp += 1
            elif predicted:
                score.fp += 1
                errors.append(Error("fp", topic, item, evidence=tagged[topic]))
            elif actual:
                score.fn += 1
                nearest = tagger.explain(topic, item.title, item.summary).clauses
                errors.append(Error("fn", topic, item, nearest=nearest))
    errors.sort(key=lambda e: (wanted.index(e.topic), e.kind, e.item.line))
    return Report(len(items), list(scores.values()), errors)
