"""The rollout's sites: no device of a site is told to update before its cache holds every blob
it will pull, one device of the site goes first, and a site whose cache fails is held back alone.

A part of `Engine` (`engine.sites`); `WaveTagging.tag_more` asks `admit` which of a wave's
devices it may tell now. Everything it knows is in the journal, as `site` events:
- `{"site", "ready", "bytes"}`: the warm-up (site_warmup.py) found every item held;
- `{"site", "halt": reason}`: the cache is down or lost a blob, or the site's canary failed;
  the site's devices are not told, and do not count in any gate (`held_devices`);
- `{"site", "retry"}`: an operator's `continue`: the site is warmed and checked again.
A `warm` event per item warmed carries its bytes: what the live view and the report show as
the site's uplink use. A `simulated` cache (the demo's) is ready at once: the simulated fleet
models the gateway. Before each later batch of a site, a cache checked more than `RECHECK_S`
ago is probed again (held blobs cost no uplink), so a blob the proxy expired halts the site
instead of sending its devices over their own link.
"""

from __future__ import annotations

import calendar
import time
from collections import defaultdict
from typing import Any

from fleet_tui import units, windows
from fleet_tui.errors import FleetError
from fleet_tui.oci.pullthrough import PullThrough
from fleet_tui.rollout.context import RolloutContext
from fleet_tui.rollout.site_plan import charged
from fleet_tui.rollout.site_warmup import WarmJob
from fleet_tui.units import plural, size

RECHECK_S = 120.0


def site_status(journal: Any, rollout_id: str) -> dict[str, dict[str, Any]]:
    """Site → {"state": warming|ready|halted, "reason", "warmed" bytes, "items"} from the journal."""
    out: dict[str, dict[str, Any]] = {}
    for e in journal.events(rollout_id, ("site", "warm")):
        name = str(e.data.get("site", ""))
        st = out.setdefault(name, {"state": "warming", "reason": "", "warmed": 0, "items": 0})
        if e.kind == "warm":
            st["warmed"] += int(e.data.get("bytes", 0))
            st["items"] += 1
        elif "halt" in e.data:
            st.update(state="halted", reason=str(e.data["halt"]))
        elif e.data.get("ready"):
            st.update(state="ready", reason="")  # its "bytes" are the warm events' sum
        elif e.data.get("retry") or e.data.get("warming"):
            st.update(state="warming", reason="")
        elif "wait" in e.data:
            st.update(state="waiting", reason="its uplink's window is closed")
    return out


def month_start(now: float) -> float:
    """The start of `now`'s calendar month, UTC (what a monthly cap counts from)."""
    t = time.gmtime(now)
    return calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, 0))


def held_sites(journal: Any, rollout_id: str) -> dict[str, str]:
    return {s: st["reason"] for s, st in site_status(journal, rollout_id).items() if st["state"] == "halted"}


