"""The fast path of the tagging engine against the slow, obvious one.

``Tagger.tag`` finds the rules' keys in one pass over a document (pipelines.tagging.scan), skips documents
that have none a rule needs, and tokenizes a field with CJK characters only if a query has to run on it.
``Tagger.reference_document`` tokenizes first and looks every key up in the joined tokens; evaluated without
the prefilter, it gives what tagging means. The two must agree: on every item of the shared corpus, on the
labelled set, and on generated text made from the rules' own vocabulary.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO, need_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.tagging import Tagger
from pipelines.tagging.document import Doc
from pipelines.tagging.query import TOKEN_RE, latin_document_joined, word_tokens
from pipelines.tagging.rules import load_rules, load_tagger

SHIPPED = REPO / "talentwatch" / "defaults" / "topics.toml"
DEV = REPO / "tests" / "data" / "labelled" / "dev.jsonl"


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return load_tagger(SHIPPED)


def assert_agrees(tagger: Tagger, title: str, body: str) -> None:
    reference = tagger.reference_document(title, body)
    assert tagger.document(title, body).found == reference.found, (title, body)
    assert tagger.tag(title, body) == tagger.tag_document(reference, prefilter=False), (title, body)


def corpus_items() -> list[tuple[str, str]]:
    from crawler.feedparse import parse_feed
    from pipelines.normalize import normalize_entries

    items = []
    for path in sorted((need_corpus() / "feeds").glob("*.xml")):
        parsed = parse_feed(path.read_bytes(), {"content-type": "application/xml"})
        items += [(a.title, a.summary or "") for a in normalize_entries(parsed.entries)]
    return items


def test_fast_path_agrees_with_full_evaluation_on_the_corpus(tagger: Tagger) -> None:
    items = corpus_items()
    assert len(items) > 1000
    tagged = 0
    for title, summary in items:
        assert_agrees(tagger, title, summary)
        tagged += bool(tagger.tag(title, summary).topics)
    assert tagged  # the comparison covers tagged items too


def test_fast_path_agrees_with_full_evaluation_on_the_labelled_set(tagger: Tagger) -> None:
    for line in DEV.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        assert_agrees(tagger, item["title"], item["summary"])


def test_key_guards_change_no_result(tagger: Tagger, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entity, AND or NEAR part of a query is checked against the document's keys before its positions are looked
    up (matcher._guarded): an optimisation only. The same rules compiled without the checks tag every item alike."""
    from pipelines.tagging import matcher

    monkeypatch.setattr(matcher, "_guarded", lambda node, phrases, compiled: compiled)
    unguarded = load_tagger(SHIPPED)
    items = [(i["title"], i["summary"]) for i in map(json.loads, DEV.read_text(encoding="utf-8").splitlines())]
    tagged = 0
    for title, body in items + corpus_items():
        result = tagger.tag(title, body)
        assert result == unguarded.tag(title, body), (title, body)
        tagged += bool(result.topics)
    assert tagged > 1000


# ---- the scan's boundaries --------------------------------------------------------------------------------------

SCANS = [
    # (title, body, keys that must be found, keys that must not)
    ("", "central banks warned", [" central banks "], [" central bank "]),
    ("", "central, banks", [" central banks "], []),  # separators between words do not matter
    ("中文标题", "Central-Banks 和 央行", [" central banks "], []),  # a Latin phrase in a field with CJK text
    ("中文标题", "central的banks", [], [" central banks "]),  # a CJK token stands between
    ("中文标题", "central 的 banks", [], [" central banks "]),
    ("central", "banks", [], [" central banks "]),  # never across title and body
    ("", "Google DeepMind", [" google deepmind ", " google ", " deepmind "], []),
    ("谷歌", "Google的DeepMind", [" google ", " deepmind "], [" google deepmind "]),
    ("", "美国商务部", [" 美 国 商 务 部 ", " 美 国 ", " 商 务 部 "], []),
    ("", "美国，商务部", [" 美 国 商 务 部 "], []),  # separators between CJK characters do not matter either
    ("", "美国 Commerce 商务部", [" 美 国 ", " 商 务 部 "], [" 美 国 商 务 部 "]),  # a Latin token does
    ("美国", "商务部", [" 美 国 ", " 商 务 部 "], [" 美 国 商 务 部 "]),
    ("", "SK海力士", [" sk 海 力 士 ", " sk "], []),  # a key mixing Latin and CJK tokens
    ("", "SK 海力士", [" sk 海 力 士 "], []),
    ("", "SK的海力士", [" 海 力 士 ", " sk "], [" sk 海 力 士 "]),
    ("", "ASK海力士", [" 海 力 士 "], [" sk 海 力 士 ", " sk "]),
    ("\x1fcentral", "banks\x1f", [], [" central banks "]),
    ("", "Travelling 𝐀 central\u2028banks İstanbul", [" travel", " central banks "], []),
]


