"""The shipped rules against the labelled development set, the evaluation module, `rules test`, entity case rules."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO, Home
from conftest import write_labelled as write

from pipelines.tagging import Entity, Tagger, Topic
from pipelines.tagging.evaluate import LabelledFileError, evaluate, held_back, read_labelled
from pipelines.tagging.rules import load_rules, load_tagger

DEV = REPO / "tests" / "data" / "labelled" / "dev.jsonl"
SHIPPED = REPO / "talentwatch" / "defaults" / "topics.toml"
TOPICS = ("travel-approval", "poaching", "export-controls")
# The figures the shipped rules (and learned route) reach on the set (docs/topics.md), rounded down: a regression
# shows. Every event of the set has been seen by now (the held-out events' and fresh batches' errors were read
# after their figures were reported, and the learned route is trained on every item), so these are floors, not
# measures of unseen events: the next fresh batch is.
FLOORS = {  # topic: (tune precision, tune recall, holdout precision, holdout recall)
    "travel-approval": (0.95, 0.93, 0.87, 0.53),
    "poaching": (0.98, 0.95, 0.89, 0.82),  # holdout 0.93/0.89 before fresh 8-9, 0.92/0.85 after; 0.91/0.82 after 12;
    # 0.90/0.83 after 14 (nine departures without a new employer tagged)
    "export-controls": (0.93, 0.96, 0.92, 0.82),  # holdout 0.95/0.89 before fresh 13, 0.94/0.83 after 14, 0.93/0.83 15
}


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return load_tagger(SHIPPED)


@pytest.fixture(scope="module")
def dev(tagger: Tagger) -> list:
    return read_labelled(DEV, tagger.topic_ids)


# ---- the development set itself --------------------------------------------------------------------------------

def test_dev_set_composition(dev: list) -> None:
    positives = Counter(label for item in dev for label in item.labels)
    negatives = [item for item in dev if not item.labels]
    assert len(dev) >= 1000 and len(negatives) >= 400
    for topic in TOPICS:
        assert positives[topic] >= 150, topic
        assert len({i.event for i in dev if topic in i.labels}) >= 40, topic
        assert sum(topic in i.labels and i.extra["language"] == "zh" for i in dev) >= 20, topic
    hard = [i for i in negatives if i.extra["kind"] not in ("neg-other", "neg-jobs")]
    assert len(hard) > 0.9 * len(negatives) and len({i.extra["kind"] for i in hard}) >= 20


def test_dev_items_record_their_source(dev: list) -> None:
    urls = [item.extra["url"] for item in dev]
    assert len(set(urls)) == len(urls)
    for item in dev:
        assert item.extra["outlet"] and item.extra["date"][:2] in ("19", "20"), item.line
        assert item.extra["url"].startswith("http") and item.extra["event"], item.line
        assert item.extra["language"] in ("en", "zh") and (item.title or item.summary), item.line
        assert item.extra["split"] in ("tune", "holdout"), item.line


def test_held_out_events_were_set_aside_whole(dev: list) -> None:
    """The split is per event (or family of related events), never per item: every item of one falls on the
    same side; the first development set, which the earlier rules were tuned on, is all tune; and at least 30%
    of each topic's events are held out."""
    side: dict[str, str] = {}
    for item in dev:
        unit = item.extra.get("family", item.event)
        assert side.setdefault(unit, item.split) == item.split, (item.line, unit)
        if item.extra["batch"] == "dev-1":
            assert item.split == "tune", item.line
    for topic in TOPICS:
        events = {i.event: i.split for i in dev if topic in i.labels}
        assert sum(s == "holdout" for s in events.values()) >= 0.3 * len(events), topic


# ---- the shipped rules on it ------------------------------------------------------------------------------------

def test_shipped_rules_on_the_tuning_part(tagger: Tagger, dev: list) -> None:
    report = evaluate(tagger, [i for i in dev if i.split == "tune"])
    for score in report.scores:
        precision, recall, _, _ = FLOORS[score.topic]
        assert score.precision >= precision and score.recall >= recall, score.as_dict()


def test_shipped_rules_on_the_held_out_events(tagger: Tagger, dev: list) -> None:
    report = evaluate(tagger, [i for i in dev if i.split == "holdout"])
    print({s.topic: (round(s.precision, 3), round(s.recall, 3)) for s in report.scores})
    for score in report.scores:
        _, _, precision, recall = FLOORS[score.topic]
        assert score.support >= 30
        assert score.precision >= precision and score.recall >= recall, score.as_dict()


