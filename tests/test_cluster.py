"""Story clustering (pipelines/cluster.py, store/stories.py): features, weights and scores; precision and recall on
the real corpus crawled through the pipeline (labels: tests/data/stories/corpus_stories.tsv). The labelled story
set: tests/test_story_set.py."""

from __future__ import annotations

import csv
import itertools
import math
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import FeedServer, Home, need_corpus

from pipelines import cluster

DATA = Path(__file__).parent / "data" / "stories"


def test_features_fold_case_accents_stop_words_and_stem() -> None:
    f = cluster.features("Peru's Congress removes President Jerí", "")
    assert {"peru", "congress", "remov", "presid", "jeri"} <= f and "peru congress" in f
    assert f == cluster.features("PERU'S CONGRESS REMOVED PRESIDENT JERI", "")
    assert not f & {"the", "s", "says"}


def test_cjk_text_becomes_character_bigrams_and_traditional_becomes_simplified() -> None:
    assert {"深度", "度求", "求索", "护照"} <= cluster.features("深度求索要求员工上交护照", "")
    assert cluster.features("英偉達芯片出口許可", "") == cluster.features("英伟达芯片出口许可", "")


def test_lead_is_the_first_words_of_the_summary() -> None:
    long = " ".join(["alpha"] * cluster.LEAD_WORDS + ["omega"])
    assert "omega" not in cluster.features("t", long) and "alpha" in cluster.features("t", long)


def test_entities_are_features_whatever_the_language() -> None:
    en = cluster.features("DeepSeek staff hand in passports", "", ["deepseek"])
    zh = cluster.features("深度求索要求员工上交护照", "", ["deepseek"])
    assert cluster.cjk(zh) and not cluster.cjk(en)
    assert en & zh == {"@deepseek", "staff", "hand", "passport"}  # the entity, and the glosses of 员工, 上交, 护照


def test_rare_features_weigh_more_and_vectors_have_unit_length() -> None:
    feats = cluster.features("Nvidia resumes H20 sales", "to China")
    vec = cluster.vector(feats, {"nvidia": 50, "h20": 2, "sale": 400}, 1000)
    assert vec["h20"] > vec["nvidia"] > vec["sale"]
    assert abs(sum(w * w for w in vec.values()) - 1) < 1e-9


def test_index_terms_are_the_entities_and_the_rarest_words() -> None:
    feats = cluster.features(" ".join(f"word{i}" for i in range(30)), "", ["nvidia"])
    df = {f"word{i}": i for i in range(30)}
    terms = cluster.index_terms(feats, df)
    assert terms[0] == "@nvidia" and len(terms) == 1 + cluster.INDEX_TERMS
    assert set(terms[1:]) == {f"word{i}" for i in range(cluster.INDEX_TERMS)}
    assert all(0 <= cluster.term_key(t) < 2**63 for t in terms)


def test_a_story_is_compared_as_a_whole_not_through_one_look_alike() -> None:
    """An item that shares words with one report of a story but not with the others scores lower with the story
    than with that report alone (average, not single, link)."""
    df: dict[str, int] = {}
    a = cluster.features("Meta hires OpenAI researcher Shengjia Zhao", "to lead its superintelligence lab")
    b = cluster.features("Zhao named chief scientist of Meta superintelligence lab", "after joining from OpenAI")
    c = cluster.features("Shengjia Zhao", "wins a chess tournament in Shanghai")
    story = cluster.Centroid()
    story.add(cluster.vector(a, df, 100), False, "x")
    alone = cluster.Centroid()
    alone.add(cluster.vector(a, df, 100), False, "x")
    story.add(cluster.vector(b, df, 100), False, "y")
    vec = cluster.vector(c, df, 100)
    assert cluster.score(vec, False, "z", story, 0) < cluster.score(vec, False, "z", alone, 0)
    assert cluster.score(cluster.vector(b, df, 100), False, "z", alone, 0) >= cluster.THRESHOLD


def test_one_outlets_own_items_join_only_as_near_copies() -> None:
    df: dict[str, int] = {}
    story = cluster.Centroid()
    first = cluster.features("Morning Bid: Fed in focus", "Markets wait for Powell's testimony")
    story.add(cluster.vector(first, df, 100), False, "reuters")
    later = cluster.vector(cluster.features("Morning Bid: Oil in focus", "OPEC cut surprises traders"), df, 100)
    assert cluster.score(later, False, "reuters", story, 0) == 0
    assert cluster.score(later, False, "cnbc", story, 0) > 0


def test_the_score_decays_with_the_days_since_the_first_report() -> None:
    df: dict[str, int] = {}
    story = cluster.Centroid()
    story.add(cluster.vector(cluster.features("Nvidia H20 licence", "granted"), df, 100), False, "a")
    vec = cluster.vector(cluster.features("Nvidia H20 licence granted", ""), df, 100)
    assert cluster.score(vec, False, "b", story, 0) == cluster.score(vec, False, "b", story, cluster.GRACE)
    day2, day4 = (cluster.score(vec, False, "b", story, d) for d in (1 + cluster.TAU, 1 + 2 * cluster.TAU))
    assert day4 == pytest.approx(day2 / math.e) and day4 < day2 / 2  # by e every TAU days
    assert cluster.score(vec, False, "b", story, cluster.WINDOW_DAYS) < cluster.score(vec, False, "b", story, 0) / 10


def pair_metrics(pairs: list[tuple[bool, bool]]) -> tuple[float, float]:
    tp = sum(1 for truth, pred in pairs if truth and pred)
    fp = sum(1 for truth, pred in pairs if pred and not truth)
    fn = sum(1 for truth, pred in pairs if truth and not pred)
    return tp / (tp + fp), tp / (tp + fn)


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
    ambiguous ones, '?', are left out). Measured over five crawls: precision 0.76-0.89, recall 0.50-0.58 (the
    order in which feeds arrive changes which report starts a story; the MinHash method before: 0.94, 0.39); the
    wrong pairs are reports of one topic in one week (the Winter Olympics' guides, the rounds of US-Iran
    talks), the missed ones reports worded differently (obituaries, previews and analyses of one event)."""
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
    assert precision >= 0.7 and recall >= 0.45, (precision, recall)


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


def test_chinese_words_bring_their_english_glosses() -> None:
    """A Chinese report and an English report of one event share words, not only names: CC-CEDICT's first sense of
    each Chinese word (cut by longest match; a character alone gives nothing) joins the features, stemmed."""
    assert {"chip", "prohibit", "restrict"} <= set(cluster.glosses("美国禁令限制芯片"))
    assert cluster.glosses("Nvidia chips") == [] and cluster.glosses("的") == []
    zh = cluster.features("英伟达遭禁令", "美国商务部限制芯片出口", ["nvidia"])
    en = cluster.features("US bans Nvidia chips", "The Commerce Department restricts exports", ["nvidia"])
    assert {"@nvidia", "nvidia", "chip", "restrict", "depart"} <= zh & en
    assert all(cluster.neutral(f) for f in zh & en)  # they count between scripts
