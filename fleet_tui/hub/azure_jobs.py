"""Tagging many devices on Azure IoT Hub with scheduled `scheduleUpdateTwin` jobs.

One job per `deviceId IN [...]` chunk that fits a query (see azure_query.in_chunks), run
one after another because S1 allows one job at a time; each is polled until it ends or
`limits.job_timeout` passes. With a `key` the job ids are deterministic (`fleet-tui-<key>-<n>`
for the n-th chunk of the same device list): a caller that repeats itself after a crash — the
rollout engine finishing an intent — finds the job it had started (409) and waits for it
instead of tagging the same devices again.

Invariant: a job that fails, is cancelled or times out raises `RemoteError` with one line
(the hub's own reason squeezed to 160 characters); it never returns a partial count.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any, Sequence

from azure.iot.hub import IoTHubJobManager
from azure.iot.hub.models import JobRequest, Twin

from fleet_tui.errors import Conflict, RemoteError
from fleet_tui.hub.azure_query import in_chunks, in_list
from fleet_tui.hub.azure_retry import HubCaller, HubLimits


def run_tag_jobs(jobs: IoTHubJobManager, caller: HubCaller, limits: HubLimits, device_ids: Sequence[str],
                 tags: dict[str, Any], key: str | None = None) -> int:
    """Merge `tags` onto `device_ids`, one job per chunk; how many device updates succeeded."""
    prefix = f"fleet-tui-{_slug(key)}" if key else f"fleet-tui-tags-{uuid.uuid4().hex[:12]}"
    chunks = in_chunks(sorted(device_ids) if key else list(device_ids))
    return sum(_run_tag_job(jobs, caller, limits, chunk, tags, f"{prefix}-{n}") for n, chunk in enumerate(chunks))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text.lower())[:80]


def _run_tag_job(jobs: IoTHubJobManager, caller: HubCaller, limits: HubLimits, ids: list[str], tags: dict[str, Any],
                 job_id: str) -> int:
    request = JobRequest(
        job_id=job_id,
        type="scheduleUpdateTwin",
        update_twin=Twin(tags=tags, etag="*"),
        query_condition=f"deviceId IN {in_list(ids)}",
        start_time=dt.datetime.now(dt.timezone.utc),
        max_execution_time_in_seconds=int(limits.job_timeout),
    )
    what = f"tagging job {job_id}"
    try:
        job = caller.call("other", what, lambda: jobs.create_scheduled_job(job_id, request))
    except Conflict:  # started before a crash: wait for that one, never tag the devices twice
        job = caller.call("other", what, lambda: jobs.get_scheduled_job(job_id))
    deadline = time.monotonic() + limits.job_timeout
    wait = min(0.25, limits.job_poll_interval)  # small jobs end fast: poll soon, then less often
    while (job.status or "").lower() not in ("completed", "failed", "cancelled"):
        if time.monotonic() > deadline:
            raise RemoteError(f"{what} did not finish in {limits.job_timeout:.0f}s; check it in the Azure portal")
        time.sleep(wait)
        wait = min(wait * 2, limits.job_poll_interval)
        job = caller.call("other", what, lambda: jobs.get_scheduled_job(job_id))
    if job.status.lower() != "completed":
        reason = " ".join(str(job.failure_reason or job.status_message or job.status).split())[:160]
        raise RemoteError(f"{what} {job.status.lower()}: {reason}")
    stats = job.device_job_statistics
    return int(stats.succeeded_count or 0) if stats else len(ids)
