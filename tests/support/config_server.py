"""A real HTTP config service on loopback: serves one JSON document with an ETag.

It honours `If-None-Match` (304), counts requests, and can be stopped and started
again on the same port to play a config service that is down for a while.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ConfigServer:
    """Serves `document` at `/config.json`; `url` stays the same across restarts."""

    def __init__(self, document: dict[str, Any] | None = None, *, etag: bool = True) -> None:
        self.body = b"{}"
        self.use_etag = etag
        self.requests = 0
        self.not_modified = 0
        self.if_none_match: list[str | None] = []
        self.redirect: str | None = None
        """When set, every GET answers 302 to this location."""
        self.lock = threading.Lock()
        self.port = 0
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.set(document or {})
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/config.json"

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:12] + '"'

    def set(self, document: dict[str, Any] | str) -> None:
        """Serve this document (a dict as JSON, a str as the raw body) from now on."""
        body = document if isinstance(document, str) else json.dumps(document)
        with self.lock:
            self.body = body.encode()

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server.lock:
                    server.requests += 1
                    if server.redirect is not None:
                        self.send_response(302)
                        self.send_header("Location", server.redirect)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    body, etag = server.body, server.etag
                    sent = self.headers.get("If-None-Match")
                    server.if_none_match.append(sent)
                    if server.use_etag and sent == etag:
                        server.not_modified += 1
                        self.send_response(304)
                        self.end_headers()
                        return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if server.use_etag:
                    self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Down: the port refuses connections until `start()`."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        if self.thread is not None:
            self.thread.join(timeout=5)
            self.thread = None
