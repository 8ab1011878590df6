"""Telling someone when an hours-long rollout needs them: `[notify]` in the config.

The engine calls `Notifier.send` when a rollout halts, when a wave waits for `rollout
approve`, and when the rollout ends (succeeded, aborted, rolled back). The event goes as one
JSON object — `{"rollout", "group", "target", "event", "state", "reason", "wave", "ts"}` — on
the stdin of `[notify] command` (run by the shell) and/or as the body of a POST to
the URL in the environment variable `[notify] webhook_env` (by reference: such URLs often
carry a token, and the config is shown by `config show`).

Invariants: delivery runs in a daemon thread with a timeout, so a slow or failing hook never
delays or stops the rollout; its failure is logged in one line naming only the webhook's host (a URL's path
and query, and the command's output, may hold tokens); events carry no secrets.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any, Callable

from fleet_tui.errors import UsageError
from fleet_tui.secrets import SecretRef

EVENTS = ("halted", "awaiting_approval", "succeeded", "aborted", "rolled_back")


class Notifier:
    def __init__(self, command: str = "", webhook: str = "", timeout: float = 10.0,
                 log: Callable[[str], None] = lambda line: None) -> None:
        self.command, self.webhook, self.timeout, self.log = command, webhook, timeout, log
        self.threads: list[threading.Thread] = []

    @classmethod
    def from_config(cls, config: Any, log: Callable[[str], None]) -> "Notifier":
        section = getattr(config, "notify", None)
        if section is None:
            return cls(log=log)
        webhook = ""
        if section.webhook_env:


            try:
                webhook = SecretRef(env=section.webhook_env).resolve("notify webhook URL").reveal()
            except UsageError as exc:  # no notification is no reason to stop a rollout
                log(f"{exc}; rollout notifications go to the command only")
        return cls(section.command, webhook, section.timeout, log)

    @property
    def enabled(self) -> bool:
        return bool(self.command or self.webhook)

    def send(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        body = json.dumps({**event, "ts": event.get("ts", time.time())}, sort_keys=True)
        thread = threading.Thread(target=self._deliver, args=(body,), name="notify", daemon=True)
        thread.start()
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]

    def wait(self, seconds: float) -> None:
        """Let deliveries in flight finish (the engine calls it before it exits)."""
        deadline = time.monotonic() + seconds
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _deliver(self, body: str) -> None:
        if self.command:
            try:
                done = subprocess.run(self.command, shell=True, input=body, text=True, capture_output=True,
                                      timeout=self.timeout, check=False)
                if done.returncode:
                    self.log(f"notify command exited {done.returncode}; the rollout goes on")
            except (OSError, subprocess.SubprocessError) as exc:
                self.log(f"notify command failed ({type(exc).__name__}); the rollout goes on")
        if self.webhook:
            import httpx

            try:
                resp = httpx.post(self.webhook, content=body, timeout=self.timeout,
                                  headers={"Content-Type": "application/json"})
                if resp.status_code >= 300:
                    self.log(f"notify webhook at {_host(self.webhook)} answered {resp.status_code}; the rollout goes on")
            except (httpx.HTTPError, ValueError) as exc:
                self.log(f"notify webhook at {_host(self.webhook)} failed ({type(exc).__name__}); the rollout goes on")


def _host(url: str) -> str:
    """Only the host of a webhook URL is ever logged: its path and query often hold the token."""
    return url.split("://", 1)[-1].split("/", 1)[0].split("@")[-1] or "?"
