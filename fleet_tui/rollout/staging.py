"""Pre-staged rollouts: download ahead wave by wave, then switch every staged device at once.

A part of `Engine` (`engine.staging`), with the pieces `create_rollout` and the snapshot
share as module functions; the engine's wave tagging asks it which key a device is tagged
with and which module judges a wave. The device
side follows edgeAgent (docs/azure.md cites its source): a new module whose desired status
is `stopped` has its image pulled and its container created, never started. So:

- phase 1, the stage waves (the policy's waves, paced as any): each device is tagged with a
  stage key `s<i>_<variant>` whose deployment keeps the managed module on the image the
  device runs now (`i` indexes those images) and adds `<module>-stage`, desired `stopped`,
  on the variant's image. A stage wave's gate counts devices whose stage module reports
  `stopped` on that digest;
- phase 2, the switch wave (one more wave, every device of the rollout): the devices are
  tagged with their variant key at once (no rate: the bytes are already on the devices);
  the stage module leaves the desired state, the managed module switches to the image it
  holds, so the switch moves no layer bytes. Its gate is the usual one;
- what each device downloaded while staging is kept in the journal when the switch starts
  (its stage module's report disappears with the module).

The local hub and simulated devices, and Azure IoT Hub, support it: on Azure each stage key is a
layered deployment writing the managed module (unchanged) and the stage module; when the
switch re-tags a device, that layer stops applying and edgeAgent removes the stage module
while the managed module moves onto the image the device already holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleet_tui.hub.protocol import ModuleSpec, stage_module
from fleet_tui.rollout.gate import read_devices

if TYPE_CHECKING:  # context.py imports create.py, which imports stage_index from here
    from fleet_tui.rollout.context import RolloutContext


def stage_index(prev_images: Any) -> dict[str, int]:
    """Image a device runs now → its index in stage keys (sorted, "" = unknown)."""
    return {image: i for i, image in enumerate(sorted(set(prev_images)))}


def stage_spec(module: str, image: str) -> ModuleSpec:
    """The stage module: the target image, desired `stopped` (pulled and created, never
    started), complete as edgeAgent wants a module (type, version)."""
    return ModuleSpec(stage_module(module), image, "",
                      {"version": "1.0", "type": "docker", "status": "stopped", "restartPolicy": "never"})


def stage_key(index: int, variant: str) -> str:
    return f"s{index}_{variant}"


class Staging:
    def __init__(self, ctx: RolloutContext) -> None:
        self.ctx = ctx

    @property
    def switch_wave(self) -> int | None:
        return self.ctx.switch_wave

    def is_stage_wave(self, wave: int) -> bool:
        """A wave of phase 1 (downloads only), before the switch wave."""
        return self.ctx.switch_wave is not None and wave < self.ctx.switch_wave

    def tag_value(self, device_id: str, wave: int, variant: str, prev_image: str) -> str:
        if not self.is_stage_wave(wave):
            return variant
        return stage_key(self.ctx.spec["stage_index"][prev_image], variant)

    def gate_module(self, wave: int) -> tuple[str, str]:
        """(module whose reports judge this wave, the state that counts as done)."""
        if self.is_stage_wave(wave):
            return stage_module(self.ctx.spec["module"]), "stopped"
        return self.ctx.spec["module"], "running"

    def create_stage_deployments(self) -> None:
        ctx, spec = self.ctx, self.ctx.spec
        keys: dict[str, tuple[str, str]] = {}
        for a in ctx.assignments:
            keys[stage_key(spec["stage_index"][a.prev_image], a.variant)] = (a.prev_image, a.variant)
        module = spec["module"]
        for key, (current, variant) in sorted(keys.items()):
            modules = ctx.modules(current or spec["base_modules"].get(module, {}).get("image", ""))
            stage = stage_spec(module, spec["variants"][variant]["image"])
            ctx.create_deployment(key, {**modules, stage.name: stage}, spec["priority"])

    def keep_staged_bytes(self) -> None:
        """Before the switch: what each device downloaded while staging (its stage report goes).
        Run again after a crash before the switch started, it writes the same reports again."""
        ctx = self.ctx
        views = read_devices(ctx.hub, ctx.id, stage_module(ctx.spec["module"]), [a.device_id for a in ctx.assignments])
        ctx.journal.set_staged_bytes(ctx.id, {d: v.bytes for d, v in views.items()})

    def stage_images(self) -> dict[str, dict[str, Any]]:
        """Stage key → the image its devices run meanwhile (the fold pins them by it)."""
        spec = self.ctx.spec
        module = spec["module"]
        out = {}
        for a in self.ctx.assignments:
            current = a.prev_image or spec["base_modules"].get(module, {}).get("image", "")
            out[stage_key(spec["stage_index"][a.prev_image], a.variant)] = {"image": current}
        return out
