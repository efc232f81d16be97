"""Fit the story clustering's evidence weights (``pipelines/cluster.py``: ``WEIGHTS``, ``BIAS``, ``THRESHOLD``) on
labelled stories, and print them to paste into cluster.py.

    .venv/bin/python -m pipelines.cluster_train tests/data/stories/set.jsonl --split tune \\
        --background ../shared/corpus/feeds

The labelled items are taken in publication order, as the store takes them. Each item meets the labelled stories
(not the ones clustering made: what it should have seen) whose first report is at most ``WINDOW_DAYS`` before it and
that share a feature with it, each built as the store builds it (its first report and latest different texts); a
pair gives one row of ``evidence``, labelled by whether the item belongs to that story, and marked by whether it
passes ``may_join`` (the fixed caps).
Document frequencies count the background archive's items (a real store holds thousands) and the items so far.
A logistic regression on all rows gives the weights (the caps would leave it few pairs of different stories to
learn from); the threshold is the probability that best separates the rows that pass the caps (the highest F1).
Only the ``--split`` given is read: the held-out events stay unseen.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines import cluster
from pipelines.tagging.rules import load_rules

TOPICS = Path(__file__).parents[1] / "talentwatch" / "defaults" / "topics.toml"
REPORTS = 8  # as store/stories.py builds a story: its first report and its latest different texts
C = 10.0  # the regression's inverse regularisation (chosen by 5-fold cross-validation by event family, tune only)


def published(item: dict) -> datetime:
    """An item's labelled date; a day alone is taken at noon UTC."""
    if len(item["date"]) > 10:
        return datetime.fromisoformat(item["date"]).astimezone(UTC)
    return datetime.fromisoformat(item["date"]).replace(tzinfo=UTC) + timedelta(hours=12)


Row = tuple[dict[str, float], bool, bool]  # evidence, same story, passes the caps


def pairs(items: Sequence[dict], background: Iterable[tuple[str, str]] = ()) -> list[Row]:
    """(evidence, same story, passes the caps) for each item and each labelled story it shares a feature with."""
    tagger = load_rules(TOPICS).tagger(learned=False)
    df: defaultdict[str, int] = defaultdict(int)
    total = 0
    for title, summary in background:
        for f in cluster.features(title, summary, tagger.tag(title, summary).entities):
            df[f] += 1
        total += 1
    rows = []
    stories: dict[str, list[tuple[datetime, dict, frozenset[str]]]] = defaultdict(list)
    for item in sorted(items, key=published):
        when = published(item)
        feats = cluster.features(item["title"], item["summary"], tagger.tag(item["title"], item["summary"]).entities)
        for f in feats:
            df[f] += 1
        total += 1
        vec, is_cjk = cluster.vector(feats, df, total), cluster.cjk(feats)
        for story, reports in stories.items():
            days = (when - reports[0][0]).total_seconds() / 86400
            if days > cluster.WINDOW_DAYS or not any(feats & other for _, _, other in reports):
                continue
            centroid = cluster.Centroid()
            for _, report, other in [reports[0], *reports[1:][-(REPORTS - 1):]]:
                centroid.add(cluster.vector(other, df, total), cluster.cjk(other), report["outlet"])
            if not item.get("ambiguous"):
                rows.append((cluster.evidence(vec, is_cjk, item["outlet"], centroid, days), story == item["story"],
                             cluster.may_join(vec, is_cjk, item["outlet"], centroid)))
        stories[item["story"]].append((when, item, feats))
    return rows


def fit(rows: Sequence[Row]) -> tuple[dict[str, float], float, float]:
    """Weights and bias of a logistic regression on the rows, and its threshold on those that pass the caps."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import precision_recall_curve

    names = list(rows[0][0])
    x = [[ev[k] for k in names] for ev, _, _ in rows]
    y = [same for _, same, _ in rows]
    model = LogisticRegression(C=C, max_iter=5000).fit(x, y)
    capped = [n for n, (_, _, passes) in enumerate(rows) if passes]
    precision, recall, thresholds = precision_recall_curve([y[n] for n in capped],
                                                           model.predict_proba([x[n] for n in capped])[:, 1])
    f1 = [2 * p * r / (p + r) if p + r else 0.0 for p, r in zip(precision[:-1], recall[:-1], strict=True)]
    threshold = float(thresholds[max(range(len(f1)), key=f1.__getitem__)])
    return dict(zip(names, map(float, model.coef_[0]), strict=True)), float(model.intercept_[0]), threshold


def feed_items(feeds: Path) -> list[tuple[str, str]]:
    """Title and summary of every item of a folder of feeds (a background archive)."""
    from crawler.feedparse import parse_feed
    from pipelines.normalize import normalize_entries

    items = []
    for path in sorted(feeds.glob("*.xml")):
        if "sitemap" not in path.name:
            parsed = parse_feed(path.read_bytes(), {"content-location": f"http://127.0.0.1/{path.name}"})
            items.extend((a.title, a.summary) for a in normalize_entries(parsed.entries))
    return items


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stories", type=Path, help="labelled stories (JSON lines: title, summary, date, outlet, story)")
    p.add_argument("--split", default="tune", help="the split to fit on (default: tune)")
    p.add_argument("--background", type=Path, help="a folder of feeds whose items count for document frequencies")
    args = p.parse_args(argv)
    items = [json.loads(line) for line in args.stories.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [i for i in items if i["split"] == args.split]
    rows = pairs(items, feed_items(args.background) if args.background else ())
    weights, bias, threshold = fit(rows)
    print(f"# {len(items)} items, {len(rows)} pairs ({sum(passes for *_, passes in rows)} within the caps), "
          f"{sum(same for _, same, _ in rows)} of the same story")
    print("WEIGHTS = {" + ", ".join(f'"{k}": {w:.3f}' for k, w in weights.items()) + "}")
    print(f"BIAS = {bias:.3f}\nTHRESHOLD = {threshold:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
