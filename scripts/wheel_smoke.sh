#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtual environment outside the source tree and
# run the demo headless from it: proves the package carries everything `fleet-tui demo`
# needs (no file of the checkout is reachable from where it runs).
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/fleet-tui-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/build-venv"
"$work/build-venv/bin/python" -m pip install -q build 2>&1 | grep -v -e "^WARNING" || true
"$work/build-venv/bin/python" -m build --wheel --outdir "$work/dist" "$src" >/dev/null
wheel="$(ls "$work"/dist/fleet_tui-*.whl)"
echo "built $(basename "$wheel")"

python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel" 2>&1 | grep -v -e "^WARNING" || true
cd "$work"  # not the checkout: only the installed wheel can be imported
export XDG_STATE_HOME="$work/state" XDG_CONFIG_HOME="$work/config"
"$work/venv/bin/python" -c 'import fleet_tui, sys; assert "site-packages" in fleet_tui.__file__, fleet_tui.__file__'
"$work/venv/bin/fleet-tui" demo --no-console --devices 24 --speed 20 --dir "$work/demo" --json > "$work/demo.json"
cfg="$work/demo/demo.toml"
"$work/venv/bin/fleet-tui" -c "$cfg" groups
"$work/venv/bin/fleet-tui" -c "$cfg" layers "oci:$work/demo/store:2" >/dev/null
"$work/venv/bin/python" -m fleet_tui -c "$cfg" sim down
"$work/venv/bin/fleet-tui" completion bash | grep -q _python_argcomplete
echo "wheel smoke: demo ran from the installed wheel"
