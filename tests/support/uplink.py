"""A metered uplink for tests (or any link to cut: `cut`/`restore`): a TCP relay on loopback between a site's cache and the upstream
registry that carries at most `rate` bytes per second downstream (shared by all its
connections, as one cellular link is) and counts every byte it delivered to the cache.

What it counts is what crossed the site's uplink: response headers and bodies, every
stream the cache opened, whether or not the cache kept what it got.
"""

from __future__ import annotations

import socket
import threading
import time


class Uplink:
    def __init__(self, target: str, rate: float = 0.0, chunk: int = 16 * 1024) -> None:
        host, port = target.rsplit(":", 1)
        self.target, self.rate, self.chunk = (host, int(port)), float(rate), chunk
        self.down = 0  # bytes upstream → cache
        self.connections = 0
        self._lock = threading.Lock()
        self._next_free = time.monotonic()  # when the link can carry the next byte
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.address = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self.down_now = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            if self.down_now:  # the link is cut: connections are refused until `restore`
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
                self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()

    def _pace(self, n: int) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_free)
            self._next_free = start + n / self.rate
            wait = self._next_free - now
        if wait > 0:
            time.sleep(wait)

    def _pipe(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while data := src.recv(self.chunk):
                if down:
                    self._pace(len(data))
                dst.sendall(data)
                if down:
                    with self._lock:
                        self.down += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self) -> None:
        """The link goes down: every open connection is dropped, new ones are refused."""
        self.down_now = True
        with self._lock:
            for s in self._open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self._open = []

    def restore(self) -> None:
        self.down_now = False

    def close(self) -> None:
        self._sock.close()
        with self._lock:
            for s in self._open:
                try:
                    s.close()
                except OSError:
                    pass
