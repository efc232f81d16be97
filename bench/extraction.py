"""Score the extract stage on the article-extraction benchmark (181 pages, ../shared/corpus/article-extraction).

    .venv/bin/python bench/extraction.py [--corpus DIR] [--explore] [--bootstrap 1000]

Rows: the text our extract stage extracts (``pipelines.extract.extract_text``: trafilatura with our options); the
same as the stage would store it (``extract_article``: empty where it judges the page a teaser or wall, against an
empty feed summary); trafilatura run directly with its default settings (``trafilatura.extract(html)``) on the same
pages; and the benchmark's stored trafilatura 2.0.0 predictions (``output/trafilatura.json``: the published 0.958,
which checks this metric). With ``--explore``, a few other trafilatura option sets too. The metric is the
benchmark's own (its RESULTS.md): word 4-gram shingles, per-page TP/FP/FN normalised to sum 1, precision and recall
averaged over pages, F1 their harmonic mean, accuracy the share of pages whose tokens equal the truth; ± is the std
over bootstrap resamples of the pages.
Prints figures and the CPU time per page; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines.extract import OPTIONS, extract_article, extract_text  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "article-extraction"
TOKEN = re.compile(r"\w+", re.UNICODE)
EXPLORE = {
    "balanced (no favour)": {**OPTIONS, "favor_precision": False},
    "favour recall": {**OPTIONS, "favor_precision": False, "favor_recall": True},
    "fast": {**OPTIONS, "favor_precision": False, "fast": True},
    "favour precision, fast": {**OPTIONS, "fast": True},
    "with comments": {**OPTIONS, "include_comments": True},
    "no tables": {**OPTIONS, "include_tables": False},
}
Scores = tuple[float, float, float]  # per page: tp, fp, fn, normalised to sum 1


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = TOKEN.findall(text or "")
    return Counter(tuple(tokens[i:i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i:i + n])


def page_scores(true: str, pred: str) -> Scores:
    t, p = shingles(true), shingles(pred)
    tp = sum((t & p).values())
    fp, fn = sum((p - t).values()), sum((t - p).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def summarise(pages: list[Scores]) -> tuple[float, float, float]:
    """(F1, precision, recall) as the benchmark computes them."""
    precisions = [1.0 if fp == fn == 0 else tp / (tp + fp) for tp, fp, fn in pages if tp + fp > 0 or fp == fn == 0]
    recalls = [1.0 if fp == fn == 0 else tp / (tp + fn) for tp, fp, fn in pages if tp + fn > 0 or fp == fn == 0]
    p = sum(precisions) / len(precisions) if precisions else 0.0
    r = sum(recalls) / len(recalls) if recalls else 0.0
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def score(truth: dict[str, str], predicted: dict[str, str], rounds: int) -> dict[str, tuple[float, float]]:
    ids = sorted(truth)
    pages = {i: page_scores(truth[i], predicted.get(i, "")) for i in ids}
    exact = {i: TOKEN.findall(truth[i]) == TOKEN.findall(predicted.get(i, "")) for i in ids}
    f1, p, r = summarise([pages[i] for i in ids])
    rng = random.Random(0)
    samples = []
    for _ in range(rounds):
        pick = [rng.choice(ids) for _ in ids]
        samples.append((*summarise([pages[i] for i in pick]), sum(exact[i] for i in pick) / len(pick)))
    accuracy = sum(exact.values()) / len(ids)
    return {name: (value, _std([s[k] for s in samples])) for k, (name, value) in
            enumerate((("f1", f1), ("precision", p), ("recall", r), ("accuracy", accuracy)))}


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def run(ids: list[str], extract: Callable[[str], str | None]) -> tuple[dict[str, str], float]:
    """Predictions (by page id) and CPU seconds per page."""
    started = time.process_time()
    out = {i: extract(i) or "" for i in ids}
    return out, (time.process_time() - started) / len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--explore", action="store_true", help="also score other trafilatura option sets")
    ap.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples for the ±")
    args = ap.parse_args()
    import trafilatura

    ground = json.loads((args.corpus / "ground-truth.json").read_text())
    truth = {k: v.get("articleBody", "") for k, v in ground.items()}
    urls = {k: v.get("url") for k, v in ground.items()}
    pages = {i: gzip.decompress((args.corpus / "html" / f"{i}.html.gz").read_bytes()).decode("utf-8", "replace")
             for i in truth}
    stored = json.loads((args.corpus / "output" / "trafilatura.json").read_text())
    stored = stored.get("output", stored)
    statuses: Counter[str] = Counter()

    def ours(i: str) -> str | None:
        found = extract_article(pages[i], urls[i], summary="")
        statuses[found.status] += 1
        return found.text

    rows: list[tuple[str, dict[str, str], float | None]] = []
    ids = list(pages)
    for name, fn in (("talentwatch extract stage: text extracted", lambda i: _text(extract_text(pages[i], urls[i]))),
                     ("  as stored (teasers and walls withheld)", ours),
                     ("trafilatura direct, default settings", lambda i: trafilatura.extract(pages[i]))):
        predicted, per_page = run(ids, fn)
        rows.append((name, predicted, per_page))
    if args.explore:
        for name, options in EXPLORE.items():
            predicted, per_page = run(ids, lambda i, o=options: _text(extract_text(pages[i], urls[i], o)))
            rows.append((f"  options: {name}", predicted, per_page))
    rows.append(("trafilatura 2.0.0, stored predictions", {k: v.get("articleBody", "") for k, v in stored.items()},
                 None))
    print(f"{len(pages)} pages, trafilatura {trafilatura.__version__}; our options: {OPTIONS}")
    print(f"{'':44} {'F1':>13} {'precision':>13} {'recall':>13} {'accuracy':>13} {'ms/page':>8}")
    for name, predicted, per_page in rows:
        s = score(truth, predicted, args.bootstrap)
        cells = " ".join(f"{s[k][0]:.3f} ± {s[k][1]:.3f}" for k in ("f1", "precision", "recall", "accuracy"))
        print(f"{name:44} {cells} {per_page * 1000 if per_page is not None else float('nan'):8.1f}")
    print("published (RESULTS.md): trafilatura 2.0.0 F1 0.958 ± 0.006, precision 0.938, recall 0.978, accuracy 0.293")
    print(f"our stage's verdicts (empty feed summary): {dict(statuses)}")


def _text(doc: object) -> str:
    return (getattr(doc, "text", None) or "") if doc is not None else ""


if __name__ == "__main__":
    main()
