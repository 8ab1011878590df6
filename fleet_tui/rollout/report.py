"""The end-of-rollout report: what a rollout moved, cost, took and saved — `rollout report ID`.

Built from the same snapshot `rollout status` prints (so its numbers are the status's numbers)
plus the journal: waves with their start, judgement and duration, who did what, and the
naive cost avoided (what the same devices would have pulled of the naive target, planned when
the rollout was created; unknown for rollouts created before that was recorded).
Renderings: `to_json`, `to_csv` (one row per device) and `to_markdown` (summary, waves, the
devices that did not end running, and a cumulative-bytes chart as inline SVG).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from fleet_tui.rollout.journal import Journal
from fleet_tui.rollout.site_plan import variant_site
from fleet_tui.rollout.site_progress import cost_with_sites
from fleet_tui.rollout.snapshot import RolloutSnapshot

CHART_W, CHART_H = 480, 160


@dataclass(frozen=True)
class Report:
    snapshot: RolloutSnapshot
    created: float
    ended: float | None
    waves: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    naive_bytes: int | None
    per_gb: float
    currency: str

    @property
    def cost(self) -> float:
        """Devices of no site by their own bytes; a site by its uplink (what its warm-up moved)."""
        return cost_with_sites(self.snapshot.devices, self.snapshot.sites, self.per_gb)

    @property
    def avoided(self) -> float | None:
        return None if self.naive_bytes is None else (self.naive_bytes - self.snapshot.bytes_planned) / 1e9 * self.per_gb

    def timeline(self) -> list[tuple[float, int]]:
        """(seconds since creation, bytes moved by then): a point at each judged wave, and one
        at the end (or now, while it runs) with everything moved so far."""
        by_wave: dict[int, int] = {}
        for d in self.snapshot.devices:
            by_wave[d.wave] = by_wave.get(d.wave, 0) + d.bytes
        points, total = [(0.0, 0)], 0
        for w in self.waves:
            if w["judged"] is not None:
                total += by_wave.get(w["index"], 0)
                points.append((w["judged"] - self.created, total))
        last = (self.ended if self.ended is not None else self.snapshot.taken) - self.created
        if last > points[-1][0] or self.snapshot.bytes_total > total:
            points.append((max(last, points[-1][0]), self.snapshot.bytes_total))
        return points

    def to_json(self) -> dict[str, Any]:
        s = self.snapshot
        return {
            "id": s.id, "group": s.group, "target": s.target, "state": s.state, "reason": s.reason,
            "created": self.created, "ended": self.ended,
            "duration_s": None if self.ended is None else round(self.ended - self.created, 1),
            "devices": len(s.devices), "bytes_total": s.bytes_total, "bytes_planned": s.bytes_planned,
            "cost": round(self.cost, 4), "currency": self.currency, "naive_bytes": self.naive_bytes,
            "cost_avoided": None if self.avoided is None else round(self.avoided, 2),
            "waves": self.waves, "actions": self.actions,
            "states": {state: s.count(state) for state in sorted({d.state for d in s.devices})},
            "timeline": [{"t": round(t, 1), "bytes": b} for t, b in self.timeline()],
            "per_device": {d.id: {"wave": d.wave, "variant": d.variant, "state": d.state, "bytes": d.bytes,
                                  "planned": d.total, "site": variant_site(d.variant)} for d in s.devices},
            "sites": [p.to_json() for p in s.sites],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["device", "wave", "variant", "state", "bytes", "planned", f"cost_{self.currency}", "site"])
        sites = {p.site for p in self.snapshot.sites if p.kind != "none"}
        for d in self.snapshot.devices:
            site = variant_site(d.variant)  # a site's devices pull over its LAN: the uplink's cost is the site's row
            cost = 0.0 if site in sites else d.bytes / 1e9 * self.per_gb
            writer.writerow([d.id, d.wave + 1, d.variant, d.state, d.bytes, d.total, f"{cost:.4f}", site])
        return out.getvalue()

    def facts(self) -> list[tuple[str, str]]:
        """The summary as (label, value): the Markdown table and the console's Report screen."""
        s, cur = self.snapshot, self.currency
        avoided = "unknown (rollout created before naive plans were kept)" if self.avoided is None else f"{cur}{self.avoided:,.2f}"
        states = ", ".join(f"{n:,} {k}" for k, n in self.to_json()["states"].items())
        return [
            ("devices", f"{len(s.devices):,} ({states})"),
            ("bytes moved", f"{s.bytes_total:,} of {s.bytes_planned:,} planned"),
            ("cost", f"{cur}{self.cost:,.2f} at {cur}{self.per_gb:g}/GB"),
            ("naive cost avoided", avoided),
            ("duration", "running" if self.ended is None else f"{self.ended - self.created:,.0f} s"),
        ]

    def wave_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """(wave, devices, state, started, took, gate) per wave, as text."""
        rows = []
        for w in self.waves:
            took = "" if w["took_s"] is None else f"{w['took_s']:,.1f} s"
            start = "" if w["started"] is None else f"+{w['started'] - self.created:,.0f} s"
            rows.append((str(w["index"] + 1), f"{w['size']:,}", w["state"], start, took, w["result"]))
        return rows

    def to_markdown(self) -> str:
        s = self.snapshot
        lines = [
            f"# Rollout {s.id}: {s.target} → {s.group}", "",
            f"**{s.state}**" + (f" — {s.reason}" if s.reason else ""), "",
            "| | |", "|---|---|", *[f"| {label} | {value} |" for label, value in self.facts()], "",
            "## Waves", "", "| wave | devices | state | started | took | gate |", "|---:|---:|---|---:|---:|---|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.wave_rows()]
        if s.sites:
            lines += ["", "## Sites", "", "| site | cache | uplink | planned | cost | devices running | LAN |",
                      "|---|---|---:|---:|---:|---:|---:|"]
            lines += [f"| {p.site} | {p.state}{' — ' + p.reason if p.reason else ''} | {p.uplink_bytes:,} | "
                      f"{p.uplink_planned:,} | {self.currency}{p.uplink_cost:,.2f} | {p.running}/{p.devices} | "
                      f"{p.lan_bytes:,} |" for p in s.sites]
        lines += ["", "## Bytes over time", "", self.svg(), ""]
        problems = [d for d in s.devices if d.state != "running"]
        if problems:
            lines += ["## Devices not running the target", "", "| device | wave | state | bytes |", "|---|---:|---|---:|"]
            lines += [f"| {d.id} | {d.wave + 1} | {d.state} | {d.bytes:,} |" for d in problems[:200]]
            if len(problems) > 200:
                lines.append(f"| … {len(problems) - 200:,} more (see `--format csv`) | | | |")
        if self.actions:
            lines += ["", "## Who did what", ""] + [f"- {a['action']} by {a['by']}" for a in self.actions]
        return "\n".join(lines) + "\n"

    def svg(self) -> str:
        points = self.timeline()
        t_max = max(t for t, _ in points) or 1.0
        b_max = max(b for _, b in points) or 1
        xy = " ".join(f"{20 + t / t_max * (CHART_W - 40):.1f},{CHART_H - 20 - b / b_max * (CHART_H - 40):.1f}"
                      for t, b in points)
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{CHART_H}" role="img" '
                f'aria-label="cumulative bytes moved">'
                f'<rect width="{CHART_W}" height="{CHART_H}" fill="white" stroke="#ccc"/>'
                f'<polyline fill="none" stroke="#2a7" stroke-width="2" points="{xy}"/>'
                f'<text x="20" y="14" font-size="11">{b_max:,} B</text>'
                f'<text x="{CHART_W - 20}" y="{CHART_H - 5}" font-size="11" text-anchor="end">{t_max:,.0f} s</text></svg>')


def build_report(journal: Journal, snapshot: RolloutSnapshot, per_gb: float, currency: str) -> Report:
    row = journal.rollout(snapshot.id)
    events = journal.events(snapshot.id)
    ends = [e.ts for e in events if e.kind in ("finish", "abort", "rollback", "halt", "budget") and e.phase == "done"]
    ended = ends[-1] if row.state in ("succeeded", "aborted", "rolled_back", "halted") and ends else None
    waves = [{"index": w.idx, "size": w.size, "state": w.state, "started": w.started, "judged": w.judged,
              "took_s": None if w.started is None or w.judged is None else round(w.judged - w.started, 1),
              "result": (w.result or {}).get("reason", "")} for w in journal.waves(snapshot.id)]
    actions = journal.actions(snapshot.id, events)
    naive = row.spec.get("naive_total")
    return Report(snapshot, row.created, ended, waves, actions, None if naive is None else int(naive), per_gb, currency)
