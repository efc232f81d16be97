"""`talentwatch sources`: list, OPML import (readers' real export styles, hostile files) and export (read back by
Debian's newsboat), and `sources add` finding a site's feed on loopback servers, with link safety."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import tomllib
from email.utils import parsedate_to_datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from conftest import CORPUS, FeedServer, Home, need, need_corpus
from test_crawl_changes import rss

OPML = Path(__file__).parent / "data" / "opml"
SOURCES = """\
# Our outlets. Comments and order must survive `--write`.

[[source]]
id = "techcrunch"                 # the main feed
name = "TechCrunch"
feeds = ["https://TechCrunch.com/feed/"]
interval = "15m"
language = "en"

# --- China desk ---
[[source]]
id = "caixin"
name = "Caixin Global"
feeds = ["https://gateway.caixin.com/api/data/global/feedlyRss.xml", "https://www.caixinglobal.com/rss/tech.xml"]
site = "caixinglobal.com"
fulltext = true
"""


def write_sources(home: Home, text: str = SOURCES, extra: str = "") -> Path:
    home.write_config([], extra=extra)
    path = home.path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def toml_sources(text: str) -> list[dict]:
    return tomllib.loads(text).get("source", []) if text.strip() else []


# ---- list ---------------------------------------------------------------------------------------------------------

def test_list_json_has_the_fields_and_interval_as_written(home: Home) -> None:
    write_sources(home, extra="fulltext = false\n")
    records = home.run("sources", "list", "--format", "json").json_lines()
    assert [r["id"] for r in records] == ["techcrunch", "caixin"]
    assert all(set(r) == {"id", "name", "feeds", "site", "interval", "fulltext", "language"} for r in records)
    tc, caixin = records
    assert tc["interval"] == "15m" and caixin["interval"] is None  # as configured: the default is not written in
    assert tc["fulltext"] is False and caixin["fulltext"] is True
    assert caixin["feeds"] == ["https://gateway.caixin.com/api/data/global/feedlyRss.xml",
                               "https://www.caixinglobal.com/rss/tech.xml"]
    assert (tc["site"], tc["language"], caixin["site"], caixin["language"]) == (None, "en", "caixinglobal.com", None)


def test_list_table_shows_every_source_and_feed(home: Home) -> None:
    write_sources(home)
    result = home.run("sources", "list", env={"COLUMNS": "250"})
    assert result.code == 0, result.err
    assert "2 sources, 3 feeds" in result.out
    for text in ("techcrunch", "Caixin Global", "https://www.caixinglobal.com/rss/tech.xml", "15m"):
        assert text in result.out


def test_list_of_the_shipped_sources(home: Home) -> None:
    home.write_config()  # no [crawl] sources: the shipped list
    records = home.run("sources", "list", "--format", "json").json_lines()
    assert len(records) == 20 and len({r["id"] for r in records}) == 20
    assert sum(len(r["feeds"]) for r in records) >= 20


# ---- import -------------------------------------------------------------------------------------------------------

# file -> (the feed URLs it adds to SOURCES, {id: name} of some of them, the stderr summary)
READERS = {
    "newsboat.opml": ([
        "https://www.scmp.com/rss/320663/feed", "https://feeds.arstechnica.com/arstechnica/index",
        "https://www.theregister.com/headlines.atom",
        "https://news.google.com/rss/search?q=%22AI+talent%22+China&hl=en-US&gl=US&ceid=US:en",
    ], {"south-china-morning-post-tech": "South China Morning Post - Tech",
        "theregister-com": "theregister.com"},  # newsboat writes title="" for a feed it never fetched
        "4 sources added, 0 feeds already configured"),
    "miniflux.opml": ([
        "https://feeds.arstechnica.com/arstechnica/technology-lab", "https://cn.wsj.com/zh-hans/rss",
        "https://www.sixthtone.com/rss",
    ], {"ars-technica": "Ars Technica", "cn-wsj-com": "华尔街日报", "sixth-tone": "Sixth Tone"},
        "3 sources added, 1 feeds already configured"),  # techcrunch.com/feed/ is TechCrunch.com/feed/
    "freshrss.opml": ([
        "https://www.technologyreview.com/feed/", "https://www.lawfaremedia.org/feeds/lawfare",
        "https://www.csis.org/rss.xml?type=analysis&region=china",
    ], {"mit-technology-review": "MIT Technology Review", "csis-friends": "CSIS & Friends"},
        "3 sources added, 0 feeds already configured"),
    "feedly.opml": ([
        "https://www.semianalysis.com/feed", "https://www.tomshardware.com/feeds/all",
    ], {"tom-s-hardware": "Tom's Hardware"},
        "2 sources added, 1 feeds already configured"),  # Caixin's feed is configured, in a source of two feeds
    "inoreader.opml": ([
        "https://the-decoder.com/feed/", "https://techcrunch.com/category/artificial-intelligence/feed/",
        "https://restofworld.org/feed/latest",
    ], {"the-decoder": "The Decoder"},
        "3 sources added, 0 feeds already configured, 1 listed twice"),
    "rssowl-latin1.opml": ([
        "https://rss.sueddeutsche.de/rss/Wirtschaft", "https://www.lecho.be/rss/tech.xml",
        "https://cafebabel.com/en/feed/",
    ], {"suddeutsche-zeitung-wirtschaft": "Süddeutsche Zeitung: Wirtschaft", "l-echo-tech": "L'Écho · Tech",
        "cafe-babel": "Café Babel"},
        "3 sources added, 0 feeds already configured"),
    "url-attribute.opml": ([
        "https://asia.nikkei.com/rss/feed/nar", "https://www.protocol.com/feeds/feed.rss",
    ], {"nikkei-asia": "Nikkei Asia", "protocol": "Protocol"},  # type="link" url=... is a page, not a feed
        "2 sources added, 0 feeds already configured"),
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_import_readers_exports(home: Home, name: str) -> None:
    urls, names, summary = READERS[name]
    write_sources(home)
    result = home.run("sources", "import", str(OPML / name))
    assert result.code == 0, result.err
    assert summary in result.err
    added = toml_sources(result.out)
    assert [f for s in added for f in s["feeds"]] == urls  # one source per feed, in the file's order
    ids = [s["id"] for s in added]
    assert len(set(ids)) == len(ids) and all(i.replace("-", "").isalnum() and i == i.lower() for i in ids)
    assert not {"techcrunch", "caixin"} & set(ids)
    by_id = {s["id"]: s["name"] for s in added}
    assert {i: by_id.get(i) for i in names} == names


def test_import_keeps_site_and_language(home: Home) -> None:
    write_sources(home)
    added = {s["id"]: s for s in toml_sources(home.run("sources", "import", str(OPML / "freshrss.opml")).out)}
    assert added["lawfare"]["site"] == "lawfaremedia.org" and added["lawfare"]["language"] == "en"  # from en-US
    assert "language" not in added["mit-technology-review"]


def test_import_ids_are_unique_against_the_configured_ones(home: Home, tmp_path: Path) -> None:
    write_sources(home)
    opml = tmp_path / "same-names.opml"
    opml.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>x</title></head><body>
  <outline type="rss" text="TechCrunch" xmlUrl="https://techcrunch.com/category/startups/feed/"/>
  <outline type="rss" text="TechCrunch" xmlUrl="https://techcrunch.com/category/venture/feed/"/>
  <outline type="rss" text="新华网" xmlUrl="http://www.xinhuanet.com/politics/news_politics.xml"/>
</body></opml>
""", encoding="utf-8")
    added = toml_sources(home.run("sources", "import", str(opml)).out)
    assert [s["id"] for s in added] == ["techcrunch-2", "techcrunch-3", "xinhuanet-com"]


