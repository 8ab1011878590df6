"""Registry client for the OCI distribution API, implementing the `Store` interface.

Invariants:
- a manifest is accepted only if it hashes to the digest asked for (or announced by
  `Docker-Content-Digest`); a blob only after it hashed to its digest — corrupted content
  raises `DigestMismatch` and is never written to its final place;
- an interrupted blob download resumes with an HTTP Range request from the byte reached,
  continuing the same hash, instead of starting over;
- existing blobs are never uploaded again (HEAD first; cross-repository mount when asked).
"""

from __future__ import annotations

import re
import time
from typing import Iterable, Iterator
from urllib.parse import urljoin

import httpx

from fleet_tui.config import Config
from fleet_tui.errors import DigestMismatch, NotFound, RemoteError
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.auth import scope_for
from fleet_tui.oci.digest import DigestVerifier, check_digest, sha256, short
from fleet_tui.oci.manifest import Descriptor, RawManifest
from fleet_tui.oci.transport import Transport

_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
CHUNK = 1 << 20


# distribution 2.x (Debian's docker-registry) rewrites a repository's blob link file in place
# (filesystem driver `Writer`: open, truncate, write — v3 writes a temp file and renames it).
# While another client pushes the same blob to the same repository, a manifest PUT can read
# the link empty and answer 400 MANIFEST_BLOB_UNKNOWN / DIGEST_INVALID for a blob that is
# there. PUT of a manifest is idempotent, so it is retried after these waits (seconds).
BLOB_LINK_RACE_WAITS = (0.2, 0.5, 1.0, 2.0)


def _blob_link_race(resp: httpx.Response) -> bool:
    if resp.status_code != 400:
        return False
    try:
        codes = {e.get("code") for e in resp.json().get("errors") or []}
    except Exception:  # noqa: BLE001 - body may be anything
        return False
    return bool(codes & {"MANIFEST_BLOB_UNKNOWN", "DIGEST_INVALID"})


