"""Pre-staged rollouts: download ahead wave by wave, then switch every staged device at once.

A mixin of `Engine`, with the pieces `create_rollout` and the snapshot share. The device
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

from typing import Any, Callable

from fleet_tui.hub.protocol import ModuleSpec, stage_module
from fleet_tui.rollout.gate import read_devices


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
    journal: Any
    hub: Any
    id: str
    spec: dict[str, Any]
    assignments: list[Any]
    by_wave: dict[int, list[Any]]
    expected: dict[str, str]
    log: Callable[[str], None]
    _modules: Callable[..., dict[str, ModuleSpec]]
    _create_deployment: Callable[[str, dict[str, ModuleSpec], int], None]

    @property
    def switch_wave(self) -> int | None:
        """Index of the switch wave of a pre-staged rollout (None: not pre-staged)."""
        value = self.spec.get("switch_wave")
        return None if value is None else int(value)

    def staging(self, wave: int) -> bool:
        return self.switch_wave is not None and wave < self.switch_wave

    def tag_value(self, device_id: str, wave: int, variant: str, prev_image: str) -> str:
        if not self.staging(wave):
            return variant
        return stage_key(self.spec["stage_index"][prev_image], variant)

    def gate_module(self, wave: int) -> tuple[str, str]:
        """(module whose reports judge this wave, the state that counts as done)."""
        if self.staging(wave):
            return stage_module(self.spec["module"]), "stopped"
        return self.spec["module"], "running"

    def create_stage_deployments(self) -> None:
        keys: dict[str, tuple[str, str]] = {}
        for a in self.assignments:
            keys[stage_key(self.spec["stage_index"][a.prev_image], a.variant)] = (a.prev_image, a.variant)
        module = self.spec["module"]
        for key, (current, variant) in sorted(keys.items()):
            modules = self._modules(current or self.spec["base_modules"].get(module, {}).get("image", ""))
            stage = stage_spec(module, self.spec["variants"][variant]["image"])
            self._create_deployment(key, {**modules, stage.name: stage}, self.spec["priority"])

    def keep_staged_bytes(self) -> None:
        """Before the switch: what each device downloaded while staging (its stage report goes).
        Run again after a crash before the switch started, it writes the same reports again."""
        views = read_devices(self.hub, self.id, stage_module(self.spec["module"]), [a.device_id for a in self.assignments])
        self.journal.set_staged_bytes(self.id, {d: v.bytes for d, v in views.items()})

    def stage_images(self) -> dict[str, dict[str, Any]]:
        """Stage key → the image its devices run meanwhile (the fold pins them by it)."""
        module = self.spec["module"]
        out = {}
        for a in self.assignments:
            current = a.prev_image or self.spec["base_modules"].get(module, {}).get("image", "")
            out[stage_key(self.spec["stage_index"][a.prev_image], a.variant)] = {"image": current}
        return out