def test_import_write_appends_keeping_comments_and_order(home: Home) -> None:
    path = write_sources(home)
    result = home.run("sources", "import", str(OPML / "miniflux.opml"), "--write")
    assert result.code == 0, result.err
    assert result.out == ""
    assert "3 sources added, 1 feeds already configured" in result.err and str(path) in result.err
    text = path.read_text(encoding="utf-8")
    assert text.startswith(SOURCES.rstrip())  # everything written before is there, byte for byte
    assert "\n\n[[source]]\nid = \"ars-technica\"" in text
    listed = home.run("sources", "list", "--format", "json").json_lines()
    assert [r["id"] for r in listed] == ["techcrunch", "caixin", "ars-technica", "cn-wsj-com", "sixth-tone"]

    again = home.run("sources", "import", str(OPML / "miniflux.opml"), "--write")
    assert again.code == 0 and "0 sources added, 4 feeds already configured" in again.err
    assert path.read_text(encoding="utf-8") == text


def test_import_write_into_an_inline_array(home: Home) -> None:
    path = write_sources(home, 'source = [{id = "a", feeds = ["https://a.example.org/feed"]}]  # one line\n')
    assert home.run("sources", "import", str(OPML / "feedly.opml"), "--write").code == 0
    text = path.read_text(encoding="utf-8")
    assert "# one line" in text
    assert [r["id"] for r in home.run("sources", "list", "--format", "json").json_lines()] == [
        "a", "semianalysis", "tom-s-hardware", "caixin-global"]


