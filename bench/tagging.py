"""Benchmark tagging throughput: the shipped rules on the real corpus items, one core.

    .venv/bin/python bench/tagging.py [--topics PATH] [--rounds 7] [--corpus DIR]

Every feed of the shared corpus (../shared/corpus/feeds) is parsed and normalized the way the
crawl does (crawler.feedparse.parse_feed, pipelines.normalize.normalize_entries), and each
article is tagged from its title and summary, as the tag stage does. The tagger is built once;
each round tags every article; the figure is articles per CPU second (time.process_time: one
process, one thread), best and median over the rounds, with wall time beside it. Also printed:
how many articles each topic's prefilter let through to the full evaluation, how many were
tagged, tokenization alone, and the scan alone (Tagger.document: the one pass that finds every
rule's terms, which settles most articles). The load average is printed before and after: on a
shared machine the figures move with it, so run it a few times. Prints figures; asserts nothing
about timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from crawler.feedparse import parse_feed  # noqa: E402
from pipelines.normalize import normalize_entries  # noqa: E402
from pipelines.tagging.query import word_tokens  # noqa: E402
from pipelines.tagging.rules import load_tagger  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "feeds"
SHIPPED = REPO / "talentwatch" / "defaults" / "topics.toml"


def corpus_articles(folder: Path) -> list[tuple[str, str]]:
    """(title, summary) of every article of every feed in the folder, as the crawl would store them."""
    articles = []
    for path in sorted(folder.glob("*.xml")):
        parsed = parse_feed(path.read_bytes(), {"content-type": "application/xml"})
        articles += [(a.title, a.summary or "") for a in normalize_entries(parsed.entries)]
    return articles


def rounds(label: str, articles: list[tuple[str, str]], work, n: int) -> None:  # noqa: ANN001
    cpu, wall = [], []
    for _ in range(n):
        c, w = time.process_time(), time.perf_counter()
        for title, summary in articles:
            work(title, summary)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    per_s = [len(articles) / t for t in cpu]
    print(f"{label:<28} {max(per_s):>9,.0f} items/s best, {statistics.median(per_s):>9,.0f} median "
          f"(CPU time; wall best {len(articles) / min(wall):,.0f}/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=Path, default=SHIPPED)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    print(f"load average {_load()} (1, 5, 15 min)")
    articles = corpus_articles(args.corpus)
    chars = sum(len(t) + len(s) for t, s in articles)
    tagger = load_tagger(args.topics)
    print(f"{len(articles)} articles from {args.corpus} ({chars / len(articles):.0f} characters on average); "
          f"rules {args.topics}: {len(tagger.topic_ids)} topics")

    tagged: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    with_entities = 0
    for title, summary in articles:
        result = tagger.tag(title, summary)
        tagged.update(list(result.topics))
        with_entities += bool(result.entities)
        passed.update(tagger.candidates(title, summary))
    for topic in tagger.topic_ids:
        print(f"  {topic:<18} prefilter passed {passed[topic]:>4}, tagged {tagged[topic]:>4}")
    print(f"  {with_entities} articles mention at least one entity")

    rounds("tokenize only", articles, lambda t, s: (word_tokens(t), word_tokens(s)), args.rounds)
    rounds("scan only", articles, tagger.document, args.rounds)
    rounds("tag (topics + entities)", articles, tagger.tag, args.rounds)
    print(f"load average {_load()}")


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
