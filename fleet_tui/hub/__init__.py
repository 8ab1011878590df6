"""Fleet hubs behind one `FleetHub` protocol: the embedded local hub (default) and Azure
IoT Hub. `open_hub(config)` picks one from `config.hub.kind`; the Azure SDK is imported
only when the config asks for Azure, so the local path never pays for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleet_tui.hub.local import LocalHub

if TYPE_CHECKING:
    from fleet_tui.config import Config
    from fleet_tui.hub.protocol import FleetHub


def open_hub(config: "Config") -> "FleetHub":
    """The hub the config names: `LocalHub` at `hub.path` (default: the state dir), or
    `AzureHub` for kind "azure" (connection string from the env var the config names)."""
    if config.hub.kind == "azure":
        from fleet_tui.hub.azure import AzureHub

        return AzureHub.from_config(config)

    return LocalHub.from_config(config)
