"""Table-driven tests of the tagging engine: query parsing, matching, evidence, entities."""

from __future__ import annotations

import pytest

from pipelines.tagging import Entity, QueryError, RuleError, Tagger, Topic, parse
from pipelines.tagging.query import And, EntityRef, Near, Node, Not, Or, Term, Title, word_tokens

ENTITIES = [
    Entity("deepseek", "DeepSeek", "org", ("深度求索",)),
    Entity("us", "United States", "gov", ("U.S.", "US")),
    Entity("samsung", "Samsung", "org", ("삼성",)),
    Entity("sony", "Sony", "org", ("ソニー",)),
    Entity("openai", "OpenAI", "org", ("Open AI",)),
]


def show(node: Node) -> str:
    """A compact s-expression of an AST, for readable expectations."""
    match node:
        case Term(tokens, prefix):
            text = " ".join(tokens) + ("*" if prefix else "")
            return f'"{text}"' if len(tokens) > 1 else text
        case EntityRef(entity_id):
            return f"@{entity_id}"
        case Title(child):
            return f"title:{show(child)}"
        case Not(child):
            return f"(NOT {show(child)})"
        case And(children) | Or(children):
            return f"({type(node).__name__.upper()} {' '.join(map(show, children))})"
        case Near(left, right, n):
            return f"(NEAR/{n} {show(left)} {show(right)})"
    raise TypeError(node)


def tag(query: str, title: str, body: str = "") -> dict[str, list[str]]:
    return Tagger([Topic("t", "T", query)], ENTITIES).tag(title, body).topics


TOKENS = [
    ("U.S. export-controls", ["u", "s", "export", "controls"]),
    ("China's AI", ["china", "s", "ai"]),
    ("深度求索公司", ["深", "度", "求", "索", "公", "司"]),
    ("DeepSeek发布R1模型", ["deepseek", "发", "布", "r1", "模", "型"]),
    ("ソニー・グループ", ["ソ", "ニ", "ー", "グ", "ル", "ー", "プ"]),
    ("삼성전자 SAMSUNG", ["삼", "성", "전", "자", "samsung"]),
    ("snake_case STRASSE Straße", ["snake", "case", "strasse", "strasse"]),
    ("  ...  ", []),
]


@pytest.mark.parametrize(("text", "expected"), TOKENS)
def test_tokens(text: str, expected: list[str]) -> None:
    assert word_tokens(text) == expected


PARSES = [
    ("china", "china"),
    ("China's", '"china s"'),
    ("U.S.", '"u s"'),
    ("trip*", "trip*"),
    ("U.S.*", '"u s*"'),
    ('"export controls"', '"export controls"'),
    ('"export contr*"', '"export contr*"'),
    ("出境", '"出 境"'),
    ("@deepseek", "@deepseek"),
    ("a b", "(AND a b)"),
    ("a AND b c", "(AND a b c)"),
    ("a AND b OR c", "(OR (AND a b) c)"),
    ("a OR b c", "(OR a (AND b c))"),
    ("a OR b OR c", "(OR a b c)"),
    ("a NOT b", "(AND a (NOT b))"),
    ("NOT NOT a", "(NOT (NOT a))"),
    ("NOT a NEAR/3 b", "(NOT (NEAR/3 a b))"),
    ("a NEAR/2 b NEAR/3 c", "(NEAR/3 (NEAR/2 a b) c)"),
    ("a NEAR/2 b c", "(AND (NEAR/2 a b) c)"),
    ("(a OR b) NEAR/3 title:c", "(NEAR/3 (OR a b) title:c)"),
    ("title:china", "title:china"),
    ('title:"export controls"', 'title:"export controls"'),
    ("title:(a OR b)", "title:(OR a b)"),
    ("Title:a", "title:a"),
    ("a and b or c near d", "(AND a and b or c near d)"),
    ("a near/3 b", '(AND a "near 3" b)'),
    ("NEARBY", "nearby"),
    ("((a))", "a"),
    (
        "(travel OR trip* OR passport* OR 出境) NEAR/8 (approv* OR restrict* OR 审批) "
        "AND (@deepseek OR AI OR engineer*)",
        '(AND (NEAR/8 (OR travel trip* passport* "出 境") (OR approv* restrict* "审 批")) (OR @deepseek ai engineer*))',
    ),
]


