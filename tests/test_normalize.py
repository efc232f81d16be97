"""Normalization: canonical URLs, identity, plain text."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipelines.normalize import (
    _canonical_url,
    _tidy,
    article_from_entry,
    canonical_url,
    html_to_text,
    normalize_entries,
)


@pytest.mark.parametrize("url, expected", [
    ("HTTPS://Example.COM/a", "https://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:8080/a", "http://example.com:8080/a"),
    ("https://example.com/a?utm_source=rss&utm_medium=feed", "https://example.com/a"),
    ("https://example.com/a?id=2&fbclid=x&gclid=y&b=1", "https://example.com/a?b=1&id=2"),
    ("https://example.com/a#comments", "https://example.com/a"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com/%7Euser/caf%C3%A9", "https://example.com/~user/caf%C3%A9"),
])
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize("html, expected", [
    ("plain text", "plain text"),
    ("<p>One</p><p>Two &amp; three</p>", "One\nTwo & three"),
    ("<div>a<script>alert(1)</script><style>p{}</style> b</div>", "a b"),
    ("Tom &lt;b&gt; &#8220;quoted&#8221;", "Tom <b> \u201cquoted\u201d"),
    ("<img src=x onerror=alert(1)>caption", "caption"),
    ("", ""),
])
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_same_url_is_one_article_and_tracking_does_not_split_it() -> None:
    entries = [{"title": "A", "link": "https://x.com/a?utm_source=1"}, {"title": "A again", "link": "https://X.com/a"}]
    (article,) = normalize_entries(entries)
    assert article.title == "A" and article.url == "https://x.com/a"


def test_entry_without_link_is_identified_by_guid_then_content() -> None:
    by_guid = article_from_entry({"title": "T", "guid": "tag:x,2026:1"})
    by_content = article_from_entry({"title": "T", "summary": "S"})
    assert by_guid and by_content and by_guid.url is None and by_guid.key != by_content.key
    assert article_from_entry({"title": "", "summary": ""}) is None


_LABEL = st.text("abcXYZ019-", min_size=1, max_size=8)
_SIMPLE = st.builds(
    lambda scheme, labels, port, path, fragment: f"{scheme}://{'.'.join(labels)}{port}{path}{fragment}",
    st.sampled_from(["http", "https", "HTTP", "Https"]), st.lists(_LABEL, min_size=1, max_size=3),
    st.sampled_from(["", ":80", ":443", ":8080", ":080", ":0", ":65535", ":99999"]),
    st.one_of(st.just(""), st.text("/AZaz09._~!$&'()*+,=:@-", max_size=16).map(lambda p: "/" + p)),
    st.sampled_from(["", "#", "#x", "#a?b"]))


@settings(max_examples=3000, deadline=None)
@given(_SIMPLE)
@example("http://0").via("a host ending in a number is an IPv4 address to w3lib >= 2.6")
@example("http://1.2").via("w3lib >= 2.6 reads it as 1.0.0.2")
@example("https://a.b.019:8080/x").via("w3lib >= 2.6 refuses it")
@example("http://127.0.0.1:8080/feed").via("a dotted quad keeps the shortcut")
def test_simple_urls_take_a_shortcut_to_the_same_canonical_url(url: str) -> None:
    """canonical_url skips the general path for plain http(s) links; the answer must be the general one."""
    try:
        expected = _canonical_url(url)
    except ValueError:  # a port out of range: the general path refuses it, and so must the shortcut
        with pytest.raises(ValueError):
            canonical_url(url)
        return
    assert canonical_url(url) == expected


@settings(max_examples=3000, deadline=None)
@given(st.text(" \t\n\r\x0b\x0c\xa0\u2003\u3000\x1c\x85\u2028ab\u00e9\u56fd", max_size=24))
def test_tidy_is_the_two_regular_expressions(text: str) -> None:
    """_tidy's line-splitting is the original pair of substitutions, without their cost on long texts."""
    spaces = re.sub(r"[ \t\r\f\v\u00a0]+", " ", text)
    assert _tidy(text) == re.sub(r"\s*\n\s*", "\n", spaces).strip()
