"""Measure rules against labelled items: precision, recall and F1 per topic, with the errors explained.

Labelled items are JSON Lines, one object a line: ``{"title", "summary", "labels": [topic ids]}``; other
keys are kept but not needed (``url``, ``outlet``, ``date``, ``language``, ``split``...). An item counts as a
true positive for a topic when it carries the label and the rules tag it, a false positive when the rules
tag it without the label, a false negative the other way round. Each false positive keeps the evidence
that fired; each false negative the nearest miss (the parts of the query that matched and those that did
not), so that a rule can be fixed from the report alone.

An item may list the topics it was judged for (``judged``: the analyst's verdicts from the web view); it then
counts only for those.

Items may name the story they report (``event``). A held-out split is chosen per event, never per item, so
that the held-out figures measure events the rules were not tuned on; :meth:`Report.by_event` gives, per
topic, the share of events with at least one item tagged and the events missed entirely.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .matcher import Clause, Tagger

HOLDOUT_PERCENT = 35  # events (or, without events, items) held back, by a hash of their key


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
    def event(self) -> str:
        """The story the item reports: its ``event``, else its URL, else its line (an event of its own)."""
        for key in ("event", "url"):
            value = self.extra.get(key)
            if isinstance(value, str) and value:
                return value
        return f"line {self.line}"

    def judged(self, topic: str) -> bool:
        """Whether the item speaks for ``topic``: always, unless it lists the topics it was judged for
        (``judged``, as ``talentwatch judgements export`` writes it)."""
        judged = self.extra.get("judged")
        return not isinstance(judged, list) or topic in judged

    @property
    def split(self) -> str:
        """The item's ``split`` if the file gives one, else by :func:`held_back` on its event."""
        split = self.extra.get("split")
        if isinstance(split, str):
            return split
        return "holdout" if held_back(self.event) else "tune"


def held_back(event: str, percent: int = HOLDOUT_PERCENT) -> bool:
    """Whether an event is held back: by a hash of its key, so the choice is fixed before any rule is tuned
    and every item of one event falls on the same side."""
    return int(hashlib.sha256(event.encode()).hexdigest(), 16) % 100 < percent


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
        for key in ("url", "event"):
            if key in self.item.extra:
                record[key] = self.item.extra[key]
        if self.kind == "fp":
            record["evidence"] = self.evidence
        else:
            record["nearest_miss"] = {"matched": {c.text: c.snippets for c in self.nearest if c.snippets is not None},
                                      "missing": [c.text for c in self.nearest if c.snippets is None]}
        return record


@dataclass
class EventScore:
    """For one topic: the events with an item labelled with it, and those of them with no item tagged."""

    topic: str
    events: int
    missed: list[str]

    @property
    def recall(self) -> float:
        return 1 - len(self.missed) / self.events if self.events else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "events": self.events, "tagged": self.events - len(self.missed),
                "event_recall": round(self.recall, 4), "missed": self.missed}


@dataclass
class Report:
    """Scores per topic (in rule order) and the errors, for a set of labelled items; ``tagged`` holds the
    topics the rules gave each item, in the items' order."""

    items: list[LabelledItem]
    scores: list[TopicScore]
    errors: list[Error]
    tagged: list[frozenset[str]]

    def score(self, topic: str) -> TopicScore:
        return next(s for s in self.scores if s.topic == topic)

    def by_event(self) -> list[EventScore]:
        """Per topic: of the events with an item labelled with it, those with no such item tagged."""
        result = []
        for score in self.scores:
            events: dict[str, bool] = {}
            for item, tagged in zip(self.items, self.tagged, strict=True):
                if score.topic in item.labels:
                    events[item.event] = events.get(item.event, False) or score.topic in tagged
            result.append(EventScore(score.topic, len(events), sorted(e for e, hit in events.items() if not hit)))
        return result

    def as_dict(self, by_event: bool = False) -> dict[str, Any]:
        record = {"items": len(self.items), "topics": [s.as_dict() for s in self.scores],
                  "errors": [e.as_dict() for e in self.errors]}
        if by_event:
            record["events"] = [e.as_dict() for e in self.by_event()]
        return record


def evaluate(tagger: Tagger, items: Sequence[LabelledItem], topics: Sequence[str] | None = None) -> Report:
    """Tag every item and compare with its labels, for ``topics`` (default: all topics of the rules)."""
    wanted = list(topics) if topics is not None else tagger.topic_ids
    scores = {topic: TopicScore(topic) for topic in wanted}
    errors: list[Error] = []
    predictions = []
    for item in items:
        tagged = tagger.tag(item.title, item.summary).topics
        predictions.append(frozenset(tagged))
        for topic, score in scores.items():
            if not item.judged(topic):
                continue
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
    return Report(list(items), list(scores.values()), errors, predictions)