@pytest.mark.parametrize(("query", "expected"), PARSES)
def test_parse(query: str, expected: str) -> None:
    assert show(parse(query)) == expected


def test_parse_keeps_positions() -> None:
    node = parse('china NEAR/3 "export ban" OR @us')
    assert isinstance(node, Or)
    near, ref = node.children
    assert isinstance(near, Near) and (near.pos, near.left.pos, near.right.pos, ref.pos) == (0, 0, 13, 29)


PARSE_ERRORS = [
    ("", 0, "empty query"),
    ("   ", 0, "empty query"),
    ("a NEAR b", 2, "NEAR needs a positive word distance"),
    ("a NEAR/0 b", 2, "NEAR needs a positive word distance"),
    ("a NEAR/x b", 2, "NEAR needs a positive word distance"),
    ("a NEAR/-1 b", 2, "NEAR needs a positive word distance"),
    ("(a OR b", 0, "unclosed '('"),
    ("a OR (b c", 5, "unclosed '('"),
    ("a OR b)", 6, "unbalanced ')'"),
    ("()", 1, "expected a term but found ')'"),
    ('china "export controls', 6, "unterminated phrase"),
    ('""', 0, "empty phrase"),
    ('a "  ...  " b', 2, "empty phrase"),
    ("a AND", 2, "expected a term after 'AND'"),
    ("a OR", 2, "expected a term after 'OR'"),
    ("NOT", 0, "expected a term after 'NOT'"),
    ("a NEAR/3", 2, "expected a term after 'NEAR/3'"),
    ("OR a", 0, "expected a term but found 'OR'"),
    ("a OR OR b", 5, "expected a term but found 'OR'"),
    ("a AND OR b", 6, "expected a term but found 'OR'"),
    ("@", 0, "expected an entity id after '@'"),
    ("a @ b", 2, "expected an entity id after '@'"),
    ("title:", 0, "expected a word, phrase or group after 'title:'"),
    ("title: NOT a", 0, "expected a word, phrase or group after 'title:'"),
    ("tr*p", 2, "'*' is only allowed at the end of a word"),
    ('"a* b"', 2, "'*' is only allowed at the end of a word"),
    ("*", 0, "'*' has no letters or digits"),
    ("a - b", 2, "'-' has no letters or digits"),
    ("(a AND b) NEAR/3 c", 0, "AND cannot be used inside NEAR"),
    ("(a b) NEAR/3 c", 0, "AND cannot be used inside NEAR"),
    ("a NEAR/3 (b c)", 9, "AND cannot be used inside NEAR"),
    ("((a b) OR c) NEAR/2 d", 1, "AND cannot be used inside NEAR"),
    ("title:(a b) NEAR/2 c", 6, "AND cannot be used inside NEAR"),
    ("a NEAR/3 NOT b", 9, "NOT cannot be used inside NEAR"),
    ("(NOT a) NEAR/3 b", 0, "NOT cannot be used inside NEAR"),
    ("a NEAR/3 (b OR NOT c)", 15, "NOT cannot be used inside NEAR"),
]


