"""The workbench (`talentwatch serve`, web/app.py): a real uvicorn server on 127.0.0.1 over a database filled by a
real crawl of the shared corpus's feeds plus a hostile feed, spoken to over HTTP and, where Debian's chromium is
installed, in a real browser (Playwright)."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import FeedServer, Home, need, need_corpus

from store.db import open_database
from talentwatch.config import DEFAULTS_DIR
from web.app import create_app
from web.trends import unusual

HOSTILE = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>h</title>
<item><title>&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt; DeepSeek engineers poached</title>
<link>https://hostile.example/a</link><guid>hostile-1</guid>
<description>&amp;lt;img src=x onerror=alert(3)&amp;gt;
&amp;lt;a href="javascript:alert(4)"&amp;gt;click&amp;lt;/a&amp;gt; talent war</description>
<pubDate>Tue, 17 Feb 2026 10:00:00 +0000</pubDate></item></channel></rss>"""
DOCS = Path(__file__).resolve().parent.parent / "docs"


class Server:
    """The app on a free loopback port, in a thread."""

    def __init__(self, app) -> None:  # noqa: ANN001
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    feeds = sorted(p for p in (need_corpus() / "feeds").glob("*.xml") if "sitemap" not in p.name)
    tmp = tmp_path_factory.mktemp("web")
    home = Home(tmp, f"sqlite:///{tmp / 'talentwatch.db'}")
    server = FeedServer().start()
    try:
        for p in feeds:
            server.put(f"/{p.name}", p.read_bytes())
        server.put("/hostile.xml", HOSTILE)
        home.write_config([(p.name.split("-")[0] + str(n), [server.url(f"/{p.name}")]) for n, p in enumerate(feeds)]
                          + [("hostile", [server.url("/hostile.xml")]), ("dead", ["http://127.0.0.1:9/feed.xml"])])
        assert home.run("crawl").code == 0
    finally:
        server.stop()
    from sqlalchemy import create_engine, text

    engine = create_engine(home.database_url)  # as if an older normalizer had kept a javascript: link
    with engine.begin() as conn:
        conn.execute(text("update items set url = 'javascript:alert(2)' where source_id = 'hostile'"))
    engine.dispose()
    yield home


@pytest.fixture(scope="module")
def web(crawled: Home) -> Iterator[Server]:
    server = Server(create_app(open_database(crawled.database_url), DEFAULTS_DIR / "topics.toml"))
    yield server
    server.stop()


def _csrf(client: httpx.Client, base: str) -> str:
    client.get(f"{base}/items")
    return client.cookies["tw_csrf"]


def test_healthz_counts_the_items(web: Server, crawled: Home) -> None:
    (count,), = crawled.sql("select count(*) from items")
    assert httpx.get(f"{web.url}/healthz").json() == {"ok": True, "items": count} and count > 100


def test_api_items_has_exactly_the_fields_of_items_json(web: Server, crawled: Home) -> None:
    cli = crawled.run("items", "--format", "json", "--source", "hostile").json_lines()
    api = httpx.get(f"{web.url}/api/items", params={"source": "hostile"}).json()
    assert api == {"total": len(cli), "items": cli} and len(cli) == 1
    everything = httpx.get(f"{web.url}/api/items").json()
    assert everything["total"] == len(crawled.run("items", "--format", "json").json_lines())
    assert len(everything["items"]) == 50  # a page


def test_filters_and_the_query_language(web: Server, crawled: Home) -> None:
    tagged = crawled.run("items", "--format", "json", "--tagged").json_lines()
    topic = tagged[0]["tags"][0]
    by_tag = httpx.get(f"{web.url}/api/items", params={"tag": topic}).json()
    assert by_tag["total"] == sum(topic in i["tags"] for i in tagged)
    found = httpx.get(f"{web.url}/api/items", params={"q": "(china OR chinese) NEAR/5 (ai OR tech*)"}).json()
    assert found["total"] > 0 and all("chin" in (i["title"] + i["summary"]).lower() for i in found["items"])
    since = httpx.get(f"{web.url}/api/items", params={"since": "2026-02-17", "until": "2026-02-17"}).json()
    assert since["total"] > 0 and all(i["published"].startswith("2026-02-17") for i in since["items"])
    query = "(china OR chinese) NEAR/5 (ai OR tech*)"
    cli = crawled.run("items", "--format", "json", "--query", query).json_lines()
    api = httpx.get(f"{web.url}/api/items", params={"q": query}).json()
    assert [i["id"] for i in cli][:50] == [i["id"] for i in api["items"]] and len(cli) == api["total"]
    assert len(crawled.run("items", "--format", "json", "--query", query, "--limit", "3").json_lines()) == 3
    wrong = crawled.run("items", "--query", "china NEAR/ chip")
    assert wrong.code == 2 and "--query" in wrong.err and "position" in wrong.err
    bad = httpx.get(f"{web.url}/api/items", params={"q": "china NEAR/ chip"})
    assert bad.status_code == 400 and "position" in bad.json()["error"]
    page = httpx.get(f"{web.url}/items", params={"q": "china NEAR/ chip"})
    assert page.status_code == 200 and "position" in page.text and 'role="alert"' in page.text


