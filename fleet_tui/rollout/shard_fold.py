"""Folding a condition-wave rollout (shard_waves.py) without a device write.

Its devices carry no rollout tag (but the few a retry re-tagged), so the fold works on the
deployments alone:

- succeeded: the release deployment (wave 1's) becomes the group's own — its condition the
  whole group, labels `fleet-tui.kind = group` — and every other fleet-tui deployment of the
  group (the later waves' deployments of the same content and priority, older group
  deployments, leftovers of aborted rollouts, this rollout's retries) is deleted: none is above
  the release, so no device's desired state changes;
- aborted: the release takes the condition of every wave told and becomes a group deployment
  scoped to it (`fleet-tui.scope = condition`), the later waves' deployments go; the devices
  it never reached stay under the group deployment they had. Nothing any device runs changes
  (ending.py);
- rolled back: the rollback deployment (the previous image over the told waves' condition, one
  priority above the release) becomes that scoped group deployment and the release goes;
- retried devices lose their rollout tag (one job), as by-tag folds do for every device.

Idempotent like fold.py: conditions and labels are set to fixed values and deletes ignore
what is gone, so a fold interrupted by SIGKILL is finished from its journal intent.
"""

from __future__ import annotations

from typing import Any, Callable

from fleet_tui.hub.query_literal import group_condition
from fleet_tui.rollout.create import deployment_id
from fleet_tui.rollout.fold import GROUP, IMAGE, KIND, SCOPE, delete_if_present, image_key
from fleet_tui.rollout.shard_waves import wave_condition, wave_key


def fold_by_condition(hub: Any, spec: dict[str, Any], rollout_id: str, state: str, reached: int | None,
                      tagged: dict[str, str], log: Callable[[str], None]) -> None:
    """`state`: the ended rollout's; `reached`: the last wave told (None: none — an abort
    before wave 1 leaves nothing to keep); `tagged`: devices still carrying the rollout tag (retries)."""
    group, group_tag = spec["group"], spec["group_tag"]
    image_of = {deployment_id(rollout_id, k): v["image"] for k, v in spec["variants"].items()}  # all of ours
    image_of.update({deployment_id(rollout_id, wave_key(v, k)): spec["variants"][v]["image"]
                     for v in spec["used_variants"] for k in range(len(spec["shard_cuts"]))})
    image_of.update({deployment_id(rollout_id, k): image for image, k in spec["rollbacks"].items()})
    present = {d.id: d for d in hub.list_deployments()}
    if state == "rolled_back":
        chosen = [deployment_id(rollout_id, k) for k in spec["rollbacks"].values()]
    else:
        reached_any = state == "succeeded" or reached is not None
        chosen = [deployment_id(rollout_id, k) for k in spec["used_variants"]] if reached_any else []
    keep = {d: image_of[d] for d in chosen if d in present}  # deployment id → image it deploys
    # a partial rollout succeeds short of the group: the devices it never told keep what they run
    whole = state == "succeeded" and not (spec.get("policy") or {}).get("partial")
    for dep_id, image in sorted(keep.items()):
        labels = {KIND: "group", GROUP: group, IMAGE: image_key(image), "rollout": rollout_id}
        if whole:
            hub.update_deployment(dep_id, target_condition=group_condition(group_tag, group), labels=labels)
        elif reached is not None:  # the release (wave 1's) now covers every wave told, the later ones go
            hub.update_deployment(dep_id, target_condition=wave_condition(spec, reached),
                                  labels={**labels, SCOPE: "condition"})
    if tagged:
        hub.bulk_update_tags(list(tagged), {spec["tag"]: None})
    gone = [d for d in image_of if d not in keep]
    if whole and keep:  # the group's own now: everything older of the group goes
        gone += [d.id for d in present.values() if d.labels.get(GROUP) == group and d.id not in image_of
                 and d.labels.get(KIND) in ("group", "release", "rollback")]
    for dep_id in gone:
        if dep_id in present:
            delete_if_present(hub, dep_id)
    log(f"folded without device writes: {len(keep)} group deployment(s) kept, {len(gone)} deleted")
