"""A misbehaving HTTP proxy in front of the real registry, for failure tests.

Faults (set on the instance, each applies to blob GETs unless said otherwise):
- `cut_after`: close the connection after sending this many body bytes, once;
- `corrupt`: flip a byte in every blob body;
- `fail_first`: answer this many requests (any path) with 503 before forwarding.
`body_bytes` counts blob body bytes sent; `requests` records (method, path, range header).
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultyProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.cut_after: int | None = None
        self.corrupt = False
        self.fail_first = 0
        self.body_bytes = 0
        self.requests: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                proxy._handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append((h.command, h.path, h.headers.get("Range", "")))
            if self.fail_first > 0:
                self.fail_first -= 1
                h.send_response(503)
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(h.command, h.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        is_blob = h.command == "GET" and "/blobs/sha256:" in h.path and resp.status in (200, 206)
        if is_blob and self.corrupt and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command == "HEAD":
            return
        if is_blob and self.cut_after is not None:
            cut, self.cut_after = self.cut_after, None
            h.wfile.write(data[:cut])
            h.wfile.flush()
            with self._lock:
                self.body_bytes += cut
            h.close_connection = True
            h.connection.shutdown(2)
            return
        if is_blob:  # counted before the write: the client may finish reading before this thread runs again
            with self._lock:
                self.body_bytes += len(data)
        h.wfile.write(data)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
