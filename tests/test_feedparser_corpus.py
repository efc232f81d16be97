"""feedparser's own 2,107 test documents (corpus/feedparser-tests, see its FORMAT.md), served on loopback with their
`Header:` lines as response headers and crawled by one `talentwatch crawl` through the real Scrapy engine and
pipeline, each document as its own source. Zero crashes; for each document the stored items are feedparser's
entries after the pipeline's normalization; every document feedparser flags (bozo) yields its entries or an error
on its feed row.

The reference is ``feedparser.parse`` of the same bytes with the same response headers and the options the pipeline
asks for (``sanitize_html=False, resolve_relative_uris=False``: it keeps raw HTML and makes plain text of it
itself), normalized by the pipeline's own rules (``pipelines.normalize``: plain-text title, canonical URL,
identity key). Differences that identity rules make, counted per folder and printed (`pytest -s`):

- merged: two entries of one document with one identity (the same link twice, or no link and the same GUID) are
  one item, the first entry's;
- empty: an entry with no link, GUID, title or summary has nothing to identify or show and is not stored;
- shared: an article is one row across all sources (its key is the canonical URL), so a link that several test
  documents use (``http://example.com/``) is stored once, under the first source that fetched it, and a later
  document's entry updates that row. Such entries are checked to exist, not to belong to the document.
"""

from __future__ import annotations

import io
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import feedparser
import pytest
from conftest import FeedServer, Home, need_corpus

from pipelines.normalize import article_from_entry

HEADER = re.compile(rb"^\s*Header:\s*([^:\r\n]+):\s*([^\r\n]*?)\s*$", re.MULTILINE)
FOLDERS = ("wellformed", "illformed", "encoding", "entities", "json")


@dataclass
class Document:
    path: Path
    folder: str
    source: str  # its own source id: GUID identity is per source
    url_path: str
    content_type: str
    headers: dict[str, str]  # the other Header lines, sent as they are
    entries: int = 0  # feedparser's
    bozo: bool = False
    version: str = ""
    expected: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # key -> (url, title)
    merged: int = 0
    empty: int = 0


def documents(corpus: Path) -> list[Document]:
    root = corpus / "feedparser-tests"
    docs = []
    for n, path in enumerate(sorted(p for p in root.rglob("*") if p.is_file() and p.parent != root)):
        rel = path.relative_to(root).as_posix()
        folder = rel.split("/", 1)[0]
        body = path.read_bytes()
        headers = {}
        if "http" in rel:  # FORMAT.md: only these carry Header lines; text/xml when they name no type
            headers["Content-Type"] = "text/xml"
            comment = body[:body.find(b"-->")] if b"-->" in body else b""
            for name, value in HEADER.findall(comment):
                key = name.decode("latin-1").strip()
                headers["Content-Type" if key.lower() == "content-type" else key] = value.decode("latin-1")
        content_type = headers.pop("Content-Type", "application/json" if folder == "json" else "application/xml")
        docs.append(Document(path, folder, f"{folder}-{n:04d}", f"/tests/{rel}", content_type, headers))
    return docs


def expect(doc: Document, url: str) -> None:
    """feedparser's entries for the document as served, normalized as the pipeline does."""
    headers = {k.lower(): v for k, v in doc.headers.items()}
    headers["content-type"] = doc.content_type
    headers.setdefault("content-location", url)
    parsed = feedparser.parse(io.BytesIO(doc.path.read_bytes()), response_headers=headers, sanitize_html=False,
                              resolve_relative_uris=False)
    doc.entries, doc.bozo, doc.version = len(parsed.entries), bool(parsed.bozo), parsed.get("version") or ""
    for e in parsed.entries:
        content = e.get("content") or []
        article = article_from_entry({"title": e.get("title", ""), "link": e.get("link"), "guid": e.get("id"),
                                      "summary": e.get("summary", ""),
                                      "content": content[0].get("value", "") if content else ""})
        if article is None:
            doc.empty += 1
        elif article.key in doc.expected:
            doc.merged += 1
        else:
            doc.expected[article.key] = (article.url, article.title)


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory):
    docs = documents(need_corpus())
    server = FeedServer().start()
    for doc in docs:
        server.put(doc.url_path, doc.path.read_bytes(), doc.content_type, headers=doc.headers)
        expect(doc, server.url(doc.url_path))
    tmp = tmp_path_factory.mktemp("feedparser-corpus")
    home = Home(tmp, f"sqlite:///{tmp / 'talentwatch.db'}")
    home.write_config([(d.source, [server.url(d.url_path)]) for d in docs], timeout="10s")
    result = home.run("crawl", timeout=600)
    yield home, docs, result
    server.stop()


