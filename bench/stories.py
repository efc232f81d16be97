"""Story clustering on the labelled story set (tests/data/stories/set.jsonl) and on the real corpus, through the
real store (tests/storyset.py): pairwise precision and recall, cross-language recall, the most labelled stories one
stored story holds, and the store's CPU per item.

    .venv/bin/python bench/stories.py [--split tune|holdout|all]

Each split is stored alone, and again after a background archive (the shared corpus's 2,745 items, stored as one
day ten years earlier: they only count for document frequencies, as a real archive's items would). The corpus row
crawls nothing: its items, parsed from the corpus feeds, are stored with their own dates and scored against
tests/data/stories/corpus_stories.tsv (every item not listed is a story of its own).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import storyset  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


def corpus_items() -> list[dict]:
    """The corpus feeds' items with their dates, labelled with corpus_stories.tsv (ambiguous ones left out)."""
    from crawler.feedparse import parse_feed
    from pipelines.normalize import normalize_entries

    rows = csv.DictReader((line for line in (storyset.SET.parent / "corpus_stories.tsv").read_text().splitlines()
                           if not line.startswith("#")), delimiter="\t")
    labels = {row["url"]: row["story"] for row in rows}
    items: dict[str, dict] = {}
    for path in sorted((CORPUS / "feeds").glob("*.xml")):
        if "sitemap" in path.name:
            continue
        parsed = parse_feed(path.read_bytes(), {"content-location": f"http://127.0.0.1/{path.name}"})
        for a in normalize_entries(parsed.entries):
            if a.url and a.published and labels.get(a.url) != "?":
                items.setdefault(a.url, {"title": a.title, "summary": a.summary, "url": a.url, "language": "",
                                         "outlet": path.name.split("-")[0], "date": a.published.isoformat(),
                                         "story": labels.get(a.url, f"own:{a.url}")})
    return list(items.values())


def measure(name: str, items: list[dict], background: list[dict] = ()) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.process_time()
        stories = storyset.store_stories(items, Path(tmp) / "s.db", background)
        cpu = time.process_time() - started
    figures = storyset.figures(items, stories)
    print(f"{figures.row(name)} {cpu / (len(items) + len(background)) * 1e3:>8.2f}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=["tune", "holdout", "all"], default="all")
    args = p.parse_args()
    background = storyset.background(CORPUS) if CORPUS.is_dir() else []
    print(f"{storyset.Figures.header()} {'ms/item':>8}  (CPU per item: tagging and store)")
    for split in ("tune", "holdout") if args.split == "all" else (args.split,):
        items = storyset.load(split=split)
        measure(split, items)
        if background:
            measure(f"{split} + background", items, background)
    if CORPUS.is_dir():
        measure("corpus", corpus_items())
    return 0


if __name__ == "__main__":
    sys.exit(main())
