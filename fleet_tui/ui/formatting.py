"""Text helpers the screens share: short digests and refs, ages, the saving line and text
progress bars, with sizes, money and durations as fleet_tui.units formats them everywhere.
Pure functions (no Textual), so tests can pin their output."""

from __future__ import annotations

from fleet_tui.units import clock as duration
from fleet_tui.units import money, size

__all__ = ["size", "money", "short_digest", "short_ref", "named", "age", "saving_line", "bar", "duration"]


def short_digest(digest: str) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "-"


def short_ref(ref: str) -> str:
    """`host:5000/ml/scoring:2` → `ml/scoring:2`; `oci:/x/store:v1` → `store:v1`;
    pinned refs keep 12 hex digits: `oci:/x/store@sha256:6c6c…` → `store@6c6c8450ef32`."""
    if not ref:
        return "-"
    if ref.startswith("oci:"):
        rest = ref[4:]
        if "@" in rest:
            path, _, digest = rest.partition("@")
            return f"{path.rstrip('/').rsplit('/', 1)[-1]}@{short_digest(digest)}"
        path, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
        return f"{path.rstrip('/').rsplit('/', 1)[-1]}:{tag}" if tag else rest.rsplit("/", 1)[-1]
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        ref = rest
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return f"{name}@{short_digest(digest)}"
    return ref


def named(name: str, digest: str) -> str:
    """An image as `name digest12`, the digest once: left out when the name shows it already
    (a pinned ref, or a name that is the digest itself)."""
    short = short_digest(digest)
    return name if not digest or short in name else f"{name} {short}"


def age(ts: float, now: float) -> str:
    if not ts:
        return "never"
    secs = max(0, int(now - ts))
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= n:
            return f"{secs // n}{unit} ago"
    return f"{secs}s ago"


def saving_line(naive_per_device: int, rebased_per_device: int, devices: int, per_gb: float,
                currency: str = "$", naive_total: int | None = None, rebased_total: int | None = None) -> str:
    """"81.5 MB → 7.9 KB per device, $58,700 → $5.70 for 1,000 devices". Totals default to
    per device × devices; pass the real ones when devices differ in what they hold."""
    noun = "device" if devices == 1 else "devices"
    naive_total = naive_per_device * devices if naive_total is None else naive_total
    rebased_total = rebased_per_device * devices if rebased_total is None else rebased_total
    return (
        f"{size(naive_per_device)} → {size(rebased_per_device)} per device, "
        f"{money(naive_total, per_gb, currency)} → {money(rebased_total, per_gb, currency)} for {devices:,} {noun}"
    )


def bar(done: int, total: int, width: int = 10) -> str:
    """A text progress bar readable without colour: `██████░░░░  61%`."""
    frac = 0.0 if total <= 0 else min(1.0, done / total)
    full = int(frac * width)
    return "█" * full + "░" * (width - full) + f" {int(frac * 100):3d}%"


# Rich styles for states in free text (tables take theirs from app.tcss component classes).
STATE_STYLE = {
    "running": "green", "succeeded": "green", "downloading": "cyan", "applying": "cyan",
    "pending": "dim", "paused": "yellow", "halted": "bold red", "failed": "bold red",
    "offline": "bright_black", "rolled_back": "magenta", "aborted": "magenta", "untouched": "dim",
}


def state_style(state: str) -> str:
    return STATE_STYLE.get(state, "")