class RegistryClient:
    """One registry host. Methods take the repository path (`ns/name`)."""

    kind = "registry"

    def __init__(self, host: str, config: Config, client: httpx.Client | None = None) -> None:
        self.host = host
        self.name = host
        self.t = Transport(host, config, client)
        self.resumes = 0  # how many Range resumes happened (for tests and stats)

    # --- discovery ---------------------------------------------------------------------
    def ping(self) -> None:
        resp = self.t.request("GET", "/v2/", "")
        if resp.status_code != 200:
            raise self.t.fail(resp, "ping /v2/")

    def list_tags(self, repo: str, page_size: int = 100) -> list[str]:
        tags: list[str] = []
        url: str | None = f"/v2/{repo}/tags/list?n={page_size}"
        while url:
            resp = self.t.request("GET", url, scope_for(repo))
            if resp.status_code == 404:
                raise NotFound(f"repository {repo} not found on {self.host}")
            if resp.status_code != 200:
                raise self.t.fail(resp, f"listing tags of {repo}")
            tags += resp.json().get("tags") or []
            match = _LINK.search(resp.headers.get("link", ""))
            url = urljoin(self.t.base + "/", match.group(1)) if match else None
        return tags

    def list_repositories(self, page_size: int = 100) -> list[str]:
        repos: list[str] = []
        url: str | None = f"/v2/_catalog?n={page_size}"
        while url:
            resp = self.t.request("GET", url, "registry:catalog:*")
            if resp.status_code != 200:
                raise self.t.fail(resp, "listing repositories")
            repos += resp.json().get("repositories") or []
            match = _LINK.search(resp.headers.get("link", ""))
            url = urljoin(self.t.base + "/", match.group(1)) if match else None
        return repos

    # --- manifests ---------------------------------------------------------------------
    def get_manifest(self, repo: str, reference: str) -> RawManifest:
        resp = self.t.request("GET", f"/v2/{repo}/manifests/{reference}", scope_for(repo), headers={"Accept": mt.ACCEPT})
        if resp.status_code == 404:
            raise self._not_found(repo, reference)
        if resp.status_code != 200:
            raise self.t.fail(resp, f"reading manifest {repo}:{reference}")
        data = resp.content
        digest = sha256(data)
        expected = reference if reference.startswith("sha256:") else resp.headers.get("docker-content-digest")
        if expected and expected != digest:
            raise DigestMismatch(f"manifest {repo}:{reference} hashes to {short(digest)}, not {short(expected)}; refusing it")
        media_type = resp.headers.get("content-type", "").split(";")[0].strip()
        return RawManifest(data, media_type, digest)

    def head_manifest(self, repo: str, reference: str) -> Descriptor | None:
        resp = self.t.request("HEAD", f"/v2/{repo}/manifests/{reference}", scope_for(repo), headers={"Accept": mt.ACCEPT})
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self.t.fail(resp, f"checking manifest {repo}:{reference}")
        return Descriptor(
            resp.headers.get("content-type", ""), resp.headers.get("docker-content-digest", ""),
            int(resp.headers.get("content-length", 0)),
        )

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        digest = sha256(data)
        for attempt in range(len(BLOB_LINK_RACE_WAITS) + 1):
            resp = self.t.request(
                "PUT", f"/v2/{repo}/manifests/{reference}", scope_for(repo, push=True),
                headers={"Content-Type": media_type}, content=data,
            )
            if attempt == len(BLOB_LINK_RACE_WAITS) or not _blob_link_race(resp):
                break
            resp.close()
            time.sleep(BLOB_LINK_RACE_WAITS[attempt])
        if resp.status_code not in (200, 201):
            raise self.t.fail(resp, f"pushing manifest {repo}:{reference}")
        announced = resp.headers.get("docker-content-digest")
        if announced and announced != digest:
            raise DigestMismatch(f"registry stored manifest as {short(announced)} but it hashes to {short(digest)}")
        return digest

    def delete_manifest(self, repo: str, digest: str) -> None:
        """Delete a manifest by digest (and so every tag naming it). Blobs stay: the registry's
        garbage collector removes those no manifest uses."""
        resp = self.t.request("DELETE", f"/v2/{repo}/manifests/{digest}", scope_for(repo, delete=True))
        if resp.status_code == 404:
            raise self._not_found(repo, digest)
        if resp.status_code == 405:
            raise RemoteError(f"{self.host} does not allow deleting manifests (distribution: storage.delete.enabled "
                              "is false); enable it or prune with the registry's own tools")
        if resp.status_code not in (200, 202):
            raise self.t.fail(resp, f"deleting manifest {repo}@{short(digest)}")

    def _not_found(self, repo: str, reference: str) -> NotFound:
        what = f"digest {short(reference)}" if reference.startswith("sha256:") else f"tag {reference!r}"
        return NotFound(f"{what} not found in {self.host}/{repo}; `fleet-tui tags {self.host}/{repo}` lists the tags")

    # --- blobs -------------------------------------------------------------------------
    def blob_size(self, repo: str, digest: str) -> int | None:
        resp = self.t.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope_for(repo))
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self.t.fail(resp, f"checking blob {short(digest)}")
        return int(resp.headers.get("content-length", 0))

    def read_blob(self, repo: str, digest: str, size: int | None = None) -> bytes:
        """A whole (small) blob, verified."""
        return b"".join(self.iter_blob(repo, digest, size))

    def iter_blob(
        self, repo: str, digest: str, size: int | None = None, offset: int = 0,
        verifier: DigestVerifier | None = None, chunk: int = CHUNK,
    ) -> Iterator[bytes]:
        """Stream a blob from `offset`, resuming with Range after a cut.

        Verifies the digest at the end when it saw the whole blob (offset 0) or when the
        caller passes the `verifier` holding the hash of the bytes before `offset`.
        """
        check_digest(digest)
        if verifier is None and offset == 0:
            verifier = DigestVerifier(digest, size)
        pos, attempts = offset, 0
        while True:
            headers = {"Range": f"bytes={pos}-"} if pos else {}
            resp = self.t.request("GET", f"/v2/{repo}/blobs/{digest}", scope_for(repo), headers=headers, stream=True)
            try:
                if resp.status_code == 404:
                    raise NotFound(f"blob {short(digest)} not found in {self.host}/{repo}")
                if resp.status_code == 416 and size is not None and pos >= size:
                    break
                if resp.status_code not in (200, 206):
                    raise self.t.fail(resp, f"reading blob {short(digest)}")
                if pos and resp.status_code == 200:
                    raise RemoteError(f"registry {self.host} ignored the Range request for blob {short(digest)}")
                for piece in resp.iter_bytes():  # as received: a cut loses nothing already read
                    pos += len(piece)
                    if verifier is not None:
                        verifier.update(piece)
                    yield piece
                break
            except (httpx.TransportError, httpx.StreamError) as exc:
                attempts += 1
                if attempts > self.t.retries:
                    raise RemoteError(f"download of blob {short(digest)} from {self.host} kept failing: {type(exc).__name__}") from None
                self.resumes += 1
            finally:
                resp.close()
        if verifier is not None:
            verifier.finish()

    def push_blob(self, repo: str, digest: str, data: bytes | Iterable[bytes], size: int | None = None,
                  mount_from: str | None = None) -> bool:
        """Upload unless present; returns True if bytes were uploaded. Chunked for iterables."""
        check_digest(digest)
        if self.blob_size(repo, digest) is not None:
            return False
        if mount_from and mount_from != repo and self.mount_blob(repo, digest, mount_from):
            return False
        location = self._start_upload(repo)
        if isinstance(data, (bytes, bytearray)):
            if sha256(bytes(data)) != digest:
                raise DigestMismatch(f"refusing to push blob {short(digest)}: the bytes hash to something else")
            self._finish_upload(repo, location, digest, bytes(data))
            return True
        start = 0
        for piece in data:
            end = start + len(piece) - 1
            resp = self.t.request(
                "PATCH", location, scope_for(repo, push=True), content=piece,
                headers={"Content-Type": "application/octet-stream", "Content-Range": f"{start}-{end}"},
            )
            if resp.status_code != 202:
                raise self.t.fail(resp, f"uploading a chunk of blob {short(digest)}")
            location = urljoin(self.t.base + "/", resp.headers["location"])
            start = end + 1
        self._finish_upload(repo, location, digest, b"")
        return True

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        scope = f"{scope_for(repo, push=True)} {scope_for(from_repo)}"
        resp = self.t.request("POST", f"/v2/{repo}/blobs/uploads/", scope, params={"mount": digest, "from": from_repo})
        if resp.status_code == 201:
            return True
        if resp.status_code == 202 and "location" in resp.headers:  # not mounted: cancel the upload it opened
            self.t.request("DELETE", urljoin(self.t.base + "/", resp.headers["location"]), scope_for(repo, push=True))
            return False
        raise self.t.fail(resp, f"mounting blob {short(digest)} from {from_repo}")

    def _start_upload(self, repo: str) -> str:
        resp = self.t.request("POST", f"/v2/{repo}/blobs/uploads/", scope_for(repo, push=True))
        if resp.status_code != 202:
            raise self.t.fail(resp, f"starting an upload to {repo}")
        return urljoin(self.t.base + "/", resp.headers["location"])

    def _finish_upload(self, repo: str, location: str, digest: str, data: bytes) -> None:
        sep = "&" if "?" in location else "?"
        resp = self.t.request(
            "PUT", f"{location}{sep}digest={digest}", scope_for(repo, push=True), content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if resp.status_code not in (201, 204):
            raise self.t.fail(resp, f"completing upload of blob {short(digest)}")

    def close(self) -> None:
        self.t.close()
