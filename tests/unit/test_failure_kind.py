"""Which retry budget a failed device draws on: `start` when its module ran and stopped, else
`download` — judged on what happened, never on the names in the message (an image called
`…/killed-model`, a module called `auto-start`)."""

import pytest

from fleet_tui.rollout.retries import failure_kind

REF = "127.0.0.1:5000/ml/scoring@sha256:" + "a" * 64


@pytest.mark.parametrize("error, kind", [
    ("exited on start (simulated crash, exit code 1)", "start"),
    ("backoff, exit code 137", "start"),  # Azure: runtimeStatus and exitCode (hub/azure_agent.py)
    ("killed by the OOM killer", "start"),
    (f"{REF}: pulling a layer failed: connection reset by peer (simulated download failure)", "download"),
    ("127.0.0.1:5000/test/app-killed-on-start@sha256:" + "b" * 64 + ": pulling a layer failed: timeout", "download"),
    ('Error calling Create module auto-start: registry operation error: pull image "reg/crash-test@sha256:1"',
     "download"),
    ("unauthorized: authentication required", "download"),
    ("", "download"),
])
def test_failure_kind(error: str, kind: str) -> None:
    assert failure_kind(error) == kind


@pytest.mark.parametrize("error", ["OOMKilled", "CrashLoopBackOff", "Back-off restarting failed container"])
def test_the_engines_own_words_for_a_crash_are_start_failures(error: str) -> None:
    assert failure_kind(error) == "start"
