"""A loopback HTTPS server that answers the IoT Hub REST calls `azure-iot-hub` 2.7.0 makes,
and records every request so tests can assert on paths, api-version, headers and bodies.

The SDK hard-codes `https://` + HostName, so this serves TLS with a throw-away self-signed
certificate for 127.0.0.1 (made with `cryptography`); the hub under test is told to trust it.
It checks the SAS token's HMAC against its key (401 otherwise), answers every body with
`Content-Type: application/json` (the SDK cannot deserialize without it), pages queries with
`x-ms-continuation`, enforces If-Match etags (412), and can be scripted to fail the next
matching requests (e.g. 429 with `Retry-After`). State lives in plain dicts shaped like the
hub's JSON; `fake_query` evaluates the small query subset the hub client sends.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.fake_query import run_query
from tests.support.fake_routes import route

API_VERSION = "2021-04-12"


@dataclass
class Recorded:
    method: str
    path: str  # unquoted, without the query string
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON or None


def make_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "hub.crt", directory / "hub.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class FakeIotHub:
    """Start with `FakeIotHub(tmp_path).start()`; `stop()` when done."""

    def __init__(self, directory: Path, key: bytes = b"fleet-tui-loopback-test-key-0001") -> None:
        self.key_b64 = base64.b64encode(key).decode()
        self.cert, self._key_file = make_cert(directory)
        self.devices: dict[str, dict] = {}
        self.modules: dict[tuple[str, str], dict] = {}
        self.configurations: dict[str, dict] = {}
        self.jobs: dict[str, dict] = {}
        self.requests: list[Recorded] = []
        self.failures: list[tuple[str, str, int, dict[str, str], dict]] = []
        self.lock = threading.Lock()
        self._etag = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.hub = self  # type: ignore[attr-defined]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self._key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def connection_string(self) -> str:
        return f"HostName={self.host};SharedAccessKeyName=iothubowner;SharedAccessKey={self.key_b64}"

    def start(self) -> "FakeIotHub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- state helpers -----------------------------------------------------------------
    def next_etag(self) -> str:
        self._etag += 1
        return base64.b64encode(f"etag-{self._etag}".encode()).decode()

    def add_device(self, device_id: str, tags: dict | None = None, connected: bool = True, agent: dict | None = None) -> None:
        self.devices[device_id] = {
            "deviceId": device_id,
            "etag": self.next_etag(),
            "version": 2,
            "tags": dict(tags or {}),
            "properties": {"desired": {"$version": 1}, "reported": {"$version": 1}},
            "status": "enabled",
            "connectionState": "Connected" if connected else "Disconnected",
            "lastActivityTime": "2024-05-01T10:00:00Z",
        }
        if agent is not None:
            self.modules[(device_id, "$edgeAgent")] = {"deviceId": device_id, "moduleId": "$edgeAgent", "etag": self.next_etag(), **agent}

    def fail_next(self, method: str, path_prefix: str, status: int, headers: dict[str, str] | None = None, times: int = 1) -> None:
        """The next `times` requests matching method and path prefix get `status`."""
        body = {"Message": f"ErrorCode:ThrottlingException;scripted {status}", "ExceptionMessage": "Tracking ID:fake"}
        for _ in range(times):
            self.failures.append((method, path_prefix, status, dict(headers or {}), body))

    def of(self, method: str, prefix: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def check_sas(self, header: str) -> bool:
        if not header.startswith("SharedAccessSignature "):
            return False
        fields = dict(p.split("=", 1) for p in header[len("SharedAccessSignature ") :].split("&") if "=" in p)
        message = (fields.get("sr", "") + "\n" + fields.get("se", "")).encode()
        digest = hmac.new(base64.b64decode(self.key_b64), message, hashlib.sha256).digest()
        return urllib.parse.unquote(fields.get("sig", "")) == base64.b64encode(digest).decode()


def _error(code: str, text: str) -> dict:
    return {"Message": f"ErrorCode:{code};{text}", "ExceptionMessage": "Tracking ID:fake"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        hub: FakeIotHub = self.server.hub  # type: ignore[attr-defined]
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        with hub.lock:
            hub.requests.append(Recorded(self.command, path, params, headers, body))
            if not hub.check_sas(headers.get("authorization", "")):
                return self._send(401, _error("IotHubUnauthorizedAccess", "Unauthorized"))
            if params.get("api-version") != API_VERSION:
                return self._send(400, _error("InvalidProtocolVersion", "bad api-version"))
            for i, (method, prefix, status, extra, err) in enumerate(hub.failures):
                if method == self.command and path.startswith(prefix):
                    del hub.failures[i]
                    return self._send(status, err, extra)
            status, out, extra = route(hub, self.command, path, headers, body)
        self._send(status, out, extra)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


__all__ = ["FakeIotHub", "Recorded", "run_query", "API_VERSION"]
