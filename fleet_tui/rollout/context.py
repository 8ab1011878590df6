"""What every part of the rollout engine works from: the journalled plan, read once.

`Engine.__init__` builds one `RolloutContext` and hands it to each of its parts (tagging.py,
retries.py, staging.py, operator_commands.py); the parts hold no other shared state.

Invariants:
- everything here is the journal's rollout as `rollout start` wrote it (spec, assignments,
  metered devices); nothing is re-read from config, nothing changes while the engine runs;
- the policy and the budget are parsed once, from the spec;
- `record` and `intend` are the engine's: every journal write of a part goes through them,
  so notifications and the write-ahead dispatch of intents live in one place;
- deployments are created once by id with content fixed by the spec, so creating one
  again (a redo after a restart) is a no-op.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

from fleet_tui.errors import Conflict
from fleet_tui.hub.protocol import Deployment, ModuleSpec
from fleet_tui.rollout.budget import Budget
from fleet_tui.rollout.create import deployment_id, target_condition
from fleet_tui.rollout.fold import GROUP, KIND
from fleet_tui.rollout.journal import Assignment, Journal
from fleet_tui.rollout.policy import Policy


@dataclass(frozen=True)
class RolloutContext:
    journal: Journal
    hub: Any
    id: str
    spec: dict[str, Any]
    policy: Policy
    budget: Budget | None
    assignments: list[Assignment]
    by_wave: dict[int, list[Assignment]]
    expected: dict[str, str]  # device → the digest its variant deploys
    metered: set[str]  # devices on metered links
    log: Callable[[str], None]
    record: Callable[..., int]  # Engine.record: one journal event (and its notification)
    intend: Callable[..., None]  # Engine.intend: intent, action, done

    @classmethod
    def load(cls, journal: Journal, hub: Any, rollout_id: str, log: Callable[[str], None],
             record: Callable[..., int], intend: Callable[..., None]) -> RolloutContext:
        spec = journal.rollout(rollout_id).spec
        assignments = journal.assignments(rollout_id)
        by_wave: dict[int, list[Assignment]] = defaultdict(list)
        for a in assignments:
            by_wave[a.wave].append(a)
        if spec.get("switch_wave") is not None:  # pre-staged: the switch wave holds every device
            by_wave[int(spec["switch_wave"])] = list(assignments)
        variants = spec["variants"]
        return cls(journal, hub, rollout_id, spec, Policy.from_dict(spec["policy"]), Budget.from_dict(spec.get("budget")),
                   assignments, by_wave, {a.device_id: variants[a.variant]["digest"] for a in assignments},
                   journal.metered(rollout_id), log, record, intend)

    @property
    def tag(self) -> str:
        """The rollout's device tag (`rollout_<id>`); its value selects a deployment."""
        return str(self.spec["tag"])

    @property
    def switch_wave(self) -> int | None:
        """Index of the switch wave of a pre-staged rollout (None: not pre-staged)."""
        value = self.spec.get("switch_wave")
        return None if value is None else int(value)

    def started_waves(self) -> list[int]:
        return [w.idx for w in self.journal.waves(self.id) if w.started is not None]

    def told(self) -> dict[int, list[str]]:
        """Per wave, the devices target intents named (an intent naming no devices names its
        whole wave; an open intent is finished first); one journal read for every wave. What a
        rollback moves back: an abort while a wave is being told leaves the rest of it untold,
        and a device never told is never written to."""
        out: dict[int, list[str]] = {}
        for e in self.journal.events(self.id, "target"):
            if e.phase == "intent" and e.wave is not None:
                devices = e.data.get("devices")
                out.setdefault(e.wave, []).extend(
                    devices if isinstance(devices, list) else [a.device_id for a in self.by_wave[e.wave]])
        return {w: list(dict.fromkeys(ids)) for w, ids in out.items()}

    # --- deployments ---------------------------------------------------------------------
    def modules(self, image: str, version: str = "") -> dict[str, ModuleSpec]:
        """The release's modules: the managed one as it stands in force, image replaced; its
        siblings as the base deployment has them (a hub with layered deployments — Azure —
        writes the managed module only and leaves the siblings to their own deployments)."""
        module = self.spec["module"]
        base = {n: ModuleSpec(n, m["image"], m["create_options"], m.get("definition") or {})
                for n, m in self.spec["base_modules"].items()}
        managed = self.spec.get("managed") or {}
        options = managed.get("create_options", base[module].create_options if module in base else "")
        definition = managed.get("definition") or (base[module].definition if module in base else {})
        if version:  # a retry: edgeAgent (and our agents) recreate a module whose desired version changed
            definition = {**definition, "version": version}
        return {**base, module: ModuleSpec(module, image, options, definition)}

    def create(self, key: str, image: str, priority: int, version: str = "", condition: str = "") -> None:
        self.create_deployment(key, self.modules(image, version), priority, condition)

    def create_deployment(self, key: str, modules: dict[str, ModuleSpec], priority: int, condition: str = "") -> None:
        """`condition`: what it targets ("": the devices tagged with `key`)."""
        dep = Deployment(
            deployment_id(self.id, key), condition or target_condition(self.spec, key), priority, modules,
            labels={"rollout": self.id, "key": key, KIND: "rollback" if key.startswith("back") else "release",
                    GROUP: self.spec["group"]},
        )
        try:
            self.hub.create_deployment(dep)
        except Conflict:
            pass  # created before a restart: content is immutable, so it is the same one
