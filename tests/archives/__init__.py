"""Fake archives for the recrawl tests: real HTTP servers on 127.0.0.1 answering like the Wayback Machine (CDX and
raw captures), Google News search, GDELT DOC 2.0 and an outlet's robots.txt and sitemaps.

    server = LoopbackServer(FakeWayback(history, feed_url)).start()
    server.url("")                                   # http://127.0.0.1:<port>: the base URL for `[archive]`
    server.requests("/web/")                         # what was asked (path, query, arrival time)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from loopback import Loopback


@dataclass
class Answer:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Asked:
    path: str
    query: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class Archive:
    """One fake archive: answers a GET; ``base`` is the server's URL, set when the server starts."""

    base = ""

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        raise NotImplementedError


class LoopbackServer(Loopback):
    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.log: list[Asked] = []
        super().__init__(_handler(self))
        archive.base = self.url("")

    def requests(self, prefix: str = "/") -> list[Asked]:
        with self._lock:
            return [r for r in self.log if r.path.startswith(prefix)]

    def record(self, asked: Asked) -> None:
        with self._lock:
            self.log.append(asked)


def _handler(server: LoopbackServer) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            server.record(Asked(parts.path, query))
            answer = server.archive.answer(parts.path, query)
            if answer.delay:
                server.stopping.wait(answer.delay)
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):  # the client was killed (the interruption tests)
                pass

    return Handler
