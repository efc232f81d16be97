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
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes
    content_type: str = "application/rss+xml"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    last_modified: str = ""


@dataclass
class Logged:
    path: str
    headers: dict[str, str]
    status: int


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[Logged] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> FeedServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def put(self, path: str, body: bytes, content_type: str = "application/rss+xml", status: int = 200,
            headers: dict[str, str] | None = None) -> None:
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        with self._lock:
            self.routes[path] = Route(body, content_type, status, headers or {}, etag,
                                      formatdate(time.time(), usegmt=True))

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
            if path == "/hang":
                server.record(Logged(path, dict(self.headers), 0))
                server.stopping.wait(120)
                return
            if path.startswith("/status/"):
                return self._send(path, int(path.rsplit("/", 1)[1]), b"error", "text/plain", {})
            if path == "/garbage":
                return self._send(path, 200, os.urandom(4096), "application/rss+xml", {})
            route = server.routes.get(path)
            if route is None:
                return self._send(path, 404, b"not found", "text/plain", {})
            validators = {"ETag": route.etag, "Last-Modified": route.last_modified}
            if self.headers.get("If-None-Match") == route.etag:
                return self._send(path, 304, b"", route.content_type, {**validators, **route.headers})
            self._send(path, route.status, route.body, route.content_type, {**validators, **route.headers})

        def _send(self, path: str, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
            server.record(Logged(path, dict(self.headers), status))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

    return Handler
