"""Folding a condition-wave rollout (rollout/shard_fold.fold_by_condition) without device
writes: a whole rollout becomes the group's deployment; a partial one, an abort or a rollback
keeps a condition over the waves it told, so devices it never told keep what they run."""

from __future__ import annotations

from fleet_tui.hub.protocol import Deployment, ModuleSpec
from fleet_tui.rollout.shard_fold import fold_by_condition
from fleet_tui.rollout.shard_waves import wave_condition

OLD = "acr.io/scoring@sha256:" + "a" * 64
NEW = "acr.io/scoring@sha256:" + "b" * 64
GROUP = "tags.fleetGroup = 'vans'"


class Hub:
    """Deployments in a dict; device writes recorded (there must be none)."""

    def __init__(self, deployments: list[Deployment]) -> None:
        self.deployments = {d.id: d for d in deployments}
        self.device_writes: list = []

    def list_deployments(self) -> list[Deployment]:
        return list(self.deployments.values())

    def update_deployment(self, deployment_id: str, *, target_condition=None, labels=None, priority=None):
        d = self.deployments[deployment_id]
        self.deployments[deployment_id] = Deployment(d.id, target_condition or d.target_condition, d.priority,
                                                     d.modules, labels or d.labels)

    def delete_deployment(self, deployment_id: str) -> None:
        del self.deployments[deployment_id]

    def bulk_update_tags(self, ids, tags) -> int:
        self.device_writes.append((ids, tags))
        return len(ids)


def _spec(partial: bool = False) -> dict:
    return {"group": "vans", "group_tag": "fleetGroup", "shard_tag": "fleetShard", "tag": "rollout_r1",
            "canary": ["van-7"], "shard_cuts": [0, 10, 50, 100], "used_variants": ["full"],
            "variants": {"full": {"image": NEW}}, "rollbacks": {}, "policy": {"partial": partial}}


def _hub() -> Hub:
    mod = {"scoring": ModuleSpec("scoring", NEW)}
    return Hub([
        Deployment("base-vans", GROUP, 1, {"scoring": ModuleSpec("scoring", OLD)},
                   {"fleet-tui.kind": "group", "fleet-tui.group": "vans"}),
        Deployment("rollout-r1-full", wave_condition(_spec(), 0), 2, mod, {"fleet-tui.group": "vans"}),
        Deployment("rollout-r1-full-w1", "w1", 2, mod, {"fleet-tui.group": "vans"}),
        Deployment("rollout-r1-full-w2", "w2", 2, mod, {"fleet-tui.group": "vans"}),
    ])


def test_a_whole_rollout_becomes_the_groups_deployment_and_the_old_one_goes():
    hub = _hub()
    fold_by_condition(hub, _spec(), "r1", "succeeded", 3, {}, lambda line: None)
    assert set(hub.deployments) == {"rollout-r1-full"} and not hub.device_writes
    assert hub.deployments["rollout-r1-full"].target_condition == GROUP


def test_a_partial_rollout_keeps_its_condition_and_the_group_deployment_for_the_rest():
    hub = _hub()
    fold_by_condition(hub, _spec(partial=True), "r1", "succeeded", 2, {}, lambda line: None)
    assert set(hub.deployments) == {"base-vans", "rollout-r1-full"} and not hub.device_writes
    kept = hub.deployments["rollout-r1-full"]
    assert kept.target_condition == wave_condition(_spec(), 2) != GROUP
    assert kept.labels.get("fleet-tui.scope") == "condition"
