"""Normalization: canonical URLs, identity, plain text."""

from __future__ import annotations

import pytest

from pipelines.normalize import article_from_entry, canonical_url, html_to_text, normalize_entries


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