@pytest.mark.parametrize(("title", "body", "present", "absent"), SCANS)
def test_scan_boundaries(tagger: Tagger, title: str, body: str, present: list[str], absent: list[str]) -> None:
    found = tagger.document(title, body).found
    assert set(present) <= found and not set(absent) & found
    assert_agrees(tagger, title, body)


# ---- generated text from the rules' vocabulary -------------------------------------------------------------------

def vocabulary() -> list[str]:
    topics, entities, lists, *_ = load_rules(SHIPPED)
    words = {w for t in topics for pair in re.findall(r'"([^"]+)"|([^\s()"]+)', t.query) for w in pair if w}
    words |= {w for ws in lists.values() for w in ws}
    words = {w.rstrip("*") for w in words if w not in ("AND", "OR", "NOT") and not w.startswith(("NEAR", "@", "$"))}
    return sorted(words | {text for e in entities for text in (e.name, *e.aliases, *e.exclude)})


SEPARATORS = [" ", " ", "", ", ", "，", "。", "、", "\n", " - ", "’s ", "·", "—", "_", "😀", "\x1f"]
OTHER = ["the", "of", "said", "US", "us", "Meta", "meta", "AI", "中", "的", "国", "美 国", "中，国", "SK", "海力士",
         "H20", "İstanbul", "Straße", "café", "U.S.", "Ⅷ", "\u0307"]
WORDS = vocabulary() + OTHER


INSIDE = [*SEPARATORS, "的", "x"]  # what a split puts inside a word or phrase: CJK characters break Latin phrases


def render(parts: list[tuple[str, str, int, str, str]]) -> str:
    """Words in a case, or with something inside (a split phrase or CJK name), each followed by a separator."""
    out = []
    for word, case, at, inside, separator in parts:
        if case == "upper":
            word = word.upper()
        elif case == "lower":
            word = word.lower()
        elif case == "split" and len(word) > 1:
            at = 1 + at % (len(word) - 1)
            word = word[:at] + inside + word[at:]
        out.append(word + separator)
    return "".join(out)


PART = st.tuples(st.sampled_from(WORDS), st.sampled_from(["same", "same", "upper", "lower", "split"]),
                 st.integers(0, 50), st.sampled_from(INSIDE), st.sampled_from(SEPARATORS))


@settings(max_examples=400, deadline=None)
@given(st.lists(PART, max_size=6).map(render), st.lists(PART, max_size=30).map(render))
def test_fast_path_agrees_on_generated_text(tagger: Tagger, title: str, body: str) -> None:
    assert_agrees(tagger, title, body)


# ---- the tokenizer's fast paths ------------------------------------------------------------------------------------

TEXT = st.text(st.sampled_from(
    "aZ09 _-.,’“”—–é ßİΣς\u0307\x1f\u00ad\u200b\uff21Ⅷ²K\u2028\t\n中国，。ソニー삼성😀𝐀\U00020000\ud800"), max_size=40)


@settings(max_examples=1500, deadline=None)
@given(TEXT)
def test_word_tokens_as_defined_by_the_regex(text: str) -> None:
    assert word_tokens(text) == [token.casefold() for token in TOKEN_RE.findall(text)]


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from("абвгдΣς ,.’—é_1\u0307😀中"), min_size=180, max_size=500))
def test_word_tokens_of_long_non_ascii_text(text: str) -> None:
    assert word_tokens(text) == [token.casefold() for token in TOKEN_RE.findall(text)]


@settings(max_examples=1000, deadline=None)
@given(TEXT, TEXT)
def test_joined_tokens_in_one_pass(title: str, body: str) -> None:
    joined = latin_document_joined(title, body)
    if joined is not None:
        reference = Doc(title, body, None, ())
        fast = Doc(title, body, None, (), joined)
        assert (joined, fast.tokens, fast.body_start) == (reference.joined, reference.tokens, reference.body_start)
