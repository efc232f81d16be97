"""What the tests' HTTP servers share: a threading server on 127.0.0.1 (a free port) served from a daemon thread.

    class MyServer(Loopback):
        def __init__(self) -> None:
            super().__init__(make_handler(self))
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class Loopback:
    def __init__(self, handler: type[BaseHTTPRequestHandler],
                 server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer) -> None:
        self.stopping = threading.Event()  # set on stop(): routes that hang or drip end then
        self._lock = threading.Lock()  # for the subclass's request log
        self.httpd = server_class(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Self:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
