"""A farm of loopback feeds built from the real corpus, shared by the benchmarks (poll.py, soak.py).

Feed i is corpus file i % 57 with every URL's host prefixed by "c<i>." (namespace URIs left alone), so each copy
stores its own items. A separate process serves them with a fixed latency, ETag and Last-Modified, and answers 304
to a matching If-None-Match. With ``change_every = N``, every Nth request of a feed (staggered over the feeds, so
1/N of them per round) first gives the feed a new version: a copy of its first item, with URLs and GUID of its own,
on top of the document. With ``strip_ttl``, RSS <ttl> elements are removed, so that no feed asks to be polled
less often than its configured interval.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import multiprocessing
import re
import sqlite3
import sys
import time
from dataclasses import dataclass
from email.utils import formatdate
from multiprocessing.connection import Connection
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds"
NOT_FEEDS = {"bloomberg-news-sitemap-2026-03.xml"}  # a sitemap, not a feed
CONTENT_TYPES = {"atom": "application/atom+xml", "rdf": "application/rdf+xml"}  # else application/rss+xml
URL = re.compile(rb"""(xmlns(?::[\w.-]+)?\s*=\s*["'])?(https?://)(?=[^/"'<>\s])""")
ITEM = re.compile(rb"<(item|entry)[\s>].*?</\1>", re.S)
TTL = re.compile(rb"<ttl>[^<]*</ttl>")
ID_TEXT = re.compile(rb"(<guid[^>]*>|<id>)(?!\s*(?:<!\[CDATA\[\s*)?https?://)")  # a GUID that is not a URL


@dataclass
class Doc:
    name: str
    body: bytes
    content_type: str


def load_corpus(folder: Path) -> list[Doc]:
    with open(folder / "MANIFEST.tsv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["file"] not in NOT_FEEDS]
    return [Doc(r["file"], (folder / r["file"]).read_bytes(), CONTENT_TYPES.get(r["format"], "application/rss+xml"))
            for r in sorted(rows, key=lambda r: r["file"])]


def prefix_hosts(data: bytes, tag: bytes) -> bytes:
    return URL.sub(lambda m: m.group(0) if m.group(1) else m.group(2) + tag, data)


def feed_body(doc: Doc, i: int) -> bytes:
    """The document with every URL host (but no namespace URI) prefixed by c<i>., so its item URLs are unique."""
    return prefix_hosts(doc.body, b"c%d." % i)


def changed_body(body: bytes, version: int) -> bytes:
    """Version ``version`` of a feed: one new item (its first item's copy, new URLs and GUID) on top."""
    first = ITEM.search(body)
    if not version or not first:
        return body
    item = ID_TEXT.sub(lambda m: m.group(1) + b"v%d-" % version, prefix_hosts(first.group(0), b"v%d." % version))
    return body[:first.start()] + item + b"\n" + body[first.start():]


# ---- the feed server (runs in its own process) ------------------------------------------------------------------

def serve(corpus: list[Doc], n: int, hosts: list[str], latency: float, conn: Connection, change_every: int = 0,
          strip_ttl: bool = False) -> None:
    asyncio.run(_serve(corpus, n, hosts, latency, conn, change_every, strip_ttl))


async def _serve(corpus: list[Doc], n: int, hosts: list[str], latency: float, conn: Connection,
                 change_every: int, strip_ttl: bool) -> None:
    feeds: dict[str, list] = {}  # path -> [i, requests so far, version, body, etag, content type, last-modified]

    def publish(i: int, version: int, requests: int = 0) -> None:
        doc = corpus[i % len(corpus)]
        body = changed_body(feed_body(doc, i), version)
        if strip_ttl:
            body = TTL.sub(b"", body)
        modified = formatdate(time.time() - (0 if version else 3600), usegmt=True)
        feeds[f"/feed/{i}.xml"] = [i, requests, version, body, f'"{hashlib.sha1(body).hexdigest()[:16]}"',
                                   doc.content_type, modified]

    for i in range(n):
        publish(i, 0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # HTTP/1.1 keep-alive: one GET after another on the connection
                lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                path = lines[0].split()[1]
                headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                await asyncio.sleep(latency)
                feed = feeds.get(path)
                if feed and change_every:
                    i, requests, version = feed[:3]
                    feed[1] += 1
                    if requests and (requests + i) % change_every == 0:
                        publish(i, version + 1, requests + 1)
                        feed = feeds[path]
                _, _, _, body, etag, ctype, modified = feed or (0, 0, 0, b"not found", "", "text/plain", "")
                status = "404 Not Found" if not etag else "200 OK"
                if etag and headers.get("if-none-match") == etag:
                    status, body = "304 Not Modified", b""
                head = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                        f"ETag: {etag}\r\nLast-Modified: {modified}\r\n\r\n")
                writer.write(head.encode("latin-1") + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(handle, host, 0) for host in hosts]
    conn.send([s.sockets[0].getsockname()[1] for s in servers])
    await asyncio.Event().wait()  # until the parent terminates this process


def start_farm(corpus: list[Doc], n: int, hosts: int, latency: float, change_every: int = 0, strip_ttl: bool = False
               ) -> tuple[multiprocessing.Process, list[str], list[str]]:
    """Start the server process; returns it, the loopback addresses used and the N feed URLs."""
    addresses = [f"127.0.0.{k}" for k in range(1, min(hosts, n, 254) + 1)]
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, daemon=True,
                                     args=(corpus, n, addresses, latency, child, change_every, strip_ttl))
    server.start()
    ports = parent.recv()
    urls = [f"http://{addresses[i % len(addresses)]}:{ports[i % len(addresses)]}/feed/{i}.xml" for i in range(n)]
    return server, addresses, urls


# ---- talentwatch's side -------------------------------------------------------------------------------------------

def write_config(work: Path, urls: list[str], per_source: int = 20, interval: str | None = None) -> Path:
    with open(work / "sources.toml", "w", encoding="utf-8") as f:
        for k in range(0, len(urls), per_source):
            feeds = ", ".join(f'"{u}"' for u in urls[k:k + per_source])
            every = f'interval = "{interval}"\n' if interval else ""
            f.write(f'[[source]]\nid = "bench-{k // per_source:03d}"\nfeeds = [{feeds}]\n{every}\n')
    config = work / "talentwatch.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{work / "talentwatch.db"}"\n\n'
                      '[crawl]\nsources = "sources.toml"\nconcurrency = 16\n', encoding="utf-8")
    return config


def talentwatch_command() -> list[str]:
    script = Path(sys.executable).with_name("talentwatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "talentwatch"]


def query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()