def test_prefilter_agrees_with_the_full_query(dev: list) -> None:
    tagger = load_tagger(SHIPPED, learned=False)  # explain() is the rules' account
    for item in dev:
        tagged = tagger.tag(item.title, item.summary).topics
        for topic in TOPICS:
            assert (topic in tagged) is tagger.explain(topic, item.title, item.summary).matched, (item.line, topic)


def test_every_tag_keeps_evidence(tagger: Tagger, dev: list) -> None:
    for item in dev:
        for topic, snippets in tagger.tag(item.title, item.summary).topics.items():
            assert snippets and all(0 < len(s) <= 242 for s in snippets), (item.line, topic)


def test_shipped_entities(tagger: Tagger) -> None:
    topics, entities, *_ = load_rules(SHIPPED)
    assert [t.id for t in topics] == list(TOPICS) and len(entities) >= 80
    assert {e.kind for e in entities} == {"org", "person", "gov", "place"}
    assert any(e.case_sensitive for e in entities) and any(e.exclude for e in entities)


# ---- entities: word boundaries and case rules ------------------------------------------------------------------

ENTITY_CASES = [
    ("Meta offers $100 million to OpenAI researchers", {"meta", "openai"}),
    ("A meta point about models", set()),
    ("A meta-analysis of AI studies, by Meta", set()),  # excluded: the item is about meta-analysis
    ("BIS adds 80 companies to the Entity List", {"bis"}),
    ("The BIS, the Bank for International Settlements, warns on rates", set()),
    ("bis repetita", set()),
    ("Researchers at MIT and Tsinghua", {"mit", "tsinghua"}),
    ("Ich fahre mit dem Zug", set()),
    ("The US restricts H20 exports", {"united-states"}),
    ("Tell us about it", set()),
    ("Trump allows Nvidia H200 sales", {"donald-trump", "nvidia"}),
    ("Aces trump kings", set()),
    ("Google hires Windsurf CEO", {"google", "windsurf"}),
    ("Learn to windsurf this summer", set()),
    ("美国商务部将英伟达芯片列入管制", {"nvidia", "us-commerce-department", "united-states"}),  # not MOFCOM
    ("北京大学的研究人员", {"peking-university"}),  # not Beijing: inside a longer name of the same kind
    ("Google DeepMind and Google Cloud", {"google", "google-deepmind"}),
    ("Latin American exports grew", set()),
    ("DeepSeek发布新模型", {"deepseek"}),
    ("Deep Seek", set()),
]


@pytest.mark.parametrize(("text", "expected"), ENTITY_CASES)
def test_shipped_entity_matching(tagger: Tagger, text: str, expected: set[str]) -> None:
    assert set(tagger.tag(text, "").entities) == expected


def test_case_sensitive_alias_in_a_query() -> None:
    entities = [Entity("meta", "Meta Platforms", "org", ("Meta",), case_sensitive=("Meta",))]
    tagger = Tagger([Topic("t", "T", "@meta NEAR/3 hire*")], entities)
    assert "t" in tagger.tag("Meta hires a researcher", "").topics
    assert "t" not in tagger.tag("meta hires a researcher", "").topics


# ---- the evaluation module ---------------------------------------------------------------------------------------

ENTITIES = [Entity("deepseek", "DeepSeek", "org", ("深度求索",))]
RULES = [Topic("travel", "Travel", '(travel OR 出境) NEAR/5 (approv* OR 审批) AND (engineer* OR 工程师)'),
         Topic("export", "Export", '"export controls"')]


def rules_test_report(home: Home, *args: str) -> dict:
    """`rules test ... --format json`, which must succeed: its one JSON report."""
    result = home.run("rules", "test", *args, "--format", "json")
    assert result.code == 0, result.err
    (report,) = result.json_lines()
    return report


