"""Folding an ended rollout into long-lived group deployments, so nothing piles up on the hub.

A rollout creates one deployment per variant (and per rollback image) and tags devices
`rollout_<id> = <key>`. An IoT Hub holds at most 100 configurations and a twin's tags 8 KB,
so when the rollout ends (succeeded, aborted, rolled back) the engine folds it:

1. every device carrying the rollout tag also gets `tags.fleetTuiImage = d-<digest12>` of
   the image its key deploys (both tags at once, so no evaluation sees neither);
2. for each such image the group has no *group deployment* yet, the rollout's own
   deployment for it becomes one: its target condition is changed (content is immutable;
   condition and labels are not) to `<group> AND tags.fleetTuiImage = 'd-…'`, labels
   `fleet-tui.kind = group`; devices matched it before by the rollout tag and match it now by
   the image tag, with the same content — their desired state does not change;
   (never a pre-stage deployment: it carries the stage module — `keep_apart`);
3. the rollout tag is removed from every device;
4. the rollout's other deployments are deleted, then every group deployment of the group
   whose image tag no device carries any more (one GROUP BY count).
So a group holds one deployment per image its devices run, whatever the number of rollouts.

Each step is idempotent (tags are merge-patched with fixed values, a converted deployment is
recognised by its labels, deletes ignore what is gone), so a fold interrupted by SIGKILL is
finished by the next engine from its journal intent. Devices' last states and bytes are kept
in the journal first (`finals`), since the tags the status reads are about to go.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any, Callable

from fleet_tui.errors import NotFound
from fleet_tui.hub.query_literal import group_condition, quote

IMAGE_TAG = "fleetTuiImage"
KIND = "fleet-tui.kind"
GROUP = "fleet-tui.group"
IMAGE = "fleet-tui.image"
SCOPE = "fleet-tui.scope"  # "condition": a group deployment a condition-wave rollout left (shard_fold.py)


def image_key(image: str, site_hosts: dict[str, str] | None = None) -> str:
    """`d-<12 hex of the digest>`: the tag value naming the image a group deployment deploys;
    `-<site>` after it for an image named through a site's cache (`site_hosts`: cache host →
    site), so devices elsewhere never get a deployment that pulls through another site's gateway."""
    key = "d-" + image.rsplit("@sha256:", 1)[-1][:12]
    host = image.split("/", 1)[0] if "/" in image else ""
    site = (site_hosts or {}).get(host, "")
    return f"{key}-{site}" if site else key


def site_hosts(spec: dict[str, Any]) -> dict[str, str]:
    """Cache host devices pull through → its site, for the rollout's sites with a cache."""
    return {str(e["ref_host"]): name for name, e in (spec.get("sites") or {}).items()
            if e.get("kind") == "distribution" and e.get("ref_host")}


def group_deployment_condition(group_tag: str, group: str, key: str) -> str:
    return f"{group_condition(group_tag, group)} AND tags.{IMAGE_TAG} = {quote(key)}"


def group_slug(group: str) -> str:
    return hashlib.sha256(group.encode()).hexdigest()[:10]


def fold(hub: Any, spec: dict[str, Any], rollout_id: str, tagged: dict[str, str], deployment_id: Callable[[str, str], str],
         log: Callable[[str], None]) -> None:
    """`tagged`: device id → the rollout tag value it carries now."""
    images = {key: v["image"] for key, v in spec["variants"].items()}
    images.update({key: image for image, key in spec["rollbacks"].items()})
    group, group_tag, tag = spec["group"], spec["group_tag"], spec["tag"]
    existing = {d.labels.get(IMAGE): d for d in hub.list_deployments()  # by image tag; not shard_fold's
                if d.labels.get(KIND) == "group" and d.labels.get(GROUP) == group and not d.labels.get(SCOPE)}
    by_key: dict[str, list[str]] = defaultdict(list)
    for device_id, key in tagged.items():
        if key in images:
            by_key[key].append(device_id)
    kept: set[str] = set()
    hosts = site_hosts(spec)
    for key, ids in sorted(by_key.items()):
        dkey = image_key(images[key], hosts)
        hub.bulk_update_tags(ids, {IMAGE_TAG: dkey})
        own = deployment_id(rollout_id, key)
        if key not in spec.get("keep_apart", ()) and (dkey not in existing or existing[dkey].id == own):
            labels = {KIND: "group", GROUP: group, IMAGE: dkey, "rollout": rollout_id}
            existing[dkey] = hub.update_deployment(
                own, target_condition=group_deployment_condition(group_tag, group, dkey), labels=labels)
            kept.add(own)
    if tagged:
        hub.bulk_update_tags(list(tagged), {tag: None})
    for key in sorted(images):
        own = deployment_id(rollout_id, key)
        if own not in kept and own not in {d.id for d in existing.values()}:
            delete_if_present(hub, own)
    in_use = hub.count_by_tag(group_condition(group_tag, group), IMAGE_TAG)
    for dkey, dep in sorted(existing.items()):
        if not in_use.get(dkey):
            delete_if_present(hub, dep.id)
    log(f"folded into {len([k for k in existing if in_use.get(k)])} group deployment(s); rollout tags removed")


def delete_if_present(hub: Any, deployment_id: str) -> None:
    try:
        hub.delete_deployment(deployment_id)
    except NotFound:
        pass  # already gone (a fold finished after a restart)
