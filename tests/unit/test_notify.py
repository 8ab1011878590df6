"""The notify hook (fleet_tui.rollout.notify): the webhook gets the JSON, a failing one is one
log line that names only its host, and the URL is taken by reference from the environment."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from fleet_tui.config import Config
from fleet_tui.rollout.notify import Notifier


def serve(status: int, got: list[bytes]) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_webhook_gets_the_event_as_json():
    got: list[bytes] = []
    server = serve(204, got)
    try:
        notifier = Notifier(webhook=f"http://127.0.0.1:{server.server_port}/hook/T0/SECRET", timeout=5)
        notifier.send({"rollout": "r1", "event": "halted"})
        notifier.wait(5)
    finally:
        server.shutdown()
    (body,) = got
    assert json.loads(body)["event"] == "halted" and json.loads(body)["rollout"] == "r1"


def test_a_failing_webhook_is_one_line_without_its_token():
    lines: list[str] = []
    server = serve(500, [])
    try:
        notifier = Notifier(webhook=f"http://127.0.0.1:{server.server_port}/hook/T0/SECRET?t=TOKEN", timeout=5,
                            log=lines.append)
        notifier.send({"event": "succeeded"})
        notifier.wait(5)
    finally:
        server.shutdown()
    assert lines == [f"notify webhook at 127.0.0.1:{server.server_port} answered 500; the rollout goes on"]


def test_webhook_url_comes_from_the_environment_and_a_missing_one_only_disables_it(monkeypatch):
    config = Config.model_validate({"notify": {"webhook_env": "FLEET_TEST_HOOK"}})
    monkeypatch.setenv("FLEET_TEST_HOOK", "https://hooks.example.com/T/SECRET")
    assert Notifier.from_config(config, print).webhook == "https://hooks.example.com/T/SECRET"
    monkeypatch.delenv("FLEET_TEST_HOOK")
    lines: list[str] = []
    notifier = Notifier.from_config(config, lines.append)
    assert not notifier.enabled and "FLEET_TEST_HOOK is not set" in lines[0]
