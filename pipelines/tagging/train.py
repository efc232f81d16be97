"""Train the learned second route (:mod:`.learned`) from labelled items and write its model file.

    python -m pipelines.tagging.train tests/data/labelled/dev.jsonl [--split tune] [--topics PATH] [--out PATH]

Needs scikit-learn (``pip install -e '.[train]'``); running the model does not. Per topic, a logistic
regression (L2, classes balanced) over :func:`.learned.features` of every item of the split, features seen
in at least two items. The regularisation strength and the threshold are chosen on the same items by
cross-validation grouped by event (no event has items on both sides of a fold): of the thresholds at which
what the model adds to the rules (items they did not tag) keeps a precision of at least ``--precision`` on the
held-out folds, those with the best recall of rules-or-model, and of those the middle one, so the model adds
what the rules miss without adding noise; of equal recalls, the strongest regularisation. A topic for which
the model adds no recall on the held-out folds is left out of the model. Prints the cross-validated figures;
writes the model where the rules' ``[learned] model`` points (default) or to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .evaluate import LabelledItem, read_labelled
from .learned import MODEL_VERSION, features
from .matcher import Tagger
from .rules import load_rules

C_VALUES = (0.1, 0.3, 1.0, 3.0)
FOLDS = 5
MIN_ITEMS = 2  # a feature must occur in at least this many training items
MIN_WEIGHT = 0.02  # smaller weights are left out of the file (they move no decision)
THRESHOLDS = [t / 100 for t in range(30, 100)]


def item_features(tagger: Tagger, item: LabelledItem, kinds: dict[str, str]) -> tuple[dict[str, int], set[str]]:
    """The item's features, and the topics the rules alone give it."""
    doc = tagger.document(item.title, item.summary)
    result = tagger.tag_document(doc, learned=False)
    return features(doc, result.entities, kinds), set(result.topics)


def train(items: Sequence[LabelledItem], tagger: Tagger, kinds: dict[str, str], topics: Sequence[str],
          min_precision: float, log=print) -> dict:  # noqa: ANN001
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    featured = [item_features(tagger, item, kinds) for item in items]
    feats = [{f: 1 for f in present} for present, _ in featured]
    ruled = [tags for _, tags in featured]
    counts: dict[str, int] = {}
    for f in feats:
        for name in f:
            counts[name] = counts.get(name, 0) + 1
    feats = [{k: 1 for k in f if counts[k] >= MIN_ITEMS} for f in feats]
    vectorizer = DictVectorizer()
    x = vectorizer.fit_transform(feats)
    names = vectorizer.get_feature_names_out()
    groups = [item.extra.get("family", item.event) for item in items]  # related events stay in one fold
    model: dict = {"version": MODEL_VERSION, "topics": {}}
    for topic in topics:
        y = [topic in item.labels for item in items]
        rules = [topic in r for r in ruled]
        best = None
        for c in C_VALUES:
            oof = [0.0] * len(items)
            for train_idx, test_idx in GroupKFold(n_splits=FOLDS).split(x, y, groups):
                clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
                clf.fit(x[train_idx], [y[i] for i in train_idx])
                for i, p in zip(test_idx, clf.predict_proba(x[test_idx])[:, 1], strict=True):
                    oof[i] = p
            feasible = []  # (recall, threshold, precision of what the model adds) keeping that precision
            for t in THRESHOLDS:
                added = [yi for yi, r, p in zip(y, rules, oof, strict=True) if not r and p >= t]
                precision = sum(added) / len(added) if added else 1.0
                if precision >= min_precision:
                    tp = sum(1 for yi, r, p in zip(y, rules, oof, strict=True) if yi and (r or p >= t))
                    feasible.append((tp / max(1, sum(y)), t, precision))
            if feasible:
                top = max(f[0] for f in feasible)
                ties = [f for f in feasible if f[0] == top]
                recall, t, precision = ties[len(ties) // 2]  # the middle of the best thresholds
                if best is None or recall > best[0]:
                    best = (recall, precision, c, t)
        rules_recall = sum(1 for yi, r in zip(y, rules, strict=True) if yi and r) / max(1, sum(y))
        if best is None:
            log(f"{topic}: no threshold keeps precision {min_precision}; the model adds nothing")
            continue
        recall, precision, c, t = best
        if recall <= rules_recall:
            log(f"{topic}: cross-validated by event, the model adds nothing to the rules' recall {rules_recall:.3f}; "
                "left out")
            continue
        log(f"{topic}: cross-validated by event, rules alone recall {rules_recall:.3f}; "
            f"rules or model (C={c}, threshold {t:.2f}) recall {recall:.3f}, precision of the model's additions "
            f"{precision:.3f}")
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, y)
        weights = {str(n): round(float(w), 3) for n, w in zip(names, clf.coef_[0], strict=True) if abs(w) >= MIN_WEIGHT}
        model["topics"][topic] = {"bias": round(float(clf.intercept_[0]), 4), "threshold": t,
                                  "C": c, "weights": dict(sorted(weights.items()))}
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.tagging.train", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="labelled items (JSON Lines, with event and split)")
    parser.add_argument("--split", default="tune",
                        help="train on the items of this split (default: tune; 'all': every item)")
    parser.add_argument("--topics", default=str(Path(__file__).resolve().parents[2] / "talentwatch" / "defaults"
                                                / "topics.toml"), help="the rules (default: the shipped ones)")
    parser.add_argument("--out", help="where to write the model (default: the rules' [learned] model)")
    parser.add_argument("--precision", type=float, default=0.9,
                        help="cross-validated precision of the model's additions to keep (default 0.9)")
    args = parser.parse_args(argv)
    rules = load_rules(args.topics)
    tagger = Tagger(rules.topics, rules.entities, rules.lists)  # rules alone
    items = [i for i in read_labelled(args.file, tagger.topic_ids) if args.split in ("all", i.split)]
    kinds = {e.id: e.kind for e in rules.entities}
    model = train(items, tagger, kinds, tagger.topic_ids, args.precision)
    out = Path(args.out) if args.out else rules.model_path
    if out is None:
        parser.error(f"{args.topics} has no [learned] model: give --out")
    out.write_text(json.dumps(model, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size // 1024} KB) from {len(items)} items of split {args.split!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
