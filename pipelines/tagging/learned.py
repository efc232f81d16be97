"""The learned second route: per topic, a logistic regression over a document's words, word pairs and entities.

It adds a topic the rules missed when its probability reaches the topic's threshold; the rules' tags stand as
they are. The model is a small JSON file (``pipelines/tagging/train.py`` writes it, from labelled items):

    {"version": 1, "topics": {"poaching": {"bias": -3.1, "threshold": 0.7, "weights": {"lure": 1.2, ...}}}}

Features (:func:`features`) are presence, not counts, over the first MAX_TOKENS tokens (the title and the lede,
which is what the labelled items hold): each Latin token of title and body, lightly stemmed
(:func:`stem`), each pair of neighbouring tokens within a field, each pair of neighbouring CJK characters,
each entity the document mentions (``@id``) and its kind (``@kind:org``). Scoring is a sum of the weights of
the features present: no NumPy at run time. A tag it adds carries evidence: the features that weighed most,
and the sentences holding them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .document import Doc, Span
from .evidence import evidence
from .query import CJK_CHAR, FIELD_SEPARATOR

MODEL_VERSION = 1
TOP_FEATURES = 3
MAX_TOKENS = 160  # the title and the lede: what the model was trained on (and a bound on its cost)


class ModelError(ValueError):
    """A model file that cannot be used: says what is wrong with it."""


def stem(token: str) -> str:
    """A light English stemmer: hire, hires, hired, hiring -> hir; curbs -> curb; CJK and short words pass."""
    if len(token) <= 3 or not token.isascii():
        return token
    for suffix in ("ing", "ed", "es", "s"):
        if token.endswith(suffix) and not token.endswith("ss") and len(token) - len(suffix) >= 3:
            token = token[: -len(suffix)]
            break
    return token[:-1] if token.endswith("e") and len(token) > 3 else token


_WORDS: dict[str, tuple[str, bool]] = {}  # token -> (its feature, whether it is a CJK character), a bounded cache


def _word(token: str) -> tuple[str, bool]:
    word = _WORDS.get(token)
    if word is None:
        cjk = len(token) == 1 and not token.isascii() and CJK_CHAR.match(token) is not None
        word = (token if cjk else stem(token), cjk)
        if len(_WORDS) < 200_000:
            _WORDS[token] = word
    return word


def features(doc: Doc, entities: Iterable[str], kinds: Mapping[str, str]) -> dict[str, int]:
    """The document's features, each with the position of its first token (-1 for entities)."""
    found: dict[str, int] = {}
    prev = ""
    prev_cjk = False
    for i, token in enumerate(doc.tokens[:MAX_TOKENS]):
        if token == FIELD_SEPARATOR:
            prev, prev_cjk = "", False
            continue
        feature, cjk = _word(token)
        if prev:
            pair = prev + feature if cjk and prev_cjk else f"{prev} {feature}" if not (cjk or prev_cjk) else None
            if pair is not None and pair not in found:
                found[pair] = i - 1
        if feature not in found:
            found[feature] = i
        prev, prev_cjk = feature, cjk
    for entity_id in entities:
        found.setdefault(f"@{entity_id}", -1)
        if entity_id in kinds:
            found.setdefault(f"@kind:{kinds[entity_id]}", -1)
    return found


@dataclass(frozen=True)
class TopicModel:
    bias: float
    threshold: float
    weights: Mapping[str, float]

    def probability(self, present: Iterable[str]) -> float:
        weights = self.weights
        z = self.bias + sum(weights.get(f, 0.0) for f in present)
        return 1 / (1 + math.exp(-z)) if z > -40 else 0.0


class Model:
    """Per-topic logistic regressions read from a model file."""

    def __init__(self, topics: Mapping[str, TopicModel], kinds: Mapping[str, str]) -> None:
        self.topics = dict(topics)
        self.kinds = dict(kinds)

    @classmethod
    def load(cls, path: Path | str, kinds: Mapping[str, str]) -> Model:
        """Read a model file; ModelError says what is wrong. ``kinds``: entity id -> kind, for ``@kind:`` features."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise ModelError(f"cannot read: {e}") from None
        except json.JSONDecodeError as e:
            raise ModelError(f"not JSON ({e.msg}, line {e.lineno})") from None
        if not isinstance(raw, dict) or raw.get("version") != MODEL_VERSION or not isinstance(raw.get("topics"), dict):
            raise ModelError(f"expected {{\"version\": {MODEL_VERSION}, \"topics\": {{...}}}}")
        topics = {}
        for topic, spec in raw["topics"].items():
            try:
                weights = {str(f): float(w) for f, w in spec["weights"].items()}
                topics[topic] = TopicModel(float(spec["bias"]), float(spec["threshold"]), weights)
            except (KeyError, TypeError, ValueError, AttributeError):
                raise ModelError(f"topic {topic!r}: expected bias, threshold and weights") from None
        return cls(topics, kinds)

    def score(self, doc: Doc, entities: Iterable[str], topics: Iterable[str]) -> dict[str, list[str]]:
        """The ``topics`` the model adds to a document, each with its evidence."""
        wanted = [t for t in topics if t in self.topics]
        if not wanted:
            return {}
        present = features(doc, entities, self.kinds)
        added = {}
        for topic in wanted:
            model = self.topics[topic]
            p = model.probability(present)
            if p >= model.threshold:
                added[topic] = self._evidence(doc, model, present, p)
        return added

    @staticmethod
    def _evidence(doc: Doc, model: TopicModel, present: Mapping[str, int], p: float) -> list[str]:
        top = sorted((f for f in present if model.weights.get(f, 0.0) > 0), key=lambda f: -model.weights[f])
        top = top[:TOP_FEATURES]
        spans: list[Span] = []
        for f in top:
            start = present[f]
            if start >= 0:
                spans.append((start, start + (1 if " " in f or (len(f) == 2 and not f.isascii()) else 0)))
        snippets = evidence(doc, spans) if spans else []
        return [f"learned ({p:.2f})" + (f": {', '.join(top)}" if top else ""), *snippets[:2]]
