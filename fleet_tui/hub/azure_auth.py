"""Credentials and operator content for Azure IoT Hub.

- Azure AD (`[hub] auth = "azure-ad"`): an azure-identity credential — `DefaultAzureCredential`
  (environment, workload identity, managed identity, Azure CLI … in that order) or one named by
  `[hub] credential`. The identity needs a data-plane role on the hub: *IoT Hub Data
  Contributor* (twins, jobs and configurations; the narrower *Twin* and *Registry* roles do
  not cover configurations), or *IoT Hub Data Reader* for a read-only console. Tokens are
  requested for `https://iothubs.azure.net/.default` by the SDK.
- `[hub] base_manifest`: the operator's own deployment manifest (JSON with `modulesContent`),
  used as the content of base deployments fleet-tui writes.
- `[hub] registry_credentials = "pull-token"`: opt-in — the `[registry.auth]` token of each
  registry the deployment pulls from is resolved from its reference and written into the base
  content, because IoT Edge reads credentials only from there (in clear, on every targeted
  twin: use a pull-only token). The value is registered as a secret, so it is masked in every
  log line and error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from fleet_tui.config import HubConfig, RegistryAuth
from fleet_tui.errors import UsageError
from fleet_tui.hub.azure_edge import registry_host
from fleet_tui.hub.protocol import Deployment

CREDENTIALS = ("default", "environment", "managed-identity", "azure-cli", "workload-identity")


def credential_for(hub: HubConfig) -> Any:
    try:
        import azure.identity as identity
    except ImportError:  # pragma: no cover - azure-identity is a declared dependency
        raise UsageError("hub.auth = \"azure-ad\" needs the azure-identity package: pip install azure-identity") from None
    kinds = {
        "default": identity.DefaultAzureCredential, "environment": identity.EnvironmentCredential,
        "managed-identity": identity.ManagedIdentityCredential, "azure-cli": identity.AzureCliCredential,
        "workload-identity": identity.WorkloadIdentityCredential,
    }
    return kinds[hub.credential]()


def base_manifest(hub: HubConfig) -> dict[str, Any] | None:
    if not hub.base_manifest:
        return None
    path = Path(hub.base_manifest).expanduser()
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"hub.base_manifest {path} cannot be read as JSON ({type(exc).__name__}); give a deployment "
                         "manifest with modulesContent") from None
    content = doc.get("modulesContent") or (doc.get("content") or {}).get("modulesContent")
    if not isinstance(content, dict) or "$edgeAgent" not in content:
        raise UsageError(f"hub.base_manifest {path} has no modulesContent.$edgeAgent; give a full deployment manifest")
    return content


def resolved_credentials(deployment: Deployment, auth: Mapping[str, RegistryAuth]) -> dict[str, Any]:
    creds: dict[str, Any] = {}
    for host in sorted({registry_host(m.image) for m in deployment.modules.values()}):
        entry = auth.get(host)
        if entry is None:
            continue
        secret = entry.password_ref().resolve(f"registry {host}")
        alias = "".join(c for c in host if c.isalnum())
        creds[alias] = {"username": entry.username, "password": secret.reveal(), "address": host}
    return creds
