"""A loopback HTTP server whose routes misbehave, one fault per route, for tests/test_hostile_servers.py.

The routes are data (tests/data/hostile/routes.toml): each names a ``kind`` (a behaviour below) and its
parameters. Every route also has a healthy twin at ``/healthy/<name>`` (a small RSS feed), crawled alongside it.

    server = HostileServer(routes).start()
    server.url("/fault/http-500")
    server.stop()

Large bodies are streamed in chunks, never built in memory; the gzip bomb is built once (1 GiB of zeros
compresses to about 1 MB).
"""

from __future__ import annotations

import functools
import os
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from loopback import Loopback

CHUNK = 64 * 1024


SYLLABLES = "ka lo mi ne su ta ri po vu de zan tor mel fis gar bun hek wol pry chu".split()


def headline(i: int) -> str:
    """A distinct headline per ``i``: six made-up words from a fixed generator (titles that share no story)."""
    state, words = i * 2654435761 + 12345, []
    for _ in range(6):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        words.append("".join(SYLLABLES[(state >> shift) % len(SYLLABLES)] for shift in (13, 23, 33)))
    return " ".join(words)


def rss(name: str, items: int, title: str = "Item") -> bytes:
    """An RSS 2.0 document of ``items`` entries whose links are unique to ``name``; many entries get distinct
    headlines (a feed of thousands of near-identical titles is another matter: see the report of issue 8)."""
    def text(i: int) -> tuple[str, str]:
        return (f"{title} {i}", f"About {title} {i}") if items <= 10 else (headline(i), headline(i + 10**6))
    body = "".join(f"<item><title>{text(i)[0]}</title><link>https://{name}.example.com/a/{i}</link>"
                   f"<guid>{name}-{i}</guid><description>{text(i)[1]}</description></item>"
                   for i in range(items))
    return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{name}</title>"
            f"{body}</channel></rss>").encode()


def billion_laughs(name: str) -> bytes:
    """Ten levels of ten: 10^9 'lol's if a parser expanded them."""
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{"".join(f"&lol{n - 1};" for _ in range(10))}">' for n in range(1, 10)]
    return (f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n{chr(10).join(levels)}\n]>\n'
            f"<rss version='2.0'><channel><title>&lol9;</title><item><title>Laughs &lol9;</title>"
            f"<link>https://{name}.example.com/a/0</link><description>&lol9;</description></item>"
            f"</channel></rss>").encode()


def html_page(name: str) -> bytes:
    return (b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>Not a feed</h1>"
            b"<p>Our feed moved. <a href='/news'>News</a></p></body></html>")


def garbage(name: str) -> bytes:
    return bytes((i * 7919 + 13) % 256 for i in range(8192))  # fixed bytes: the same outcome on every run


def latin1_as_utf8(name: str) -> bytes:
    """Declares UTF-8, is Latin-1: 'café' is c a f 0xE9."""
    return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
            f"<item><title>Caf\u00e9 cr\u00e8me \u00e0 Z\u00fcrich</title><link>https://{name}.example.com/a/0</link>"
            f"<description>D\u00e9j\u00e0 vu</description></item></channel></rss>").encode("latin-1")


BODIES: dict[str, Callable[[str], bytes]] = {
    "billion-laughs": billion_laughs, "html": html_page, "garbage": garbage, "latin1-as-utf8": latin1_as_utf8,
    "empty-feed": lambda name: rss(name, 0), "items-10000": lambda name: rss(name, 10_000),
}


