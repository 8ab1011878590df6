#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs the real parts the tests use
# (Debian docker-registry, docker.io, busybox-static, tmux) when missing, installs the package with
# its test extras, then runs pytest. Tests fail loudly if a real part cannot start.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python3 -m pip install -q -e ".[test]" 2>&1 | grep -v -e "^WARNING: Running pip as" -e "Location 'file:" || true
exec python3 -m pytest -q -p no:cacheprovider "$@"
