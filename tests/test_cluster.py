"""Story clustering (pipelines/cluster.py, store/stories.py): the MinHash and its LSH keys, precision and recall on
pairs built for the beat and on the real corpus crawled through the pipeline (labels: tests/data/stories/)."""

from __future__ import annotations

import csv
import itertools
import json
import random
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import FeedServer, Home, need_corpus

from pipelines import cluster

DATA = Path(__file__).parent / "data" / "stories"


def test_features_fold_case_accents_stop_words_and_plurals() -> None:
    f = cluster.features("Peru's Congress removes President Jerí", "")
    assert {"peru", "congress", "remov", "president", "jeri"} <= f and "peru congress" in f
    assert f == cluster.features("PERU'S CONGRESS REMOVED PRESIDENT JERI", "")
    assert not f & {"the", "s", "says"}


def test_cjk_text_becomes_character_bigrams() -> None:
    assert {"深度", "度求", "求索", "护照"} <= cluster.features("深度求索要求员工上交护照", "")


def test_lead_is_the_first_words_of_the_summary() -> None:
    long = " ".join(["alpha"] * cluster.LEAD_WORDS + ["omega"])
    assert "omega" not in cluster.features("t", long) and "alpha" in cluster.features("t", long)


def test_signature_collisions_estimate_jaccard() -> None:
    """Over many random pairs, a signature position agrees with probability equal to the Jaccard similarity."""
    rng = random.Random(7)
    for target in (0.2, 0.5, 0.8):
        agree = total = 0
        for _ in range(300):
            shared = {f"s{rng.random()}" for _ in range(int(40 * target))}
            a = shared | {f"a{rng.random()}" for _ in range(40 - len(shared))}
            b = shared | {f"b{rng.random()}" for _ in range(40 - len(shared))}
            sa, sb = cluster.signature(a), cluster.signature(b)
            agree += sum(x == y for x, y in zip(sa, sb, strict=True))
            total += cluster.NUM_HASHES
        jaccard = len(shared) / (80 - len(shared))
        assert abs(agree / total - jaccard) < 0.04, (target, agree / total, jaccard)


def test_band_keys_fit_a_bigint_and_an_empty_item_has_none() -> None:
    keys = cluster.band_keys(cluster.signature(cluster.features("Nvidia resumes H20 sales", "to China")))
    assert len(keys) == cluster.BANDS and all(0 <= k < 2**63 for k in keys)
    assert cluster.band_keys(cluster.signature(set())) == []
    assert keys == cluster.band_keys(cluster.signature(cluster.features("Nvidia resumes H20 sales", "to China")))


def pair_metrics(pairs: list[tuple[bool, bool]]) -> tuple[float, float]:
    tp = sum(1 for truth, pred in pairs if truth and pred)
    fp = sum(1 for truth, pred in pairs if pred and not truth)
    fn = sum(1 for truth, pred in pairs if truth and not pred)
    return tp / (tp + fp), tp / (tp + fn)


def test_precision_and_recall_on_built_pairs() -> None:
    """Wire rewrites, the same news in two outlets, Chinese rewrites; and hard negatives: the same company or topic
    in different events. Figures (32 pairs): precision 0.93, recall 0.88."""
    results = []
    for line in (DATA / "pairs.jsonl").read_text().splitlines():
        pair = json.loads(line)
        score = cluster.similarity(cluster.features(**pair["a"]), cluster.features(**pair["b"]))
        results.append((pair["same"], cluster.same_story(score, pair.get("same_source", False))))
    precision, recall = pair_metrics(results)
    print(f"built pairs: precision {precision:.2f}, recall {recall:.2f}")
    assert precision >= 0.9 and recall >= 0.8, (precision, recall)


@pytest.fixture(scope="module")
def corpus_stories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Every corpus feed crawled through the real pipeline (one source per outlet); story id -> items."""
    feeds = sorted(p for p in (need_corpus() / "feeds").glob("*.xml") if "sitemap" not in p.name)
    server = FeedServer().start()
    sources: dict[str, list[str]] = defaultdict(list)
    for p in feeds:
        server.put(f"/{p.name}", p.read_bytes())
        sources[p.name.split("-")[0]].append(server.url(f"/{p.name}"))
    tmp = tmp_path_factory.mktemp("corpus-stories")
    home = Home(tmp, f"sqlite:///{tmp / 'talentwatch.db'}")
    home.write_config(sorted(sources.items()))
    try:
        assert home.run("crawl").code == 0
        items = home.run("items", "--format", "json").json_lines()
    finally:
        server.stop()
    stories: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        assert isinstance(item["story"], int)
        stories[item["story"]].append(item)
    return stories


def labels() -> dict[str, str]:
    rows = csv.DictReader((line for line in (DATA / "corpus_stories.tsv").read_text().splitlines()
                           if not line.startswith("#")), delimiter="\t")
    return {row["url"]: row["story"] for row in rows}


def test_precision_and_recall_on_the_real_corpus(corpus_stories) -> None:
    """Pairs of items in one story against the labelled stories (items not labelled are stories of their own;
    ambiguous ones, '?', are left out). Measured: precision 0.94, recall 0.39 of the labelled pairs; the missed
    pairs are reports worded differently (obituaries, previews and analyses of one event)."""
    truth = labels()
    items = [(i, story) for story, members in corpus_stories.items() for i in members
             if truth.get(i["url"]) != "?"]
    results = []
    for (a, story_a), (b, story_b) in itertools.combinations(items, 2):
        label_a, label_b = truth.get(a["url"]), truth.get(b["url"])
        same = label_a is not None and label_a == label_b
        if same or story_a == story_b:
            results.append((same, story_a == story_b))
    precision, recall = pair_metrics(results)
    print(f"real corpus: precision {precision:.2f}, recall {recall:.2f} over {len(results)} pairs")
    assert precision >= 0.9 and recall >= 0.3, (precision, recall)


def story_of(stories: dict, title_start: str) -> list[dict]:
    (found,) = [members for members in stories.values() if any(i["title"].startswith(title_start) for i in members)]
    return found


def test_one_story_from_several_outlets_and_unrelated_items_apart(corpus_stories) -> None:
    peru = story_of(corpus_stories, "Peru’s Congress ousts interim President")
    assert {i["source"] for i in peru} == {"abcnews", "aljazeera", "dw", "japantoday", "mercopress", "ndtv",
                                           "nytimes"}
    spain = story_of(corpus_stories, "Spain to investigate big tech over AI child abuse imagery")
    assert not any("Catalonia" in i["title"] for i in spain)  # same country, same day, another story
    broadcom = story_of(corpus_stories, "Broadcom Seeking More Than $60 Billion")  # Reuters carrying Bloomberg
    assert {i["source"] for i in broadcom} == {"bloomberg", "reuters"}
    morning_bids = [i for members in corpus_stories.values() for i in members if i["title"].startswith("Morning Bid")]
    assert len({i["story"] for i in morning_bids}) == len(morning_bids) > 3  # a column's issues stay apart
