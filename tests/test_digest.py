"""The digest's content: a realistic week of real corpus items (stories from several outlets once, counts,
entities, source health), rendered in headless Chromium; an empty week; hostile feed content; periods and the
command line."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from conftest import REPO, FeedServer, Home
from digest_week import WEEK, console_errors, crawl_week, screenshot

from digest.period import last_week, parse_week, period_of, week

UPDATE_SCREENSHOT = os.environ.get("TALENTWATCH_UPDATE_SCREENSHOT") == "1"  # rewrite docs/digest.png


@pytest.fixture(scope="module")
def realistic(tmp_path_factory: pytest.TempPathFactory):
    """The week of 2026-02-16 crawled from the corpus; its digest previewed once."""
    server = FeedServer().start()
    tmp = tmp_path_factory.mktemp("week")
    home = crawl_week(tmp, server)
    result = home.run("digest", "--week", WEEK, "--preview", str(tmp / "digest.html"))
    assert result.code == 0, result.err
    yield home, (tmp / "digest.html").read_text(), result
    server.stop()


def sections(html: str) -> dict[str, list[str]]:
    """Section name -> story titles, read back from the HTML."""
    out: dict[str, list[str]] = {}
    for part in re.split(r'<div style="font-size:18px;font-weight:bold;color:#0f2a4a;">', html)[1:]:
        name = part.split(" <span", 1)[0].strip()
        out[name] = re.findall(r'<a href="[^"]+" style="color:#0f3d75;text-decoration:none;">([^<]+)</a>', part)
    return out


def test_week_groups_the_same_story_from_several_outlets_once(realistic) -> None:
    _, html, result = realistic
    found = sections(html)
    assert list(found) == ["AI governance: probes, rules and summits", "China&#39;s technology and security race"]
    titles = [t for ts in found.values() for t in ts]
    assert len(titles) == len(set(titles))
    spain = [t for t in titles if "Spain" in t]
    assert len(spain) == 1  # Deutsche Welle and TIME reported it: one story
    assert "also: TIME" in html or "also: Deutsche Welle" in html
    assert "2 outlets" in html
    assert len([t for t in titles if "humanoid robots" in t.lower()]) == 1  # CBS and DW on the gala: one story
    assert "10 stories" in result.out


def test_week_shows_counts_entities_and_source_health(realistic) -> None:
    _, html, _ = realistic
    for column in ("W04", "W05", "W06", "W07", "W08"):
        assert f">{column}<" in html
    assert "Travel approval for AI talent" in html  # a topic with no story still has its row of counts
    assert "Most mentioned" in html and "Meta Platforms" in html
    assert "1 feed without a successful fetch all period" in html
    assert "Reuters" in html and "/status/503" in html and "HTTP 503" in html
    assert "<script" not in html.lower() and "src=" not in html and "url(" not in html  # nothing external


def test_week_renders_in_headless_chromium_without_console_errors(realistic, tmp_path: Path) -> None:
    home, html, _ = realistic
    page = tmp_path / "digest.html"
    page.write_text(html)
    png = tmp_path / "digest.png"
    log = screenshot(page, png, tmp_path / "profile", height=2300)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    assert console_errors(log) == []
    if UPDATE_SCREENSHOT:
        shutil.copy(png, REPO / "docs" / "digest.png")


def test_console_error_detection_works(tmp_path: Path) -> None:
    """The check above can fail: a page with a script error is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('broken'); missing_function();</script></body></html>")
    log = screenshot(page, tmp_path / "bad.png", tmp_path / "profile", height=200)
    assert any("Uncaught" in line for line in console_errors(log))