def test_pages_carry_the_security_headers_and_the_hostile_item_is_inert(web: Server) -> None:
    (hostile,) = httpx.get(f"{web.url}/api/items", params={"source": "hostile"}).json()["items"]
    for path in ("/", "/items", f"/items/{hostile['id']}", "/api/items", "/items/999999", "/sources", "/rules",
                 "/digests", "/trends"):
        response = httpx.get(web.url + path)
        assert response.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY" and response.headers["referrer-policy"] == "no-referrer"
    assert hostile["title"].startswith("<script>alert(1)</script>") and "onerror" in hostile["summary"]
    html = (httpx.get(f"{web.url}/items/{hostile['id']}").text
            + httpx.get(f"{web.url}/items", params={"source": "hostile"}).text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(3)&gt;" in html
    assert "<mark>&lt;script&gt;alert(1)&lt;/script&gt; DeepSeek engineers poached</mark>" in html  # evidence
    assert "<script" not in html.replace('<script src="/static/app.js" defer></script>', "")
    assert "<img" not in html and "javascript:" not in html.replace("href=&#34;javascript:alert(4)&#34;", "")


def test_a_verdict_needs_the_csrf_token_and_is_exported_for_rules_test(web: Server, crawled: Home) -> None:
    item = httpx.get(f"{web.url}/api/items", params={"tag": "poaching"}).json()["items"][0]
    url = f"{web.url}/api/items/{item['id']}/judgements"
    assert httpx.post(url, json={"topic": "poaching", "relevant": False}).status_code == 403
    with httpx.Client() as client:
        token = _csrf(client, web.url)
        assert client.post(url, json={"topic": "poaching", "relevant": False},
                           headers={"X-CSRF-Token": "forged"}).status_code == 403
        ok = client.post(url, json={"topic": "poaching", "relevant": False}, headers={"X-CSRF-Token": token})
        assert ok.status_code == 200
        assert client.post(url, json={"topic": "nope", "relevant": True},
                           headers={"X-CSRF-Token": token}).status_code == 400
        client.post(url, json={"topic": "travel-approval", "relevant": True}, headers={"X-CSRF-Token": token})
    assert sorted(crawled.sql("select topic_id, relevant from judgements where item_id = :i", i=item["id"])) == [
        ("poaching", False), ("travel-approval", True)]
    exported = crawled.run("judgements", "export").json_lines()
    (mine,) = [r for r in exported if r["id"] == item["id"]]
    assert mine["labels"] == ["travel-approval"] and mine["judged"] == ["poaching", "travel-approval"]
    path = crawled.path / "mine.jsonl"
    path.write_text(crawled.run("judgements", "export").out)
    report = crawled.run("rules", "test", str(path), "--format", "json")
    assert report.code == 0, report.err
    rows = {r["topic"]: r for r in json.loads(report.out)["topics"]}
    assert rows["poaching"]["fp"] == 1 and rows["travel-approval"]["fn"] + rows["travel-approval"]["tp"] == 1


def test_story_sources_rules_and_digest_pages(web: Server, crawled: Home) -> None:
    (story, n), = crawled.sql("select story_id, count(*) from items group by story_id order by count(*) desc limit 1")
    page = httpx.get(f"{web.url}/stories/{story}").text
    assert n > 1 and page.count('class="entry"') == n
    assert httpx.get(f"{web.url}/stories/999999").status_code == 404

    sources = httpx.get(f"{web.url}/sources").text
    rows = sources.split("<tbody>")[1].split("<tr ")[1:]
    assert rows[0].startswith('class="failing"') and "dead" in rows[0]  # failing feeds first
    assert len(rows) > 50 and all(r.startswith('class="ok"') for r in rows[1:])

    item = httpx.get(f"{web.url}/api/items", params={"tag": "poaching"}).json()["items"][-1]
    with httpx.Client() as client:
        token = _csrf(client, web.url)
        client.post(f"{web.url}/api/items/{item['id']}/judgements", json={"topic": "poaching", "relevant": True},
                    headers={"X-CSRF-Token": token})
    rules = httpx.get(f"{web.url}/rules").text
    poaching = rules.split('data-topic="poaching"')[1].split("</tr>")[0]
    assert '<td class="recall">1.00</td>' in poaching  # the rule tags the item judged relevant
    trial = httpx.get(f"{web.url}/rules", params={"topic": "poaching", "q": "talent"}).text
    assert "would add" in trial and "would drop" in trial and "On your verdicts" in trial
    bad = httpx.get(f"{web.url}/rules", params={"topic": "poaching", "q": "talent NEAR/ war"}).text
    assert 'role="alert"' in bad and "position" in bad

    assert crawled.run("digest", "--week", "2026-W08", "--send").code == 0  # to the outbox: no SMTP configured
    (digest,), = crawled.sql("select id from digests")
    assert f'href="/digests/{digest}"' in httpx.get(f"{web.url}/digests").text
    sent = httpx.get(f"{web.url}/digests/{digest}")
    assert sent.status_code == 200 and "<html" in sent.text.lower()
    assert "script-src" not in sent.headers["content-security-policy"]  # no script at all: default-src 'none'
    assert sent.headers["x-frame-options"] == "DENY"


def test_evidence_is_marked_in_the_text_and_stays_text() -> None:
    from web.app import highlight

    pieces = highlight("Intro. Meta poached <b>two</b> researchers. Outro", ["Meta poached <b>two</b> researchers."])
    assert pieces == [("Intro. ", False), ("Meta poached <b>two</b> researchers", True), (". Outro", False)]
    assert highlight("nothing here", ["absent"]) == [("nothing here", False)]


def test_unusual_weeks_are_well_above_the_weeks_before() -> None:
    assert unusual([2, 3, 2, 3, 2, 9, 3]) == [False] * 5 + [True, False]
    assert unusual([0, 0, 0, 0, 2]) == [False] * 5  # fewer than 3 more than usual
    assert unusual([5, 5, 5]) == [False] * 3  # too little history to judge


def test_trends_draw_a_bar_per_week_for_topics_and_entities(web: Server, crawled: Home) -> None:
    page = httpx.get(f"{web.url}/trends", params={"week": "2026-W08", "weeks": "8"}).text
    charts = page.split('<figure class="chart">')[1:]
    assert len(charts) >= 3 + 1  # the three topics, and entities
    for chart in charts:
        assert chart.count("<rect ") == 8
    poaching = next(c for c in charts if "/items?tag=poaching" in c)
    (labels,) = [c.split('aria-label="')[1].split('"')[0] for c in [poaching]]
    counts = [int(x) for x in labels.split(": ")[1].split(", ")]
    assert counts[-1] >= 1  # the hostile item of 2026-02-17 is a poaching story of the last week


def test_atom_feeds_per_topic_and_per_query_read_by_feedparser(web: Server) -> None:
    import feedparser

    body = httpx.get(f"{web.url}/feeds/topic/poaching.atom")
    assert body.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(body.content)
    api = httpx.get(f"{web.url}/api/items", params={"tag": "poaching"}).json()["items"]
    assert not parsed.bozo and [e.title for e in parsed.entries] == [i["title"] or "(no title)" for i in api]
    hostile = next(e for e in parsed.entries if e.title.startswith("<script>"))
    assert hostile.link.startswith(web.url + "/items/")  # its javascript: link is not passed on
    search = feedparser.parse(httpx.get(f"{web.url}/feeds/search.atom", params={"q": "talent NEAR/3 war"}).content)
    assert not search.bozo and search.entries and all("talent" in (e.title + e.summary).lower()
                                                      for e in search.entries)
    assert httpx.get(f"{web.url}/feeds/search.atom", params={"q": "talent NEAR/ war"}).status_code == 400
    assert httpx.get(f"{web.url}/feeds/topic/nope.atom").status_code == 404


def test_with_a_password_every_route_but_healthz_needs_it(crawled: Home) -> None:
    server = Server(create_app(open_database(crawled.database_url), DEFAULTS_DIR / "topics.toml", "s3cret"))
    try:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        for path in ("/", "/items", "/api/items"):
            assert httpx.get(server.url + path).status_code == 401
        wrong = "Basic " + base64.b64encode(b"analyst:nope").decode()
        right = "Basic " + base64.b64encode(b"analyst:s3cret").decode()
        assert httpx.get(f"{server.url}/items", headers={"Authorization": wrong}).status_code == 401
        assert httpx.get(f"{server.url}/items", headers={"Authorization": right}).status_code == 200
        item = httpx.get(f"{server.url}/api/items", headers={"Authorization": right}).json()["items"][0]
        posted = httpx.post(f"{server.url}/api/items/{item['id']}/judgements", headers={"Authorization": right},
                            json={"topic": "poaching", "relevant": True})  # an API client: basic auth, no CSRF
        assert posted.status_code == 200
        with httpx.Client(base_url=server.url, headers={"Accept": "text/html"}) as browser:
            sent = browser.get("/items?tag=poaching")
            assert sent.status_code == 303 and sent.headers["location"] == "/login?next=%2Fitems%3Ftag%3Dpoaching"
            form = browser.get(sent.headers["location"])
            token = form.text.split('name="csrf" value="')[1].split('"')[0]
            wrong_form = browser.post("/login?next=/items", data={"password": "nope", "csrf": token})
            assert wrong_form.status_code == 401 and "Wrong password" in wrong_form.text
            assert browser.post("/login?next=/items", data={"password": "s3cret"}).status_code == 401  # no token
            logged = browser.post("/login?next=/items%3Ftag%3Dpoaching", data={"password": "s3cret", "csrf": token})
            assert logged.status_code == 303 and logged.headers["location"] == "/items?tag=poaching"
            assert browser.get("/items?tag=poaching").status_code == 200  # the session cookie
            evil = browser.post("/login?next=//evil.example/x", data={"password": "s3cret", "csrf": token})
            assert evil.headers["location"] == "/"  # no open redirect
            browser.cookies.clear()
            browser.cookies.set("tw_session", "9999999999." + "0" * 64)  # a forged session
            assert browser.get("/items").status_code == 303
    finally:
        server.stop()


def test_serve_refuses_an_address_that_is_not_loopback_without_a_password(home: Home) -> None:
    home.write_config([], extra='\n[web]\nhost = "0.0.0.0"\nport = 8751\n')
    result = home.run("serve", timeout=30)
    assert result.code == 2 and "TALENTWATCH_WEB_PASSWORD" in result.err and "[web] host" in result.err
    home.write_config([], extra='\n[web]\nport = 70000\n')
    result = home.run("serve", timeout=30)
    assert result.code == 2 and "[web] port" in result.err


def test_in_a_browser_keyboard_and_verdicts_without_console_errors(web: Server, crawled: Home) -> None:
    need(Path("/usr/bin/chromium").exists(), "Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone's width
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(web.url) else None)
        if os.environ.get("TALENTWATCH_UPDATE_SCREENSHOT") == "1":  # rewrite docs/web-*.png
            (story,), = crawled.sql("select story_id from items group by story_id order by count(*) desc limit 1")
            tagged = next(i for i in crawled.run("items", "--format", "json", "--tagged").json_lines()
                          if i["source"] != "hostile")
            for name, path in (("story", f"/stories/{story}"), ("items", "/items?since=2026-02-17&until=2026-02-17"),
                               ("item", f"/items/{tagged['id']}"), ("trends", "/trends?week=2026-W08&weeks=16")):
                desktop = browser.new_page(viewport={"width": 1100, "height": 900})
                desktop.goto(web.url + path)
                desktop.screenshot(path=str(DOCS / f"web-{name}.png"))
                desktop.close()
        page.goto(f"{web.url}/items?tag=poaching")
        page.keyboard.press("j")
        assert page.locator(".entry.current").count() == 1
        first = page.locator(".entry.current").get_attribute("data-id")
        page.keyboard.press("o")
        page.wait_for_url(f"{web.url}/items/{first}")
        page.locator('.judge[data-topic="poaching"][data-relevant="false"]').click()
        page.wait_for_selector('.judge[data-topic="poaching"][data-relevant="false"][aria-pressed="true"]')
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "search"
        page.keyboard.type("(china OR chinese) NEAR/5 (ai OR tech*)")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{web.url}/items?q=*")
        assert page.locator(".entry").count() > 0
        (hostile,) = httpx.get(f"{web.url}/api/items", params={"source": "hostile"}).json()["items"]
        page.goto(f"{web.url}/items/{hostile['id']}")
        assert page.locator("h1").inner_text().startswith("<script>alert(1)</script>")  # shown as text
        assert page.locator("script").count() == 1 and page.locator("img").count() == 0
        browser.close()
    (verdict,), = crawled.sql("select relevant from judgements where item_id = :i and topic_id = 'poaching'",
                              i=int(first))
    assert not verdict
    assert not errors, errors
    assert not outside, outside