class SiteSteps:
    def __init__(self, ctx: RolloutContext) -> None:
        self.ctx = ctx
        self.sites: dict[str, dict[str, Any]] = ctx.spec.get("sites") or {}
        variants = ctx.spec["variants"]
        self.site_of = {a.device_id: variants[a.variant].get("site", "") for a in ctx.assignments
                        if variants[a.variant].get("site", "") in self.sites}
        self.members: dict[str, list[str]] = defaultdict(list)  # site → its devices, in assignment order
        for a in ctx.assignments:
            if a.device_id in self.site_of:
                self.members[self.site_of[a.device_id]].append(a.device_id)
        self.jobs: dict[str, WarmJob] = {}
        self._checked: dict[str, float] = {}
        self._waiting: set[str] = set()  # sites whose closed uplink window was recorded
        self._reported: dict[str, set[str]] = {}  # per running job: items whose `warm` event is written

    def held_devices(self) -> set[str]:
        if not self.sites:
            return set()
        held = held_sites(self.ctx.journal, self.ctx.id)
        return {d for d, s in self.site_of.items() if s in held}

    # --- what the budget counts -----------------------------------------------------------
    def wave_plan(self, wave: int, per_gb: float) -> int:
        """The planned uplink of the sites this wave reaches first (fleet_tui.rollout.site_plan.wave_spend)."""
        reached = {self.site_of[a.device_id] for a in self.ctx.assignments if a.device_id in self.site_of and a.wave < wave}
        new = {self.site_of[a.device_id] for a in self.ctx.by_wave.get(wave, []) if a.device_id in self.site_of} - reached
        return sum(charged(int(self.sites[s]["planned_uplink"]), self.sites[s], per_gb) for s in new)

    def uplink_spent(self, per_gb: float) -> int:
        """What the sites' warm-ups moved so far, as the budget counts it."""
        status = site_status(self.ctx.journal, self.ctx.id)
        return sum(charged(int(st["warmed"]), self.sites[s], per_gb)
                   for s, st in status.items() if s in self.sites)

    # --- admitting a wave's devices --------------------------------------------------------
    def admit(self, wave: int, left: list[str], told: set[str], views: dict[str, Any]) -> list[str]:
        """Of `left` (untold devices of the wave, in order), those that may be told now."""
        if not self.sites:
            return left
        status = site_status(self.ctx.journal, self.ctx.id)
        by_site: dict[str, list[str]] = defaultdict(list)
        for d in left:
            by_site[self.site_of.get(d, "")].append(d)
        allowed = set(by_site.pop("", []))
        for site, ids in by_site.items():
            state = status.get(site, {}).get("state", "warming")
            if state == "halted":
                continue
            if state != "ready":
                if not self._warm(site, wave):
                    continue
            elif not self._still_held(site, wave):
                continue
            allowed.update(self._past_canary(site, wave, ids, told, views))
        return [d for d in left if d in allowed]

    def _warm(self, site: str, wave: int) -> bool:
        """Start or follow the site's warm-up; True once its cache was found holding everything."""
        entry = self.sites[site]
        if site not in self.jobs and not self._uplink_allows(site, wave):
            return False
        if entry["kind"] != "distribution":  # the simulated gateway: what its model says crossed the uplink
            planned = int(entry.get("planned_uplink", 0))
            self.ctx.record("warm", "done", wave, {"site": site, "digest": "", "bytes": planned, "simulated": True})
            self.ctx.journal.remember_warm(site, list(entry["items"]))
            self._ready(site, wave, planned)
            return True
        job = self.jobs.get(site)
        if job is None:
            self.ctx.log(f"site {site}: warming its cache ({plural(len(entry['items']), 'item')}, "
                         f"{size(sum(int(i[1]) for i in entry['items'].values()))})")
            job = self.jobs[site] = WarmJob(site, entry["url"], entry["items"], int(entry.get("bandwidth") or 1)).start()
            self.ctx.record("site", "done", wave, {"site": site, "warming": True})
        reported = self._reported.setdefault(site, set())
        for digest in [d for d in list(job.done) if d not in reported]:
            reported.add(digest)
            held = digest in job.found_held
            self.ctx.record("warm", "done", wave, {"site": site, "digest": digest,
                                                   "bytes": 0 if held else job.done[digest], "held": held})
        if not job.finished:
            return False
        del self.jobs[site]
        self._reported.pop(site, None)
        if job.error:
            self.halt(site, wave, f"cache {entry['url']}: {job.error}")
            return False
        self.ctx.journal.remember_warm(site, list(entry["items"]))
        self._ready(site, wave, job.done_bytes - sum(job.done[d] for d in job.found_held))
        return True

    def _uplink_allows(self, site: str, wave: int) -> bool:
        """A warm-up starts only inside the uplink's windows, and never past its monthly cap."""
        entry, now = self.sites[site], time.time()
        is_open, change = windows.window_state(tuple(entry.get("windows") or ()), entry.get("timezone") or "UTC", now)
        if not is_open:
            if site not in self._waiting:
                self._waiting.add(site)
                self.ctx.record("site", "done", wave, {"site": site, "wait": round(change)})
                self.ctx.log(f"site {site}: its uplink's window opens in {units.span(change)}")
            return False
        self._waiting.discard(site)
        cap = int(entry.get("monthly_cap") or 0)
        if cap:
            used = self.ctx.journal.site_uplink_since(site, month_start(now))
            planned = int(entry.get("planned_uplink", 0))
            if used + planned > cap:
                self.halt(site, wave, f"its uplink's monthly cap: {size(used)} used this month + {size(planned)} "
                                      f"for this warm-up > {size(cap)}; raise monthly_cap or wait for next month")
                return False
        return True

    def _ready(self, site: str, wave: int, warmed: int) -> None:
        self._checked[site] = time.time()
        self.ctx.record("site", "done", wave, {"site": site, "ready": True, "bytes": warmed})
        self.ctx.log(f"site {site}: cache ready ({size(warmed)} over the uplink)")

    def _still_held(self, site: str, wave: int) -> bool:
        entry = self.sites[site]
        if entry["kind"] != "distribution" or time.time() - self._checked.get(site, 0) < RECHECK_S:
            return True
        cache = PullThrough(entry["url"])
        try:
            for digest, (repo, _size, kind) in entry["items"].items():
                if kind != "manifest" and not cache.probe(repo, digest).held:
                    raise FleetError(f"the cache no longer holds {digest[:19]} (expired from the proxy?)")
        except FleetError as exc:
            self.halt(site, wave, f"cache {entry['url']}: {str(exc).splitlines()[0]}")
            return False
        self._checked[site] = time.time()
        return True

    def _past_canary(self, site: str, wave: int, ids: list[str], told: set[str], views: dict[str, Any]) -> list[str]:
        """One device of the site first; the rest once it runs the new image."""
        ctx = self.ctx
        before = self._told_before(wave)  # one journal read, not one per device
        ever = [d for d in self.members[site] if d in told or d in before]
        if not ever:
            return ids[:1]
        canary = ever[0]
        if canary not in views:  # told in a wave that passed its gate
            return ids
        view = views[canary]
        if view.state == "failed":
            self.halt(site, wave, f"its canary {canary} failed: {(view.error or '')[:120]}")
            return []
        return ids if view.state == "running" and view.digest == ctx.expected.get(canary) else []

    def _told_before(self, wave: int) -> set[str]:
        out: set[str] = set()
        for e in self.ctx.journal.events(self.ctx.id, "target"):
            if e.phase == "intent" and e.wave is not None and e.wave < wave and isinstance(e.data.get("devices"), list):
                out.update(e.data["devices"])
        return out

    def halt(self, site: str, wave: int, reason: str) -> None:
        n = len(self.members[site])
        self.ctx.record("site", "done", wave, {"site": site, "halt": reason})
        self.ctx.log(f"site {site} halted ({plural(n, 'device')} held back): {reason}")

    def retry(self, who: str) -> list[str]:
        """An operator's `continue`: every halted site is warmed and checked again."""
        held = held_sites(self.ctx.journal, self.ctx.id)
        for site in held:
            self.ctx.record("site", "done", None, {"site": site, "retry": True, "by": who})
        return sorted(held)
