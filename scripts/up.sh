#!/usr/bin/env bash
# Bring gatewatch up: `docker compose up -d` where a Docker engine answers, otherwise the same stack
# natively (`gatewatch stack`: simulator, exporter, Prometheus, Alertmanager; no Grafana).
# Arguments are passed to `gatewatch stack` in the native case (e.g. --duration 600).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  if [ ! -f .env ]; then
    echo "scripts/up.sh: no .env: copy .env.example to .env and set GF_SECURITY_ADMIN_PASSWORD and the" \
         "GATEWATCH_SMTP_* values first" >&2
    exit 2
  fi
  echo "== Docker engine found: docker compose up -d"
  exec docker compose up -d --build
fi

echo "== no Docker engine answers: running the stack natively"

# Prometheus and Alertmanager from Debian's packages, when we may install them.
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "scripts/up.sh: ${missing[*]} missing and not root: the stack runs without them" >&2
  fi
fi

# Python dependencies, pinned in pyproject.toml, into .venv (as scripts/test.sh does).
if [ ! -x .venv/bin/gatewatch ]; then
  command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv
  [ -x .venv/bin/python ] || uv venv -q .venv -p python3.11
  VIRTUAL_ENV="$PWD/.venv" uv pip install -q -e .
fi

# The stack takes the alert e-mail settings from the environment, as compose takes them from .env.
if [ -f .env ]; then
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
fi
# The compose spellings of the Gateway address mean the same things natively.
case "${GATEWATCH_GATEWAY:-}" in
  simulator:*) unset GATEWATCH_GATEWAY ;;   # the stack starts its own simulator
  host.docker.internal:*) export GATEWATCH_GATEWAY="127.0.0.1:${GATEWATCH_GATEWAY#*:}" ;;
esac
exec .venv/bin/gatewatch stack "$@"
