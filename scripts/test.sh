#!/usr/bin/env bash
# Run the whole test suite: installs the real parts the tests use (Debian docker-registry,
# docker.io, busybox-static, tmux, skopeo) when missing, installs the package with its test extras
# into a virtual environment, then runs pytest. Tests fail loudly if a real part cannot start.
#
# The environment: the active virtualenv ($VIRTUAL_ENV) when there is one; otherwise a
# fresh one, created here in .venv-test, so that only what pyproject.toml declares is
# importable (an undeclared import fails the run instead of passing on the machine's Python).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)  # the team journal tests
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -z "${VIRTUAL_ENV:-}" ]; then
  echo "creating a fresh virtual environment in .venv-test"
  rm -rf .venv-test
  python3 -m venv .venv-test
  # shellcheck disable=SC1091
  . .venv-test/bin/activate
fi
python -m pip install -q -e ".[test]" 2>&1 | grep -v -e "^WARNING: Running pip as" -e "Location 'file:" || true
exec python -m pytest -q -p no:cacheprovider "$@"