@pytest.mark.parametrize(("query", "position", "message"), PARSE_ERRORS)
def test_parse_error(query: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert (caught.value.position, caught.value.message[: len(message)]) == (position, message)
    assert str(caught.value) == f"{caught.value.message} at position {position}"


MATCHES = [
    # (query, title, body, matches?)
    ("china", "", "Beijing and China", True),
    ("china", "", "Chinatown", False),
    ("CHINA", "", "china's rules", True),
    ("ai", "", "AI-driven talent", True),
    ("ai", "", "said Taiwan", False),
    ("straße", "", "STRASSE", True),
    ("U.S.", "", "the U.S. government", True),
    ("U.S.", "", "the US government", False),
    # phrases
    ('"export controls"', "", "new Export-Controls on chips", True),
    ('"export controls"', "", "controls on export", False),
    ('"export controls"', "", "export new controls", False),
    ('"export contr*"', "", "export controlling", True),
    ('"ban chips"', "Ban", "chips", False),
    # wildcards
    ("trip*", "", "Trips abroad", True),
    ("trip*", "", "a trip", True),
    ("trip*", "", "a round-trip", True),
    ("trip*", "", "airtrip", False),
    ("approv*", "", "needs approval", True),
    # implied AND, OR, NOT
    ("china ban", "", "China plans a ban", True),
    ("china ban", "", "China plans", False),
    ("china OR ban", "", "a ban", True),
    ("china NOT taiwan", "", "China news", True),
    ("china NOT taiwan", "", "China and Taiwan", False),
    ("NOT taiwan", "Weather", "", True),
    ("NOT (taiwan OR korea)", "", "Korea", False),
    ("a and b", "", "a b", False),
    ("a and b", "", "a and b", True),
    # NEAR/n: at most n tokens between, either order, never across title and body
    ("travel NEAR/3 approval", "", "approval needed for travel", True),
    ("travel NEAR/3 approval", "", "travel approval", True),
    ("travel NEAR/3 approval", "", "travel w1 w2 w3 approval", True),
    ("travel NEAR/3 approval", "", "travel w1 w2 w3 w4 approval", False),
    ("travel NEAR/3 approval", "", "approval w1 w2 w3 w4 travel", False),
    ("travel NEAR/1 approval", "", "approval for travel", True),
    ("travel NEAR/3 approval", "travel", "approval", False),
    ("travel NEAR/3 approval", "Travel approval", "", True),
    ('"travel ban" NEAR/2 china', "", "China imposes travel ban", True),
    ('"travel ban" NEAR/2 china', "", "travel ban that Beijing and China", False),
    ("(trip* OR travel) NEAR/2 (approv* OR 审批)", "", "trips need approvals", True),
    ("(a NEAR/1 b) NEAR/1 c", "", "a b c", True),
    ("(a NEAR/1 b) NEAR/1 c", "", "a b x x c", False),
    ("travel NEAR/5 travel", "", "travel", False),
    ("travel NEAR/5 travel", "", "travel and travel", True),
    # Chinese, Japanese, Korean: no word boundaries; one character = one word for NEAR
    ("出境", "", "限制员工出境旅行", True),
    ("出境 NEAR/2 审批", "", "员工出境须经审批", True),
    ("出境 NEAR/1 审批", "", "员工出境须经审批", False),
    ("审*", "", "需要审批", True),
    ("東京", "", "東京都の会社", True),
    ("삼성", "", "삼성전자가 발표했다", True),
    ("ソニー", "", "ソニーグループ", True),
    ("ai", "", "AI人才出境", True),
    # entities: any alias, or the name
    ("@deepseek", "", "深度求索公司发布新模型", True),
    ("@deepseek", "", "DeepSeek's engineers", True),
    ("@deepseek", "", "Deep Seek", False),
    ("@us", "", "in the United States", True),
    ("@us", "", "the U.S. said", True),
    ("@samsung", "", "삼성전자", True),
    ("@sony", "", "ソニーが発表", True),
    ("@openai", "", "open ai", True),
    ("@deepseek NEAR/2 engineer*", "", "engineers at DeepSeek", True),
    ("title:@deepseek", "News", "DeepSeek", False),
    # title:
    ("title:china", "China bans", "", True),
    ("title:china", "", "China", False),
    ('title:"export controls"', "New export controls", "", True),
    ('title:"export controls"', "New export", "controls", False),
    ("title:(taiwan OR china)", "About Taiwan", "", True),
    ("title:(taiwan OR china)", "About", "Taiwan", False),
    ("china NOT title:opinion", "Opinion", "China", False),
    ("china NOT title:opinion", "News", "China opinion", True),
    ("title:(NOT opinion)", "News", "opinion", True),
    ("title:trip* NEAR/2 ban", "Trip ban", "", True),
    ("title:trip* NEAR/2 ban", "Trip", "ban", False),
]


@pytest.mark.parametrize(("query", "title", "body", "expected"), MATCHES)
def test_match(query: str, title: str, body: str, expected: bool) -> None:
    assert ("t" in tag(query, title, body)) is expected


LONG = "Officials said " + "many things " * 30 + "about travel approval for engineers " + "and more " * 30 + "today."

EVIDENCE = [
    (
        "travel NEAR/3 approval",
        "Weekly news",
        "First sentence. The travel ban needs approval now! Last one.",
        ["The travel ban needs approval now!"],
    ),
    ("china", "China and the U.S. agree", "", ["China and the U.S. agree"]),
    ("chip*", "", "One. Two chips.\nThree chips here", ["Two chips.", "Three chips here"]),
    ("出境 NEAR/3 审批", "", "第一句。员工出境须经审批。其他内容。", ["员工出境须经审批。"]),
    ("NOT taiwan", "Weather report", "Nothing here.", ["Weather report"]),
    ("NOT taiwan", "", "Body only. More.", ["Body only. More."]),
    ("ai", "AI", "AI one. AI two. AI three. AI four.", ["AI", "AI one.", "AI two."]),
    ("ai ban", "", "AI ban. AI ban again.", ["AI ban.", "AI ban again."]),
    ("title:china OR exports", "China", "Exports fell.", ["China", "Exports fell."]),
    ("travel NEAR/3 engineer*", "", LONG, None),
]


@pytest.mark.parametrize(("query", "title", "body", "expected"), EVIDENCE)
def test_evidence(query: str, title: str, body: str, expected: list[str] | None) -> None:
    snippets = tag(query, title, body)["t"]
    if expected is not None:
        assert snippets == expected
        return
    (snippet,) = snippets
    assert snippet.startswith("…") and snippet.endswith("…") and len(snippet) <= 242
    assert "travel approval for engineers" in snippet


def test_entities_found_sorted_and_topics_in_order() -> None:
    tagger = Tagger(
        [Topic("z", "Z", "ai"), Topic("a", "A", "@us"), Topic("m", "M", "nothing")],
        ENTITIES,
    )
    result = tagger.tag("DeepSeek and the U.S.", "三星 and 삼성 with AI")
    assert result.entities == ["deepseek", "samsung", "us"]
    assert list(result.topics) == ["z", "a"]
    assert result.topics["a"] == ["DeepSeek and the U.S."]


def test_no_match_gives_empty_result() -> None:
    result = Tagger([Topic("t", "T", "china")], ENTITIES).tag("Weather", "Sunny all week.")
    assert (result.topics, result.entities) == ({}, [])


def test_errors_are_value_errors() -> None:
    assert issubclass(QueryError, ValueError) and issubclass(RuleError, ValueError)


RULE_ERRORS = [
    ("@foo OR china", "topic 'poaching': unknown entity '@foo' at position 0"),
    ("china OR title:@foo", "topic 'poaching': unknown entity '@foo' at position 15"),
    ("china NEAR b", "topic 'poaching': NEAR needs a positive word distance, like NEAR/5 at position 6"),
]


@pytest.mark.parametrize(("query", "message"), RULE_ERRORS)
def test_rule_error(query: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        Tagger([Topic("poaching", "Poaching", query)], ENTITIES)
    assert str(caught.value) == message
    assert caught.value.topic_id == "poaching"
    assert caught.value.position == int(message.rsplit(" ", 1)[1])


@pytest.mark.parametrize(("query", "title", "body", "expected"), MATCHES)
def test_prefilter_never_rejects_a_match(query: str, title: str, body: str, expected: bool) -> None:
    """tag() runs the token prefilter first; explain() evaluates the query alone: they must agree."""
    tagger = Tagger([Topic("t", "T", query)], ENTITIES)
    assert ("t" in tagger.tag(title, body).topics) is tagger.explain("t", title, body).matched is expected


def test_explain_names_the_missing_part() -> None:
    tagger = Tagger([Topic("t", "T", "(travel OR trip*) NEAR/3 approv* AND engineer* AND NOT tourism")], ENTITIES)
    explanation = tagger.explain("t", "Engineers travel", "No approval is needed.")
    assert not explanation.matched
    assert explanation.missing == ["(travel OR trip*) NEAR/3 approv*"]
    assert [c.snippets for c in explanation.clauses][1:] == [["Engineers travel"], ["Engineers travel"]]
    either = Tagger([Topic("t", "T", "a b OR c d e")], ENTITIES).explain("t", "c d", "")
    assert either.missing == ["e"]  # the alternative that came closest


@pytest.mark.parametrize(("text", "tokens"), [
    ("Chips, “curbs” — and H20s!", ["chips", "curbs", "and", "h20s"]),
    ("emoji 😀between words", ["emoji", "between", "words"]),
    ("İstanbul ΣΊΣΥΦΟΣ", ["i̇stanbul", "σίσυφοσ"]),
])
def test_fast_tokenizer_agrees_with_the_regex(text: str, tokens: list[str]) -> None:
    from pipelines.tagging.query import TOKEN_RE
    assert word_tokens(text) == tokens == [t.casefold() for t in TOKEN_RE.findall(text)]


# ---- named term lists: $list-id ----------------------------------------------------------------------------------

LISTS = {"hire-verbs": ("hire*", "lure*", "jump ship", "挖角"), "one": ("defect*",)}


def test_term_list_is_an_or_of_its_words() -> None:
    assert show(parse("$hire-verbs NEAR/3 @openai", LISTS)) == '(NEAR/3 (OR hire* lure* "jump ship" "挖 角") @openai)'
    assert show(parse("$one OR $18M", LISTS)) == "(OR defect* 18m)"  # "$" before a digit is a plain character


@pytest.mark.parametrize(("title", "fired"), [
    ("Meta lures OpenAI researchers", "Meta lures OpenAI researchers"),
    ("Engineers jump ship from OpenAI", "Engineers jump ship from OpenAI"),
    ("字节跳动从OpenAI挖角", "字节跳动从OpenAI挖角"),
    ("OpenAI ships a model, hiring later", None),
])
def test_term_list_matches_and_shows_its_words(title: str, fired: str | None) -> None:
    topics = Tagger([Topic("t", "T", "$hire-verbs NEAR/5 @openai")], ENTITIES, LISTS).tag(title, "").topics
    assert topics.get("t") == ([fired] if fired else None)


@pytest.mark.parametrize(("query", "message"), [
    ("china OR $nope", "topic 't': unknown term list '$nope' (defined: $hire-verbs, $one) at position 9"),
    ("title:($one AND", "topic 't': expected a term after 'AND' at position 12"),
])
def test_term_list_errors(query: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        Tagger([Topic("t", "T", query)], ENTITIES, LISTS)
    assert str(caught.value) == message


def test_entity_kind_is_an_or_of_its_entities() -> None:
    tagger = Tagger([Topic("t", "T", "hire* NEAR/3 @kind:org")], ENTITIES)
    assert tagger.tag("DeepSeek hires", "").topics == {"t": ["DeepSeek hires"]}
    assert tagger.tag("삼성 hires", "").topics and not tagger.tag("The US hires", "").topics
    with pytest.raises(RuleError, match=r"no entity of kind '@kind:lab' \(kinds: @kind:gov, @kind:org\) at position 0"):
        Tagger([Topic("t", "T", "@kind:lab")], ENTITIES)
