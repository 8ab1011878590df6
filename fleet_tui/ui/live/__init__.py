"""The parts of `LiveConsoleData` (fleet_tui.ui.live_data), one per job: the fleet's groups
and devices, the registry's images, previews and rebases, rollouts. Each part reads the
shared plumbing (hub, journal, image names) through the `LiveConsoleData` that owns it."""
