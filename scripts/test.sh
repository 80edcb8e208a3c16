#!/usr/bin/env bash
# gatewatch's test command: installs what the tests need on a fresh Debian machine (as root, or
# with sudo), then runs the static checks and the whole test suite. .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

# Real Prometheus, Alertmanager (promtool, amtool), headless Chromium and the tools below, from Debian's packages.
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# ssh-keygen signs evidence bundles; unshare gives the docs test a private network namespace.
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python dependencies, pinned in pyproject.toml, into .venv.
bash scripts/bootstrap-venv.sh test

echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
# Most tests wait on real processes (simulator, exporter, Prometheus) rather than compute, so three
# workers fit two cores; --dist loadfile keeps a file's module fixtures (a rehearsal) in one worker.
echo "== pytest"; .venv/bin/pytest -n "${GATEWATCH_TEST_WORKERS:-3}" --dist loadfile "$@"
