"""A real HTTP server on 127.0.0.1 for the tests: feeds that can change, conditional GET, and faulty routes.

    server = FeedServer(); server.start()
    server.put("/a.xml", body)                      # serve a feed (ETag and Last-Modified derived from the body)
    server.url("/a.xml")                            # http://127.0.0.1:<port>/a.xml
    server.requests_for("/a.xml")                   # what was asked, with which headers, answered how
Fault routes: /status/<code> answers that status; /hang never answers (until the server stops);
/garbage answers 200 with random bytes.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler

from loopback import Loopback


@dataclass
class Route:
    body: bytes
    content_type: str = "application/rss+xml"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    last_modified: str = ""
    delay: float = 0.0


@dataclass
class Logged:
    path: str
    headers: dict[str, str]
    status: int  # 0 until answered
    at: float = field(default_factory=time.monotonic)  # arrival


class FeedServer(Loopback):
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[Logged] = []
        super().__init__(_handler(self))

    def put(self, path: str, body: bytes, content_type: str = "application/rss+xml", status: int = 200,
            headers: dict[str, str] | None = None, delay: float = 0.0) -> None:
        """Serve ``body`` at ``path``; ``delay`` seconds pass before the answer."""
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        with self._lock:
            self.routes[path] = Route(body, content_type, status, headers or {}, etag,
                                      formatdate(time.time(), usegmt=True), delay)

    def requests_for(self, path: str) -> list[Logged]:
        with self._lock:
            return [r for r in self.log if r.path == path]

    def record(self, entry: Logged) -> None:
        with self._lock:
            self.log.append(entry)


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path
            entry = Logged(path, dict(self.headers), 0)  # logged on arrival; the status is filled in on answer
            server.record(entry)
            if path == "/hang":
                server.stopping.wait(120)
                return
            if path.startswith("/status/"):
                return self._send(entry, int(path.rsplit("/", 1)[1]), b"error", "text/plain", {})
            if path == "/garbage":
                return self._send(entry, 200, os.urandom(4096), "application/rss+xml", {})
            route = server.routes.get(path)
            if route is None:
                return self._send(entry, 404, b"not found", "text/plain", {})
            if route.delay:
                server.stopping.wait(route.delay)
            headers = {"ETag": route.etag, "Last-Modified": route.last_modified, **route.headers}
            if self.headers.get("If-None-Match") == route.etag:
                return self._send(entry, 304, b"", route.content_type, headers)
            self._send(entry, route.status, route.body, route.content_type, headers)

        def _send(self, entry: Logged, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
            entry.status = status
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

    return Handler
