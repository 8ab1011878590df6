"""Rebase and delta images at registry level; verify merged filesystems.

Public API: `prepare_rebase` / `preview_rebase` / `rebase` (engine.py), `verify_images`
(verify.py). Domain code: never imports Textual.
"""

from fleet_tui.rebase.engine import (
           MIN_SAVING,
           RebasePlan,
           RebaseResult,
           prepare_rebase,
           preview_rebase,
           rebase,
)
from fleet_tui.rebase.verify import VerifyResult, verify_images

__all__ = ["MIN_SAVING", "RebasePlan", "RebaseResult", "prepare_rebase", "preview_rebase", "rebase",
           "VerifyResult", "verify_images"]
