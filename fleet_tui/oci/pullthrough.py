"""Talking to a site's pull-through cache (a Distribution registry with `proxy.remoteurl`):
make it fetch a blob over its uplink once, and tell whether it holds one.

How the cache fetches, from distribution 2.8 `registry/proxy/proxyblobstore.go` and measured
against docker-registry 2.8.2 (tests/integration/test_site_cache.py re-measures it):
- a GET of a blob it lacks starts a background copy into its storage (`storeLocal`) AND streams
  a second copy from upstream to the client (`copyContent`): a client that reads it all makes
  the uplink carry the blob twice; concurrent GETs while the copy runs each stream it again;
- a HEAD is worse: the same two copies, the client's discarded by Go's server (it eats the
  body of a HEAD), read to the end — the blob twice, and HEAD cannot be a harmless question;
- a blob it holds is served from its storage, with `Accept-Ranges` and `Cache-Control` (the
  upstream path sets neither): that is how `probe` tells held from fetched.
So `trigger` sends the GET and closes the socket at once (FIN): the cache's stream to it fails
on its first write and only the background copy runs — the blob once, plus what the cache
pulled before it saw the client gone. `probe` half-closes after its request, reads only the
status and headers, and resets: a held blob costs the uplink nothing; one still being copied
costs a little (another short stream), so warm-ups probe late and seldom.

Manifests are fetched whole and read (`fetch_manifest`): the cache gets one by digest once
and keeps it. Every failure is a `RemoteError` naming the cache and what went wrong.
"""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from fleet_tui.errors import NotFound, RemoteError
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.digest import sha256, short

TIMEOUT_S = 15.0
HEAD_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Probe:
    held: bool  # served from the cache's own storage
    status: int


class PullThrough:
    def __init__(self, url: str, timeout: float = TIMEOUT_S) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        self.url, self.https = url.rstrip("/"), parts.scheme == "https"
        self.host, self.port = parts.hostname or "", parts.port or (443 if self.https else 80)
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise RemoteError(f"site cache {self.url} is unreachable ({exc.strerror or exc}); check that the "
                              "gateway's registry runs") from None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the less it may send us, the less it pulls
        if self.https:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        return sock

    def _request(self, sock: socket.socket, repo: str, digest: str) -> None:
        sock.sendall((f"GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                      "User-Agent: fleet-tui-warmup\r\nConnection: close\r\n\r\n").encode())

    def trigger(self, repo: str, digest: str) -> None:
        """Make the cache start copying `digest` into its storage; read nothing of it."""
        sock = self._connect()
        try:
            self._request(sock, repo, digest)
        finally:
            sock.close()  # FIN now: the cache's stream to us fails at its first write

    def probe(self, repo: str, digest: str) -> Probe:
        """Whether the cache serves `digest` from its own storage (the status and headers only)."""
        sock = self._connect()
        try:
            self._request(sock, repo, digest)
            if not self.https:
                sock.shutdown(socket.SHUT_WR)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
        except OSError as exc:
            raise RemoteError(f"site cache {self.url} broke off answering for {short(digest)} ({exc})") from None
        finally:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset: no more body
            except OSError:
                pass
            sock.close()
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            raise RemoteError(f"site cache {self.url} gave no HTTP answer for {short(digest)}") from None
        headers = {line.partition(":")[0].strip().lower() for line in lines[1:]}
        if status == 404:
            raise NotFound(f"site cache {self.url}: {repo}@{short(digest)} is unknown upstream")
        if status >= 400:
            raise RemoteError(f"site cache {self.url} answered {status} for {repo}@{short(digest)}")
        return Probe("accept-ranges" in headers or "cache-control" in headers, status)

    def fetch_manifest(self, repo: str, digest: str) -> int:
        """GET a manifest or index by digest through the cache (it keeps it); its size."""
        try:
            r = httpx.get(f"{self.url}/v2/{repo}/manifests/{digest}", timeout=self.timeout, verify=True,
                          headers={"Accept": mt.ACCEPT, "User-Agent": "fleet-tui-warmup"})
        except httpx.HTTPError as exc:
            raise RemoteError(f"site cache {self.url} is unreachable ({exc}); check that the gateway's registry runs") from None
        if r.status_code != 200:
            raise RemoteError(f"site cache {self.url} answered {r.status_code} for manifest {repo}@{short(digest)}")
        if sha256(r.content) != digest:
            raise RemoteError(f"site cache {self.url} served manifest {short(digest)} with other content")
        return len(r.content)