@functools.cache
def gzip_bomb(size: int) -> bytes:
    """A gzip stream of ``size`` zero bytes (built in 1 MiB steps)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    return b"".join(packer.compress(zeros) for _ in range(size >> 20)) + packer.flush()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up is what these routes cause
            super().handle_error(request, client_address)


class HostileServer(Loopback):
    def __init__(self, routes: list[dict[str, Any]]) -> None:
        self.routes = {f"/fault/{r['name']}": r for r in routes}
        self.hits: dict[str, list[float]] = {}
        super().__init__(_handler(self), _QuietServer)
        for route in routes:  # built before any crawl, so that no crawl waits for it
            if route["kind"] == "gzip-bomb":
                gzip_bomb(route["size"])

    def hit(self, path: str) -> None:
        with self._lock:
            self.hits.setdefault(path, []).append(time.monotonic())

    def count(self, path: str) -> int:
        with self._lock:
            return len(self.hits.get(path, []))


def _handler(server: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            server.hit(path)
            if path.startswith("/healthy/"):
                return self.send(200, rss("healthy-" + path.rsplit("/", 1)[1], 3, "Healthy"))
            route = server.routes.get(path) or server.routes.get(path.rsplit("/", 1)[0])  # /fault/<name>/<step>
            if route is None:
                return self.send(404, b"not found", "text/plain")
            try:
                getattr(self, "kind_" + route["kind"].replace("-", "_"))(route, path)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up: what the fault is about
                pass

        def send(self, status: int, body: bytes, ctype: str = "application/rss+xml",
                 headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def kind_status(self, route: dict[str, Any], path: str) -> None:
            headers = dict(route.get("headers", {}))
            if "retry_after_date" in route:  # Retry-After as an HTTP date, that many seconds from now
                headers["Retry-After"] = formatdate(time.time() + route["retry_after_date"], usegmt=True)
            self.send(route["status"], route.get("text", "error").encode(), "text/plain", headers)

        def kind_body(self, route: dict[str, Any], path: str) -> None:
            body = BODIES[route["body"]](route["name"])
            self.send(200, body, route.get("content_type", "application/rss+xml"))

        def kind_hang(self, route: dict[str, Any], path: str) -> None:
            server.stopping.wait(600)  # accepts, reads the request, never answers

        def kind_drip(self, route: dict[str, Any], path: str) -> None:
            body = rss(route["name"], 5)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body:  # one byte a second
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if server.stopping.wait(1.0):
                    return

        def kind_huge(self, route: dict[str, Any], path: str) -> None:
            """``size`` bytes of an endless RSS document, streamed; without ``length`` no Content-Length (the end is
            the connection's close)."""
            size = route["size"]
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            if route.get("length", True):
                self.send_header("Content-Length", str(size))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            head = b"<?xml version='1.0'?><rss version='2.0'><channel><title>"
            self.wfile.write(head)
            chunk, sent = b"x" * CHUNK, len(head)
            while sent < size and not server.stopping.is_set():
                self.wfile.write(chunk[:size - sent])
                sent += CHUNK

        def kind_gzip_bomb(self, route: dict[str, Any], path: str) -> None:
            body = gzip_bomb(route["size"])
            self.send(200, body, "application/rss+xml", {"Content-Encoding": "gzip"})

        def kind_redirect_loop(self, route: dict[str, Any], path: str) -> None:
            step = 0 if path == f"/fault/{route['name']}" else int(path.rsplit("/", 1)[1])
            target = f"/fault/{route['name']}/{(step + 1) % 3}"  # /0 -> /1 -> /2 -> /0 ...
            self.send(route.get("status", 302), b"", "text/plain", {"Location": server.url(target)})

        def kind_moved(self, route: dict[str, Any], path: str) -> None:
            if path == f"/fault/{route['name']}":
                return self.send(route["status"], b"", "text/plain",
                                 {"Location": server.url(f"/fault/{route['name']}/new")})
            self.send(200, rss(route["name"], 2, "Moved"))

        def kind_redirect_to(self, route: dict[str, Any], path: str) -> None:
            self.send(route.get("status", 302), b"", "text/plain", {"Location": route["location"]})

        def kind_short_body(self, route: dict[str, Any], path: str) -> None:
            """Content-Length promises more than is sent, then the connection closes."""
            body = rss(route["name"], 5)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body) + route.get("missing", 10_000)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_WR)

    return Handler


if __name__ == "__main__":  # a manual look: python tests/hostileserver.py
    import tomllib

    with open(os.path.join(os.path.dirname(__file__), "data", "hostile", "routes.toml"), "rb") as f:
        demo = HostileServer(tomllib.load(f)["route"]).start()
    print("\n".join(demo.url(p) for p in demo.routes))
    threading.Event().wait()