def test_scores_errors_and_nearest_miss(tmp_path: Path) -> None:
    path = write(tmp_path,
                 {"title": "Engineers need approval to travel", "summary": "", "labels": ["travel"]},
                 {"title": "工程师出境须经审批", "summary": "", "labels": ["travel"]},
                 {"title": "Engineers travel a lot", "summary": "They need visas.", "labels": ["travel"]},
                 {"title": "New export controls", "summary": "", "labels": []},
                 "",
                 {"title": "Weather", "summary": "Sunny", "labels": [], "url": "https://x.org/a"})
    tagger = Tagger(RULES, ENTITIES)
    report = evaluate(tagger, read_labelled(path, tagger.topic_ids))
    travel, export = report.scores
    assert (travel.tp, travel.fp, travel.fn, travel.support) == (2, 0, 1, 3)
    assert travel.precision == 1.0 and travel.recall == pytest.approx(2 / 3) and travel.f1 == pytest.approx(0.8)
    assert (export.tp, export.fp, export.precision, export.recall) == (0, 1, 0.0, 1.0)
    fn, fp = (e.as_dict() for e in sorted(report.errors, key=lambda e: e.kind))
    assert fn["kind"] == "fn" and fn["line"] == 3
    assert fn["nearest_miss"]["missing"] == ["(travel OR 出境) NEAR/5 (approv* OR 审批)"]
    assert fn["nearest_miss"]["matched"] == {"(engineer* OR 工程师)": ["Engineers travel a lot"]}
    assert fp == {"kind": "fp", "topic": "export", "line": 4, "title": "New export controls", "labels": [],
                  "evidence": ["New export controls"]}


@pytest.mark.parametrize(("line", "message"), [
    ("not json", "line 1: not JSON"),
    ('["a"]', "line 1: expected a JSON object"),
    ('{"summary": "", "labels": []}', "line 1: missing 'title'"),
    ('{"title": "", "labels": []}', "line 1: missing 'summary'"),
    ('{"title": "", "summary": ""}', "line 1: missing 'labels'"),
    ('{"title": 3, "summary": "", "labels": []}', "line 1: 'title' must be a string"),
    ('{"title": "", "summary": "", "labels": "travel"}', "line 1: 'labels' must be a list"),
    ('{"title": "", "summary": "", "labels": ["travle"]}', "line 1: unknown topic 'travle'"),
])
def test_bad_labelled_lines(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, line)
    with pytest.raises(LabelledFileError) as caught:
        read_labelled(path, ["travel", "export"])
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_empty_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LabelledFileError, match="no labelled items"):
        read_labelled(write(tmp_path, ""), ["travel"])
    with pytest.raises(LabelledFileError, match="cannot read"):
        read_labelled(tmp_path / "nope.jsonl", ["travel"])


def test_split_by_event_when_not_given(tmp_path: Path) -> None:
    """Every item of one event falls on the same side; without an event, an item is an event of its own."""
    rows = [{"title": "t", "summary": "", "labels": [], "url": f"https://example.org/{n}", "event": f"e{n % 20}"}
            for n in range(60)]
    items = read_labelled(write(tmp_path, *rows, {"title": "t", "summary": "", "labels": []}), [])
    held = {i.event for i in items[:-1] if i.split == "holdout"}
    assert held == {f"e{n}" for n in range(20) if held_back(f"e{n}")} and 0 < len(held) < 20
    assert all((i.event in held) is (i.split == "holdout") for i in items[:-1])
    assert items[-1].event == "line 61"


def test_event_recall(tmp_path: Path) -> None:
    path = write(tmp_path,
                 {"title": "Engineers need approval to travel", "summary": "", "labels": ["travel"], "event": "a"},
                 {"title": "Engineers abroad", "summary": "", "labels": ["travel"], "event": "a"},
                 {"title": "工程师出境须经审批", "summary": "", "labels": ["travel"], "event": "b"},
                 {"title": "Engineers may not leave", "summary": "", "labels": ["travel"], "event": "c"},
                 {"title": "Travel approval for engineers", "summary": "", "labels": [], "event": "d"})
    tagger = Tagger(RULES, ENTITIES)
    travel, export = evaluate(tagger, read_labelled(path, tagger.topic_ids)).by_event()
    assert (travel.events, travel.missed, travel.recall) == (3, ["c"], pytest.approx(2 / 3))
    assert (export.events, export.missed, export.recall) == (0, [], 1.0)


# ---- the command ---------------------------------------------------------------------------------------------------

CLI_TOPICS = """
[[topic]]
id = "travel-approval"
name = "Travel"
query = '(travel OR 出境) NEAR/5 (approv* OR 审批)'
"""