def test_empty_week_still_sends_a_short_digest_with_source_health(realistic) -> None:
    home, _, _ = realistic
    result = home.run("digest", "--week", "2026-W20", "--send")
    assert result.code == 0, result.err
    (eml,) = (home.path / "outbox").glob("2026-W20-*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "talentwatch digest 2026-W20: no stories"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "No stories this period" in text and "No stories this period" in html
    assert "SOURCE HEALTH" in text and "Reuters" in text and "Reuters" in html


# double-escaped, as many feeds do: after parsing, the title's text itself is "<script>..." and "<img ... onerror=...>"
HOSTILE_TITLE = ("&amp;lt;script&amp;gt;alert('x')&amp;lt;/script&amp;gt; Export controls on chips "
                 "&amp;lt;img src=x onerror=alert(1)&amp;gt;")
HOSTILE = f"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
<item><title>{HOSTILE_TITLE}</title><link>https://evil.example.com/a"onmouseover="alert(1)</link>
<description>&lt;b&gt;Export controls&lt;/b&gt; &lt;a href="javascript:alert(1)"&gt;click&lt;/a&gt;
&lt;iframe src="https://evil.example.com"&gt;&lt;/iframe&gt; on chips tighten</description>
<pubDate>Mon, 23 Nov 2026 10:00:00 +0000</pubDate></item>
<item><title>Export controls on chips, said the ministry</title><link>javascript:alert(document.cookie)</link>
<guid>x2</guid><description>x</description><pubDate>Mon, 23 Nov 2026 11:00:00 +0000</pubDate></item>
</channel></rss>""".encode()


def test_hostile_feed_content_is_escaped_in_html_and_plain_in_text(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/evil.xml", HOSTILE)
    home.write_config([("evil", [feed_server.url("/evil.xml")])], topics=(
        '[[topic]]\nid = "export-controls"\nname = "Export <b>controls</b>"\nquery = \'"export controls"\'\n'))
    assert home.run("crawl").code == 0
    assert home.run("digest", "--week", "2026-W48", "--send").code == 0
    (eml,) = (home.path / "outbox").glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "<script" not in html and "<img" not in html and "<iframe" not in html
    assert "Export &lt;b&gt;controls&lt;/b&gt;" in html
    assert "&lt;script&gt;" in html and "onerror=alert(1)&gt;" in html  # shown as text
    assert 'href="javascript' not in html and "onmouseover=\"alert" not in html
    assert "Export controls on chips, said the ministry" in html  # the javascript: link is not made a link
    assert not re.search(r"<[a-zA-Z/][^>]*>", text)  # no markup at all in the text part
    assert "Export controls on chips" in text


@pytest.mark.parametrize("value, expected", [
    ("2026-W48", (date(2026, 11, 23), date(2026, 11, 29))),
    ("2026-W01", (date(2025, 12, 29), date(2026, 1, 4))),
    ("2026-W53", (date(2026, 12, 28), date(2027, 1, 3))),
])
def test_iso_weeks(value: str, expected: tuple[date, date]) -> None:
    period = week(*parse_week(value), "UTC")
    assert (period.first, period.last) == expected and period.label == value


def test_periods_follow_the_digest_time_zone() -> None:
    period = week(2026, 48, "Asia/Shanghai")
    assert period.start == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert period.end == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    assert last_week(datetime(2026, 11, 29, 23, 30, tzinfo=UTC), "Asia/Shanghai").label == "2026-W48"  # Mon 7:30
    assert last_week(datetime(2026, 11, 29, 23, 30, tzinfo=UTC), "UTC").label == "2026-W47"  # still Sunday
    assert period_of(date(2026, 11, 23), date(2026, 11, 29), "UTC").label == "2026-W48"
    assert period_of(date(2026, 11, 2), date(2026, 11, 4), "UTC").before(1)[0].label == "2026-10-30..2026-11-01"


@pytest.mark.parametrize("args, expected", [
    (["--week", "2026-48", "--send"], "expected an ISO week such as 2026-W48"),
    (["--week", "2026-W54", "--send"], "2026 has no week 54"),
    (["--from", "2026-11-02", "--send"], "--from and --to go together"),
    (["--week", "2026-W48", "--from", "2026-11-02", "--to", "2026-11-08", "--send"], "not both"),
    (["--from", "2026-11-09", "--to", "2026-11-02", "--send"], "ends (2026-11-02) before it starts"),
    (["--week", "2026-W48"], "one of the arguments --preview --send is required"),
    (["--week", "2026-W48", "--preview", "x.html", "--force"], "--force goes with --send"),
])
def test_digest_usage_errors_exit_2(home: Home, args: list[str], expected: str) -> None:
    home.write_config()
    result = home.run("digest", *args)
    assert result.code == 2 and expected in result.err


def test_bad_smtp_url_is_a_config_error_naming_the_key(home: Home) -> None:
    home.write_config(extra='\n[smtp]\nurl = "mail.example.org"\n[digest]\nto = ["a@example.org"]\n')
    result = home.run("digest", "--week", "2026-W48", "--send")
    assert result.code == 2 and "[smtp] url" in result.err and str(home.config) in result.err


# Script, event handlers, javascript:/data: URLs and CSS expressions, as a feed carries them: raw HTML in CDATA
# (the pipeline makes text of it), escaped once (the same) and escaped twice (the text itself is markup, which the
# digest must show as text). Each must come out of the digest inert: no element, attribute or URL that runs anything.
XSS_VECTORS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)><animate onbegin=alert(1) attributeName=x></svg>",
    '<a href="javascript:alert(1)">click</a> <a href=" JaVa&#x09;ScRiPt:alert(1)">tab</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>',
    '<div style="width: expression(alert(1)); background:url(javascript:alert(1))">css</div>',
    "<style>body{background:url('javascript:alert(1)')} *{x:expression(alert(1))}</style>",
    "<iframe src=javascript:alert(1)></iframe><object data=javascript:alert(1)></object><embed src=x.swf>",
    '"><script>alert(1)</script><input autofocus onfocus=alert(1)>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)"><base href="javascript:alert(1)//">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<form action=javascript:alert(1)><button>go</button></form><body onload=alert(1)>",
]
XSS_LINKS = ["javascript:alert(1)", "JaVaScRiPt:alert(document.cookie)", "vbscript:msgbox(1)",
             "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", " javascript:alert(1)"]


def _xss_feed() -> bytes:
    from xml.sax.saxutils import escape

    items = []
    for n, vector in enumerate(XSS_VECTORS):
        for how, text in (("raw", f"<![CDATA[{vector}]]>"), ("escaped", escape(vector)),
                          ("double", escape(escape(vector)))):
            link = XSS_LINKS[n % len(XSS_LINKS)] if how == "raw" else f"https://evil.example.com/{n}/{how}"
            words = " ".join(f"{how}{n}w{i}" for i in range(12))  # unique words: one story per item
            items.append(f"<item><title>Export controls {words} {text}</title><link>{escape(link)}</link>"
                         f"<guid>xss-{n}-{how}</guid><description>Export controls {words} {text}</description>"
                         f"<pubDate>Mon, 23 Nov 2026 {n % 24:02d}:00:00 +0000</pubDate></item>")
    return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>x</title>{''.join(items)}"
            f"</channel></rss>").encode()


def test_script_handlers_javascript_urls_and_css_expressions_render_inert(home: Home, feed_server: FeedServer) -> None:
    import lxml.html

    feed_server.put("/xss.xml", _xss_feed())
    home.write_config([("evil", [feed_server.url("/xss.xml")])], topics=(
        '[[topic]]\nid = "export-controls"\nname = "Export controls"\nquery = \'"export controls"\'\n'))
    assert home.run("crawl").code == 0
    assert home.sql("select count(*) from items") == [(3 * len(XSS_VECTORS),)]
    page = home.path / "digest.html"
    assert home.run("digest", "--week", "2026-W48", "--preview", str(page)).code == 0
    html = page.read_text()
    assert all(f"{how}{n}w0" in html for n in range(len(XSS_VECTORS)) for how in ("raw", "escaped", "double"))
    root = lxml.html.document_fromstring(html)
    bad_tags = {"script", "iframe", "object", "embed", "svg", "math", "form", "input", "button", "base", "link",
                "animate", "img", "frame", "frameset", "applet"}
    found = [el.tag for el in root.iter() if isinstance(el.tag, str) and el.tag in bad_tags]
    assert not found
    assert not root.xpath("//meta[@http-equiv]")
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), (el.tag, name, value)
            if name.lower() in ("href", "src", "action", "data", "formaction", "xlink:href", "background"):
                assert value.startswith(("https://", "http://", "#", "mailto:")), (el.tag, name, value)
            if name.lower() == "style":
                assert not re.search(r"expression|javascript|url\(|@import|behavior", value, re.I), value
    for style in root.iter("style"):  # the digest's own stylesheet only
        assert not re.search(r"expression|javascript|url\(|@import", style.text_content(), re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the double-escaped ones: shown as text