def test_write_refuses_the_shipped_list(home: Home) -> None:
    home.write_config()
    shipped = Path(__file__).parent.parent / "talentwatch" / "defaults" / "sources.toml"
    before = shipped.read_bytes()
    result = home.run("sources", "import", str(OPML / "feedly.opml"), "--write")
    assert result.code == 2 and "shipped list" in result.err and "[crawl] sources" in result.err
    assert shipped.read_bytes() == before


BAD = {
    "html.opml": ("<!DOCTYPE html>\n<html><head><title>My feeds</title></head>\n<body></body></html>\n",
                  "line 2: not an OPML file: the document is <html>"),
    "feed.opml": ("<?xml version='1.0'?>\n<rss version='2.0'><channel><title>t</title></channel></rss>\n",
                  "line 2: not an OPML file: the document is <rss>"),
    "json.opml": ('{"feeds": ["https://example.org/feed"]}\n', "line 1: not an OPML file: not well-formed XML"),
    "truncated.opml": ('<?xml version="1.0"?>\n<opml version="2.0">\n<body>\n<outline text="a" xmlUrl="https://a.org/f">'
                       '\n', "line 5: not an OPML file: not well-formed XML"),
    "no-body.opml": ('<?xml version="1.0"?>\n<opml version="2.0"><head><title>t</title></head></opml>\n',
                     "not an OPML file: <opml> has no <body>"),
    "missing-xmlurl.opml": ("""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="China" title="China">
      <outline type="rss" text="Caixin" title="Caixin" xmlUrl="https://www.caixinglobal.com/rss/a.xml"/>
      <outline type="rss" text="Sixth Tone" title="Sixth Tone" htmlUrl="https://www.sixthtone.com/"/>
    </outline>
  </body>
</opml>
""", "line 7: the outline 'Sixth Tone' has type=\"rss\" but no xmlUrl"),
    "not-http.opml": ('<?xml version="1.0"?>\n<opml version="2.0"><body>\n'
                      '<outline type="rss" text="x" xmlUrl="file:///etc/passwd"/>\n</body></opml>\n',
                      "line 3: xmlUrl: expected an http(s) URL, got 'file:///etc/passwd'"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_import_bad_files_name_the_line_and_write_nothing(home: Home, tmp_path: Path, name: str) -> None:
    text, expected = BAD[name]
    path = write_sources(home)
    (tmp_path / name).write_text(text, encoding="utf-8")
    result = home.run("sources", "import", str(tmp_path / name), "--write")
    assert result.code == 2
    assert f"{tmp_path / name}: {expected}" in result.err
    assert "Traceback" not in result.err and result.out == ""
    assert path.read_text(encoding="utf-8") == SOURCES


def test_import_refuses_xxe_without_reading_the_file(home: Home, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TOKEN")
    opml = tmp_path / "xxe.opml"
    opml.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE opml [
  <!ENTITY xxe SYSTEM "file://{secret}">
]>
<opml version="2.0"><head><title>&xxe;</title></head><body>
  <outline type="rss" text="&xxe;" xmlUrl="https://example.org/&xxe;"/>
</body></opml>
""")
    write_sources(home)
    result = home.run("sources", "import", str(opml))
    assert result.code == 2
    assert "line 3: refused: the file declares the XML entity 'xxe'" in result.err
    assert "TOP-SECRET-TOKEN" not in result.out + result.err


def test_import_refuses_an_external_dtd(home: Home, feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.put("/evil.dtd", b'<!ENTITY title "pwned">', content_type="application/xml-dtd")
    opml = tmp_path / "dtd.opml"
    opml.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE opml SYSTEM "{feed_server.url("/evil.dtd")}">\n'
                    '<opml version="2.0"><body><outline text="x" xmlUrl="https://example.org/f"/></body></opml>\n')
    write_sources(home)
    result = home.run("sources", "import", str(opml))
    assert result.code == 2 and "line 2: refused: the file refers to an external document" in result.err
    assert feed_server.requests_for("/evil.dtd") == []  # not fetched


def test_import_refuses_billion_laughs_at_once(home: Home, tmp_path: Path) -> None:
    entities = "".join(f'  <!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
    opml = tmp_path / "lol.opml"
    opml.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE opml [\n  <!ENTITY lol0 "lol">\n{entities}]>\n'
                    '<opml version="2.0"><body><outline type="rss" text="&lol9;" xmlUrl="https://x.org/f"/>'
                    '</body></opml>\n')
    write_sources(home)
    started = time.monotonic()
    result = home.run("sources", "import", str(opml), timeout=60)
    assert result.code == 2 and "line 3: refused: the file declares the XML entity 'lol0'" in result.err
    assert "billion laughs" in result.err
    assert time.monotonic() - started < 20


def test_import_refuses_a_50_mb_file_unread(home: Home, tmp_path: Path) -> None:
    opml = tmp_path / "huge.opml"
    outline = b'<outline type="rss" text="x" xmlUrl="https://example.org/feed"/>\n'
    with open(opml, "wb") as f:
        f.write(b'<?xml version="1.0"?>\n<opml version="2.0"><body>\n')
        f.write(outline * (50 * 2**20 // len(outline)))
        f.write(b"</body></opml>\n")
    assert opml.stat().st_size > 50 * 10**6
    write_sources(home)
    started = time.monotonic()
    result = home.run("sources", "import", str(opml))
    assert result.code == 2 and "refused: larger than 10 MB" in result.err
    assert time.monotonic() - started < 20


def test_import_of_a_missing_file(home: Home, tmp_path: Path) -> None:
    write_sources(home)
    result = home.run("sources", "import", str(tmp_path / "nope.opml"))
    assert result.code == 2 and "nope.opml: cannot read" in result.err


# ---- export -------------------------------------------------------------------------------------------------------

EXPORTED = """\
[[source]]
id = "techcrunch"
name = "TechCrunch"
feeds = ["https://techcrunch.com/feed/"]
site = "techcrunch.com"
language = "en"

[[source]]
id = "reuters"
name = "Reuters & Co — 路透"
feeds = ["https://news.google.com/rss/search?q=site%3Areuters.com+%28China%29&hl=en-US&gl=US&ceid=US%3Aen",
         "https://news.google.com/rss/search?q=site%3Areuters.com+%22AI+talent%22&hl=en-US"]
site = "reuters.com"

[[source]]
id = "loopback"
feeds = ["http://127.0.0.1:8080/feed.xml?a=1&b=<2>"]
"""


def test_export_is_opml_2_with_an_outline_per_feed(home: Home) -> None:
    write_sources(home, EXPORTED)
    result = home.run("sources", "export")
    assert result.code == 0, result.err
    root = ET.fromstring(result.out.encode())
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") and parsedate_to_datetime(root.findtext("head/dateCreated")).tzinfo
    top = root.findall("body/outline")
    assert [o.get("text") for o in top] == ["TechCrunch", "Reuters & Co — 路透", "loopback"]
    tc, reuters, loopback = top
    assert tc.attrib == {"type": "rss", "text": "TechCrunch", "title": "TechCrunch",
                         "xmlUrl": "https://techcrunch.com/feed/", "htmlUrl": "https://techcrunch.com/",
                         "language": "en"}
    assert reuters.get("xmlUrl") is None and len(reuters) == 2  # a folder holding the source's two feeds
    assert [o.get("xmlUrl") for o in reuters] == toml_sources(EXPORTED)[1]["feeds"]
    assert all(o.get("type") == "rss" and o.get("text") and o.get("htmlUrl") == "https://reuters.com/"
               for o in reuters)
    assert loopback.get("xmlUrl") == "http://127.0.0.1:8080/feed.xml?a=1&b=<2>" and loopback.get("htmlUrl") is None


def test_export_imports_back(home: Home, tmp_path: Path) -> None:
    write_sources(home, EXPORTED)
    exported = tmp_path / "export.opml"
    exported.write_text(home.run("sources", "export").out, encoding="utf-8")
    other = Home(tmp_path / "other", home.database_url)
    other.path.mkdir()
    write_sources(other, '[[source]]\nid = "x"\nfeeds = ["https://x.example.org/feed"]\n')
    result = other.run("sources", "import", str(exported))
    assert result.code == 0 and "4 sources added, 0 feeds already configured" in result.err
    assert {f for s in toml_sources(result.out) for f in s["feeds"]} == {
        f for s in toml_sources(EXPORTED) for f in s["feeds"]}


class Newsboat:
    """Debian's newsboat with its own urls, cache and config files in ``folder`` (HOME too): nothing of the
    user's is read or written."""

    def __init__(self, folder: Path) -> None:
        need(shutil.which("newsboat") is not None, "newsboat is not installed (apt-get install newsboat)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.urls = folder / "urls"
        self.urls.touch()
        (folder / "config").write_text("reload-threads 8\n")

    def run(self, *args: str) -> str:
        env = {**os.environ, "HOME": str(self.folder), "XDG_CONFIG_HOME": str(self.folder),
               "XDG_DATA_HOME": str(self.folder)}
        proc = subprocess.run(["newsboat", "-u", str(self.urls), "-c", str(self.folder / "cache.db"),
                               "-C", str(self.folder / "config"), *args],
                              capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return proc.stdout

    def export(self) -> str:
        return self.run("-e")


def xml_urls(opml: str) -> list[str]:
    return [o.get("xmlUrl") for o in ET.fromstring(opml.encode()).iter("outline") if o.get("xmlUrl")]


def test_newsboat_imports_the_export_of_the_shipped_sources(home: Home, tmp_path: Path) -> None:
    newsboat = Newsboat(tmp_path / "newsboat")
    home.write_config()
    configured = [f for r in home.run("sources", "list", "--format", "json").json_lines() for f in r["feeds"]]
    exported = tmp_path / "talentwatch.opml"
    exported.write_text(home.run("sources", "export").out, encoding="utf-8")
    newsboat.run("-i", str(exported))
    assert sorted(xml_urls(newsboat.export())) == sorted(configured)
    # a source of several feeds is a folder, which newsboat reads as a tag of each of its feeds
    reuters = [line for line in newsboat.urls.read_text().splitlines() if "reuters.com" in line]
    assert len(reuters) == 2 and all(line.endswith('"Reuters"') for line in reuters)


def test_round_trip_with_newsboat_on_the_corpus_feeds(home: Home, feed_server: FeedServer, tmp_path: Path) -> None:
    """newsboat fetches the corpus feeds (so that its export has their real titles) and exports them; talentwatch
    imports that, exports it again; a fresh newsboat imports it: the same feeds."""
    need_corpus()
    first = Newsboat(tmp_path / "newsboat-1")
    files = [line.split("\t", 1)[0] for line in (CORPUS / "feeds" / "MANIFEST.tsv").read_text().splitlines()[1:]]
    for name in files:
        feed_server.put(f"/feeds/{name}", (CORPUS / "feeds" / name).read_bytes())
    urls = [feed_server.url(f"/feeds/{name}") for name in files]
    first.urls.write_text("".join(f"{u}\n" for u in urls))
    first.run("-x", "reload")
    newsboat_opml = tmp_path / "newsboat.opml"
    newsboat_opml.write_text(first.export(), encoding="utf-8")
    assert sorted(xml_urls(newsboat_opml.read_text())) == sorted(urls)

    write_sources(home, f'# one feed is configured already\n[[source]]\nid = "first"\nfeeds = ["{urls[0]}"]\n')
    imported = home.run("sources", "import", str(newsboat_opml), "--write")
    assert imported.code == 0, imported.err
    assert f"{len(urls) - 1} sources added, 1 feeds already configured" in imported.err
    listed = home.run("sources", "list", "--format", "json").json_lines()
    assert len(listed) == len(urls) and len({r["id"] for r in listed}) == len(urls)
    names = {r["name"] for r in listed}
    assert {"Ars Technica - All content", "404 Media", "bbcchinese.com | 新闻主页"} <= names  # titles newsboat read
    assert {"ars-technica-all-content", "ars-technica-all-content-2"} <= {r["id"] for r in listed}

    talentwatch_opml = tmp_path / "talentwatch.opml"
    talentwatch_opml.write_text(home.run("sources", "export").out, encoding="utf-8")
    second = Newsboat(tmp_path / "newsboat-2")
    second.run("-i", str(talentwatch_opml))
    assert sorted(xml_urls(second.export())) == sorted(urls)


# ---- add ----------------------------------------------------------------------------------------------------------

FEED = rss([("a1", "Beijing courts AI researchers"), ("a2", "Export controls tighten")],
           extra="<link>https://www.example-news.com/</link><language>en-GB</language>").replace(
    b"<title>t</title>", b"<title>Example News: Tech</title>", 1)
EMPTY_FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>Empty</title></channel></rss>"


def page(*links: str, base: str = "") -> bytes:
    head = f'<base href="{base}">' if base else ""
    return (f"<!DOCTYPE html><html><head><title>Example News</title>{head}{''.join(links)}</head>"
            "<body><p>Stories</p></body></html>").encode()


def alternate(href: str, kind: str = "application/rss+xml") -> str:
    return f'<link rel="alternate" type="{kind}" title="feed" href="{href}">'


def add(home: Home, url: str, *args: str) -> tuple[int, list[dict], str]:
    result = home.run("sources", "add", url, *args)
    return result.code, toml_sources(result.out) if result.code == 0 else [], result.err


def test_add_a_feed_url(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/news.xml", FEED)
    write_sources(home)
    code, added, err = add(home, feed_server.url("/news.xml"))
    assert code == 0, err
    assert added == [{"id": "example-news-tech", "name": "Example News: Tech", "feeds": [feed_server.url("/news.xml")],
                      "site": "example-news.com", "language": "en"}]
    assert "the URL is a feed, 2 entries" in err
    assert len(feed_server.requests_for("/news.xml")) == 1


def test_add_finds_the_alternate_links_of_a_page(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/", page(alternate("/missing.xml"), alternate("/empty.xml"),
                              alternate("/atom.xml", "application/atom+xml"), alternate("/rss.xml")),
                    content_type="text/html; charset=utf-8")
    feed_server.put("/empty.xml", EMPTY_FEED)
    feed_server.put("/atom.xml", FEED)
    feed_server.put("/rss.xml", FEED)
    write_sources(home)
    code, added, err = add(home, feed_server.url("/"), "--id", "example")
    assert code == 0, err
    assert added[0]["id"] == "example" and added[0]["feeds"] == [feed_server.url("/atom.xml")]
    assert "a <link rel=alternate> of the page" in err
    assert f"{feed_server.url('/missing.xml')}: HTTP 404" in err and f"{feed_server.url('/empty.xml')}: a feed " \
        "without entries" in err
    for path in ("/", "/missing.xml", "/empty.xml", "/atom.xml"):
        assert len(feed_server.requests_for(path)) == 1, path  # each candidate fetched once
    assert feed_server.requests_for("/rss.xml") == [] and feed_server.requests_for("/feed") == []


def test_add_resolves_relative_links(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/blog/2026/post.html", page(alternate("../feeds/main.xml")), content_type="text/html")
    feed_server.put("/blog/feeds/main.xml", FEED)
    feed_server.put("/section/", page(alternate("index.rss"), base="/other/"), content_type="text/html")
    feed_server.put("/other/index.rss", FEED)
    write_sources(home)
    added = add(home, feed_server.url("/blog/2026/post.html"))[1]
    assert added[0]["feeds"] == [feed_server.url("/blog/feeds/main.xml")]
    assert add(home, feed_server.url("/section/"))[1][0]["feeds"] == [feed_server.url("/other/index.rss")]


def test_add_tries_the_usual_paths_without_a_link(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/about/", page(), content_type="text/html")
    feed_server.put("/rss", b"<html>not a feed</html>", content_type="text/html")
    feed_server.put("/feed.xml", FEED)
    write_sources(home)
    code, added, err = add(home, feed_server.url("/about/"))
    assert code == 0, err
    assert added[0]["feeds"] == [feed_server.url("/feed.xml")] and "a usual path" in err
    assert [len(feed_server.requests_for(p)) for p in ("/feed", "/rss", "/feed.xml", "/atom.xml")] == [1, 1, 1, 0]


def test_add_without_any_feed_lists_what_it_tried(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/", page(), content_type="text/html")
    write_sources(home)
    code, added, err = add(home, feed_server.url("/"))
    assert code == 1 and added == []
    assert f"no feed found for {feed_server.url('/')}" in err
    for path in ("/feed", "/rss", "/feed.xml", "/atom.xml", "/rss.xml", "/index.xml"):
        assert f"{feed_server.url(path)}: HTTP 404" in err


def test_add_refuses_links_to_private_addresses(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/", page(alternate("http://10.0.0.1/feed.xml"),
                              alternate("http://169.254.169.254/latest/meta-data/feed.xml")),
                    content_type="text/html")
    write_sources(home)
    code, added, err = add(home, feed_server.url("/"))
    assert code == 1 and added == []
    assert "http://10.0.0.1/feed.xml: refused: 10.0.0.1 resolves to the non-public address 10.0.0.1" in err
    assert "169.254.169.254/latest/meta-data/feed.xml: refused: 169.254.169.254 resolves to the non-public " \
           "address 169.254.169.254" in err


def test_add_passes_over_a_private_link_to_a_safe_feed(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/", page(alternate("http://10.0.0.1/feed.xml")), content_type="text/html")
    feed_server.put("/feed", FEED)
    write_sources(home)
    code, added, err = add(home, feed_server.url("/"))
    assert code == 0 and added[0]["feeds"] == [feed_server.url("/feed")]
    assert "passed over http://10.0.0.1/feed.xml: refused" in err


def test_add_refuses_a_redirect_to_a_private_address(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/feed.xml", b"", status=302, headers={"Location": "http://169.254.169.254/latest/"})
    write_sources(home)
    code, _, err = add(home, feed_server.url("/feed.xml"))
    assert code == 1 and "refused: 169.254.169.254 resolves to the non-public address 169.254.169.254" in err


def test_add_caps_size_and_time(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/big.xml", FEED[:-30] + b"<!--" + b"x" * (6 * 2**20) + b"-->" + FEED[-30:])
    home.write_config([], timeout="1s")
    (home.path / "sources.toml").write_text(SOURCES)
    code, _, err = add(home, feed_server.url("/big.xml"))
    assert code == 1 and "larger than 5 MB" in err
    started = time.monotonic()
    code, _, err = add(home, feed_server.url("/hang"))
    assert code == 1 and "timed out" in err and time.monotonic() - started < 15


def test_add_write_appends_and_knows_the_feed_afterwards(home: Home, feed_server: FeedServer) -> None:
    feed_server.put("/news.xml", FEED)
    path = write_sources(home)
    result = home.run("sources", "add", feed_server.url("/news.xml"), "--write")
    assert result.code == 0, result.err
    assert result.out == "" and f"added source 'example-news-tech' to {path}" in result.err
    text = path.read_text(encoding="utf-8")
    assert text.startswith(SOURCES.rstrip())
    assert [r["id"] for r in home.run("sources", "list", "--format", "json").json_lines()][-1] == "example-news-tech"
    again = home.run("sources", "add", feed_server.url("/news.xml"), "--write")
    assert again.code == 0 and "configured already (source 'example-news-tech')" in again.err
    assert path.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("args, expected", [
    (["--id", "Bad Id"], "--id: expected an id of [a-z0-9-]+"),
    (["--id", "caixin"], "--id: there is a source 'caixin' already"),
])
def test_add_bad_ids(home: Home, feed_server: FeedServer, args: list[str], expected: str) -> None:
    feed_server.put("/news.xml", FEED)
    write_sources(home)
    code, _, err = add(home, feed_server.url("/news.xml"), *args)
    assert code == 2 and expected in err
    assert feed_server.requests_for("/news.xml") == []  # checked before anything is fetched


def test_add_needs_an_http_url(home: Home) -> None:
    write_sources(home)
    code, _, err = add(home, "file:///etc/passwd")
    assert code == 2 and "expected an http(s) URL" in err