def test_rules_test_command(home: Home, tmp_path: Path) -> None:
    home.write_config(topics=CLI_TOPICS)
    path = write(tmp_path, {"title": "Travel needs approval", "summary": "", "labels": ["travel-approval"]},
                 {"title": "出境须审批", "summary": "", "labels": []},
                 {"title": "Travel", "summary": "", "labels": ["travel-approval"]})
    report = rules_test_report(home, str(path), "--by-event")
    assert report["events"] == [{"topic": "travel-approval", "events": 2, "tagged": 1, "event_recall": 0.5,
                                 "missed": ["line 3"]}]
    assert report["items"] == 3 and report["topics"] == [
        {"topic": "travel-approval", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "tp": 1, "fp": 1,
         "fn": 1}]
    assert [(e["kind"], e["line"]) for e in report["errors"]] == [("fn", 3), ("fp", 2)]
    assert report["errors"][1]["evidence"] == ["出境须审批"]
    table = home.run("rules", "test", str(path), "--by-event")
    assert table.code == 0 and "false negative" in table.out and "missing:" in table.out
    assert "event recall" in table.out and "line 3" in table.out
    strict = home.run("rules", "test", str(path), "--min-precision", "0.9")
    assert strict.code == 1 and "below the thresholds: travel-approval" in strict.err


def test_rules_test_errors_exit_2(home: Home, tmp_path: Path) -> None:
    home.write_config(topics=CLI_TOPICS)
    path = write(tmp_path, {"title": "a", "summary": "", "labels": []}, "{oops")
    result = home.run("rules", "test", str(path))
    assert result.code == 2 and f"{path} line 2: not JSON" in result.err
    good = write(tmp_path, {"title": "a", "summary": "", "labels": []})
    assert home.run("rules", "test", str(good), "--topic", "nope").code == 2
    assert home.run("rules", "test", str(tmp_path / "missing.jsonl")).code == 2


def test_rules_test_on_the_shipped_rules_and_dev_set(home: Home) -> None:
    home.write_config()
    report = rules_test_report(home, str(DEV), "--split", "tune", "--min-precision", "0.93", "--min-recall", "0.92")
    assert report["split"] == "tune" and [t["topic"] for t in report["topics"]] == list(TOPICS)


LIST_TOPICS = """
[[terms]]
id = "approval-words"
words = ["approv*", "clearance", "sign off", "审批"]

[[topic]]
id = "travel-approval"
name = "Travel"
query = '(travel OR 出境) NEAR/5 $approval-words'
"""


def test_term_lists_in_topics_toml(home: Home, tmp_path: Path) -> None:
    home.write_config(topics=LIST_TOPICS)
    path = write(tmp_path, {"title": "Travel needs clearance", "summary": "", "labels": ["travel-approval"]},
                 {"title": "出境须审批", "summary": "", "labels": ["travel-approval"]},
                 {"title": "Travel plans", "summary": "", "labels": []})
    report = rules_test_report(home, str(path))
    assert report["topics"][0]["tp"] == 2 and report["topics"][0]["fp"] == 0


@pytest.mark.parametrize(("topics", "message"), [
    (LIST_TOPICS.replace("$approval-words", "$approvals"),
     "topic 'travel-approval': unknown term list '$approvals' (defined: $approval-words) at position 22"),
    (LIST_TOPICS.replace('"sign off"', '"sign *off"'),
     "terms 'approval-words' words[2]: 'sign *off': '*' is only allowed"),
    (LIST_TOPICS.replace('"sign off"', '"--"'), "terms 'approval-words' words[2]: '--': '--' has no letters"),
    (LIST_TOPICS.replace('words = [', 'word = ['), "terms 'approval-words' word: unknown key"),
    (LIST_TOPICS + '[[terms]]\nid = "approval-words"\nwords = ["x"]\n', "terms 'approval-words': duplicate id"),
])
def test_bad_term_list_is_a_config_error(home: Home, tmp_path: Path, topics: str, message: str) -> None:
    home.write_config(topics=topics)
    path = write(tmp_path, {"title": "a", "summary": "", "labels": []})
    result = home.run("rules", "test", str(path))
    assert result.code == 2 and "topics.toml: " in result.err and message in result.err, result.err
