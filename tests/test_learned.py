"""The learned second route: features, the model file, how it adds tags to the rules', and training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Home, write_labelled

from pipelines.tagging import Entity, Tagger, Topic
from pipelines.tagging.learned import Model, ModelError, TopicModel, features, stem
from pipelines.tagging.rules import load_tagger

ENTITIES = [Entity("openai", "OpenAI", "org", ()), Entity("meta", "Meta", "org", ("Meta Platforms",)),
            Entity("china", "China", "place", ("中国",))]
KINDS = {e.id: e.kind for e in ENTITIES}


def test_stem() -> None:
    assert [stem(w) for w in ("hire", "hires", "hired", "hiring", "curbs", "boss", "ban", "bans", "出境")] == [
        "hir", "hir", "hir", "hir", "curb", "boss", "ban", "ban", "出境"]


def test_features_words_pairs_cjk_and_entities() -> None:
    tagger = Tagger([], ENTITIES)
    doc = tagger.document("Meta lures OpenAI researchers", "中国挖角")
    found = features(doc, ["meta", "openai"], KINDS)
    assert {"meta", "lur", "openai", "researcher", "meta lur", "lur openai", "openai researcher"} <= set(found)
    assert {"中国", "国挖", "挖角", "挖"} <= set(found) and "researcher 中" not in found
    assert {"@meta", "@openai", "@kind:org"} <= set(found)
    assert found["lur openai"] == 1 and found["@meta"] == -1


@pytest.mark.parametrize(("title", "tagged"), [
    ("Meta lures OpenAI researchers from rivals", True),  # -2 + 1.5 + 0.8 = 0.3: p = 0.57
    ("Meta lures wildlife from rivals", False),           # -4 for wildlife
    ("Meta lures OpenAI researchers", False),             # no 'rivals': the query could not match, not scored
])
def test_model_adds_a_topic_the_query_nearly_matched(title: str, tagged: bool) -> None:
    model = Model({"poaching": TopicModel(-2.0, 0.55, {"lur": 1.5, "@kind:org": 0.8, "wildlif": -4.0})}, KINDS)
    tagger = Tagger([Topic("poaching", "P", "lure* NEAR/1 rivals")], ENTITIES, model=model)
    topics = tagger.tag(title, "").topics
    assert ("poaching" in topics) is tagged
    if tagged:
        assert topics["poaching"][0] == "learned (0.57): lur, @kind:org"
        assert topics["poaching"][1] == title  # the sentence holding the strongest word
        assert tagger.tag_document(tagger.document(title, ""), learned=False).topics == {}


def test_rules_keep_their_evidence_and_order() -> None:
    model = Model({"b": TopicModel(5.0, 0.5, {})}, KINDS)
    tagger = Tagger([Topic("a", "A", "poach*"), Topic("b", "B", "nothing NEAR/1 poach*")], ENTITIES, model=model)
    assert list(tagger.tag("Nothing says OpenAI poaches", "").topics.items()) == [
        ("a", ["Nothing says OpenAI poaches"]), ("b", ["learned (0.99)"])]


@pytest.mark.parametrize(("content", "message"), [
    ("{", "not JSON"),
    ('{"version": 2, "topics": {}}', 'expected {"version": 1'),
    ('{"version": 1, "topics": {"p": {"bias": 1}}}', "topic 'p': expected bias, threshold and weights"),
])
def test_bad_model_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(ModelError, match=message.replace("{", r"\{")):
        Model.load(path, KINDS)


TOPICS = """
[learned]
model = "model.json"

[[entity]]
id = "meta"
aliases = ["Meta"]

[[topic]]
id = "poaching"
name = "P"
query = 'lure* NEAR/1 rivals'
"""


def test_model_named_by_topics_toml(home: Home, tmp_path: Path) -> None:
    home.write_config(topics=TOPICS)
    topics = home.path / "topics.toml"
    model = {"version": 1, "topics": {"poaching": {"bias": -1, "threshold": 0.5, "weights": {"lur": 2}}}}
    (topics.parent / "model.json").write_text(json.dumps(model))
    assert "poaching" in load_tagger(topics).tag("Meta lures staff from rivals", "").topics
    assert load_tagger(topics, learned=False).tag("Meta lures staff from rivals", "").topics == {}
    assert load_tagger(topics).tag("Meta lures staff", "").topics == {}  # the query could not match: not scored
    model["topics"]["travel"] = model["topics"]["poaching"]
    (topics.parent / "model.json").write_text(json.dumps(model))
    items = write_labelled(tmp_path, {"title": "a", "summary": "", "labels": []})
    result = home.run("rules", "test", str(items))
    assert result.code == 2 and "learned model" in result.err and "unknown topic travel" in result.err
    (topics.parent / "model.json").unlink()
    result = home.run("rules", "test", str(items))
    assert result.code == 2 and "model.json: cannot read" in result.err


def test_train_writes_a_model_that_tags(tmp_path: Path) -> None:
    """Training on event-grouped folds, on a tiny set where the rules miss every item and 'researchers' (not
    'shoppers') marks the topic."""
    pytest.importorskip("sklearn", reason="training needs scikit-learn: pip install -e '.[train]'")
    from pipelines.tagging.train import main

    topics = tmp_path / "topics.toml"
    topics.write_text(TOPICS.replace('model = "model.json"', 'model = "m.json"'))
    rows = []
    for n in range(40):
        positive = n % 2 == 0
        adjective = ["top", "star", "senior", "key"][n % 4]
        who = "researchers" if positive else "shoppers"
        title = f"Meta lures {adjective} {who} away from rivals {n}"
        rows.append({"title": title, "summary": "", "labels": ["poaching"] if positive else [],
                     "event": f"e{n}", "split": "tune"})
    data = write_labelled(tmp_path, *rows)
    assert main([str(data), "--topics", str(topics), "--precision", "0.9"]) == 0
    model = json.loads((tmp_path / "m.json").read_text())
    assert model["version"] == 1 and model["topics"]["poaching"]["weights"]["researcher"] > 0
    tagger = load_tagger(topics)
    assert "poaching" in tagger.tag("Meta lures star researchers away from rivals", "").topics
    assert tagger.tag("Meta lures bargain shoppers away from rivals", "").topics == {}
