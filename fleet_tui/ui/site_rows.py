"""The rollout screen's sites: one row per site — its cache (warming, ready, halted and why),
the warm-up's items, uplink bytes against the plan and their cost, devices running, LAN bytes.
Shown only for a rollout with sites; a halted site's reason is its row's last cell."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from fleet_tui.rollout.site_progress import SiteProgress
from fleet_tui.ui.formatting import size, state_style

STYLE = {"ready": "running", "warming": "downloading", "waiting": "pending", "halted": "failed"}


def site_cell(p: SiteProgress) -> Text:
    label = {"ready": "warm", "warming": "warming", "waiting": "waiting", "halted": "HALTED"}.get(p.state, p.state)
    return Text(label, state_style(STYLE.get(p.state, p.state)))


def sites_table(sites: tuple[SiteProgress, ...], currency: str = "$") -> Table:
    table = Table(box=None, pad_edge=False, expand=True)
    table.add_column("SITE", no_wrap=True, overflow="ellipsis", max_width=16)
    for head in ("CACHE", "ITEMS", "UPLINK", "COST", "DEVICES", "LAN"):  # figures are never cut
        table.add_column(head, no_wrap=True, min_width=len(head))
    table.add_column("", ratio=1, no_wrap=True, overflow="ellipsis")  # a halted site's reason: what is left
    for p in sites:
        uplink = f"{size(p.uplink_bytes)} of {size(p.uplink_planned)}" if p.kind != "none" else "per device"
        table.add_row(p.site, site_cell(p), f"{p.items_done}/{p.items}", uplink, f"{currency}{p.uplink_cost:,.2f}",
                      f"{p.running}/{p.devices}", size(p.lan_bytes),
                      Text(p.reason, "red"), end_section=False)
    return table
