"""Errors that reach the operator.

Invariant: every exception raised for a condition the operator can fix (bad input,
unreachable registry or hub, auth failure, missing tag) is a `FleetError` whose message
is ONE line naming what went wrong and what to do. The CLI prints it as
`fleet-tui: error: <message>` and exits non-zero; the UI shows it in a notification.
Messages never contain secrets (see `fleet_tui.secrets.redact`).
"""

from __future__ import annotations


class FleetError(Exception):
    """An error with a one-line, operator-facing message."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class Interrupted(FleetError):
    """The operator pressed Ctrl-C; the message says what state things were left in."""

    exit_code = 130


class UsageError(FleetError):
    """The command line or a config value is wrong."""

    exit_code = 2


class NotFound(FleetError):
    """A repository, tag, blob, device, group or rollout does not exist."""


class AuthError(FleetError):
    """Credentials were missing or refused."""


class RemoteError(FleetError):
    """A registry or hub could not be reached or answered with an error."""


class LimitReached(FleetError):
    """A hub or registry is full (IoT Hub's 100 configurations): retrying cannot help until
    the operator deletes something, so a rollout engine stops instead of retrying."""


class DigestMismatch(FleetError):
    """Content did not hash to the digest it was asked for (never accepted)."""


class Conflict(FleetError):
    """An optimistic-concurrency check failed (stale ETag) or a lock is held."""
