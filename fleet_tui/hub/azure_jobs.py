"""Tagging many devices on Azure IoT Hub with scheduled `scheduleUpdateTwin` jobs.

One job per `deviceId IN [...]` chunk that fits a query (see azure_query.in_chunks), run
one after another because S1 allows one job at a time; each is polled until it ends or
`limits.job_timeout` passes.

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

from fleet_tui.errors import RemoteError
from fleet_tui.hub.azure_query import in_chunks, in_list
from fleet_tui.hub.azure_retry import HubCaller, HubLimits


def run_tag_jobs(
    jobs: IoTHubJobManager, caller: HubCaller, limits: HubLimits, device_ids: Sequence[str], tags: dict[str, Any]
) -> int:
    """Merge `tags` onto `device_ids`, one job per chunk; how many device updates succeeded."""
    return sum(_run_tag_job(jobs, caller, limits, chunk, tags) for chunk in in_chunks(list(device_ids)))


def _run_tag_job(jobs: IoTHubJobManager, caller: HubCaller, limits: HubLimits, ids: list[str], tags: dict[str, Any]) -> int:
    job_id = f"fleet-tui-tags-{uuid.uuid4().hex[:12]}"
    request = JobRequest(
        job_id=job_id,
        type="scheduleUpdateTwin",
        update_twin=Twin(tags=tags, etag="*"),
        query_condition=f"deviceId IN {in_list(ids)}",
        start_time=dt.datetime.now(dt.timezone.utc),
        max_execution_time_in_seconds=int(limits.job_timeout),
    )
    what = f"tagging job {job_id}"
    job = caller.call("other", what, lambda: jobs.create_scheduled_job(job_id, request))
    deadline = time.monotonic() + limits.job_timeout
    while (job.status or "").lower() not in ("completed", "failed", "cancelled"):
        if time.monotonic() > deadline:
            raise RemoteError(f"{what} did not finish in {limits.job_timeout:.0f}s; check it in the Azure portal")
        time.sleep(limits.job_poll_interval)
        job = caller.call("other", what, lambda: jobs.get_scheduled_job(job_id))
    if job.status.lower() != "completed":
        reason = " ".join(str(job.failure_reason or job.status_message or job.status).split())[:160]
        raise RemoteError(f"{what} {job.status.lower()}: {reason}")
    stats = job.device_job_statistics
    return int(stats.succeeded_count or 0) if stats else len(ids)
