#!/usr/bin/env bash
# Create .venv and install gatewatch into it with the pinned dependencies: `bootstrap-venv.sh [EXTRAS]`
# (e.g. "test"). Works on a fresh Debian machine: the system Python may lack venv/pip (Debian splits
# them out) and refuses pip installs outside a virtual environment (PEP 668), so uv is installed
# into the venv itself rather than system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

python=$(command -v python3.11 || command -v python3 || true)
if [ -z "$python" ]; then
  echo "bootstrap-venv.sh: no python3 found (gatewatch needs Python >= 3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends python3-venv python3-pip >/dev/null
      "$python" -m venv .venv
    else
      echo "bootstrap-venv.sh: '$python -m venv' failed; install python3-venv (as root: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi
if [ -x .venv/bin/uv ]; then
  uv=.venv/bin/uv
elif command -v uv >/dev/null 2>&1; then
  uv=uv
else
  .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip -q
  .venv/bin/python -m pip install -q uv
  uv=.venv/bin/uv
fi
spec="."
[ -z "$extras" ] || spec=".[${extras}]"
VIRTUAL_ENV="$PWD/.venv" "$uv" pip install -q -e "$spec"