def test_the_whole_corpus_is_served(crawled) -> None:
    _, docs, _ = crawled
    assert len(docs) == 2107
    assert set(Counter(d.folder for d in docs)) == set(FOLDERS)


def test_crawl_has_no_crash(crawled) -> None:
    home, docs, result = crawled
    assert result.code == 0, result.err
    assert "Traceback" not in result.err and "could not be stored" not in result.out
    assert f"Polled {len(docs)} feeds" in result.out
    assert home.sql("select count(*) from feeds where last_fetch is null") == [(0,)]
    assert home.sql("select count(*) from feeds where last_status is null or last_status != 200") == [(0,)]


def test_stored_items_are_feedparsers_entries(crawled) -> None:
    home, docs, _ = crawled
    stored: dict[str, dict[str, tuple[str | None, str]]] = defaultdict(dict)
    for source, key, url, title in home.sql("select source_id, key, url, title from items"):
        stored[source][key] = (url, title)
    everywhere = {key: row for rows in stored.values() for key, row in rows.items()}
    users = Counter(key for d in docs for key in d.expected)  # documents that use each identity
    wrong = []
    for doc in docs:
        own = stored.get(doc.source, {})
        if set(own) - set(doc.expected):
            wrong.append((doc.path.name, "stored items feedparser does not give", sorted(set(own) - set(doc.expected))))
        missing = [k for k in doc.expected if k not in everywhere]
        if missing:
            wrong.append((doc.path.name, "entries not stored", [doc.expected[k] for k in missing]))
        for key, (url, title) in doc.expected.items():
            if users[key] == 1 and key in own and own[key] != (url, title):
                wrong.append((doc.path.name, "stored differently", (own[key], (url, title))))
            if users[key] > 1 and key in everywhere:  # a shared identity: the row holds one user's reading
                readings = {d.expected[key] for d in docs if key in d.expected}
                if everywhere[key] not in readings:
                    wrong.append((doc.path.name, "shared row matches no document", everywhere[key]))
    assert not wrong, wrong[:10]
    _summary(docs, stored, users)


def test_bozo_documents_yield_entries_or_a_recorded_error(crawled) -> None:
    home, docs, _ = crawled
    errors = dict(home.sql("select source_id, last_error from feeds"))
    stored = Counter(source for (source,) in home.sql("select source_id from items"))
    silent = [d.path.relative_to(need_corpus()).as_posix() for d in docs if d.bozo and not (
        stored[d.source] or errors[d.source] or (d.version and not d.expected) or _shared_only(d, docs))]
    assert not silent, silent[:10]


def test_documents_that_are_not_feeds_say_so(crawled) -> None:
    """Bozo documents with no entries and no feed version carry "not a feed" on their row; none that feedparser
    reads (entries, a version, or well-formed with nothing in it, such as the CDF documents) carries an error."""
    home, docs, _ = crawled
    errors = dict(home.sql("select source_id, last_error from feeds"))
    for doc in docs:
        if doc.bozo and not doc.entries and not doc.version:
            assert errors[doc.source] and errors[doc.source].startswith("not a feed"), doc.path
        elif errors[doc.source]:
            pytest.fail(f"{doc.path}: feedparser reads it ({doc.entries} entries), the crawl recorded "
                        f"{errors[doc.source]!r}")


def _shared_only(doc: Document, docs: list[Document]) -> bool:
    return bool(doc.expected) and all(sum(k in d.expected for d in docs) > 1 for k in doc.expected)


def _summary(docs: list[Document], stored: dict[str, dict], users: Counter[str]) -> None:
    rows: dict[str, Counter[str]] = {f: Counter() for f in FOLDERS}
    for d in docs:
        r = rows[d.folder]
        own = stored.get(d.source, {})
        r.update(docs=1, bozo=d.bozo, entries=d.entries, merged=d.merged, empty=d.empty, identities=len(d.expected),
                 stored=len(own), shared=sum(1 for k in d.expected if k not in own),
                 no_feed=not d.entries and not d.version)
    cols = ("docs", "bozo", "no_feed", "entries", "merged", "empty", "identities", "stored", "shared")
    print("\nfolder      " + " ".join(f"{c:>10}" for c in cols))
    for folder, r in [*rows.items(), ("total", sum(rows.values(), Counter()))]:
        print(f"{folder:<11} " + " ".join(f"{r[c]:>10}" for c in cols))
