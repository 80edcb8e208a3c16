#!/usr/bin/env bash
# Bring gatewatch up: `docker compose up -d` where a Docker engine answers, otherwise the same stack
# natively (`gatewatch stack`: simulator, exporter, Prometheus, Alertmanager; no Grafana).
# Arguments are passed to `gatewatch stack` in the native case (e.g. --duration 600).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  if [ ! -f .env ]; then
    # First run: a working .env from the example, with a fresh Grafana admin password (compose
    # refuses a Grafana without one) and an empty SMTP password file. Alert e-mails go nowhere
    # until the GATEWATCH_SMTP_* values in .env are real ones.
    password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
    sed "s|^GF_SECURITY_ADMIN_PASSWORD=.*|GF_SECURITY_ADMIN_PASSWORD=${password}|" .env.example > .env
    chmod 600 .env
    mkdir -p secrets && chmod 700 secrets
    grep -o '^[A-Z_]*_FILE=\./secrets/[a-z_]*' .env | cut -d= -f2 | while read -r file; do
      # Empty placeholders, readable by the containers' own users; put real secrets in with chmod 640.
      [ -e "$file" ] || install -m 644 /dev/null "$file"
    done
    echo "== created .env from .env.example; Grafana: user admin, password ${password}"
    echo "   (edit .env for real alert e-mail settings, then: docker compose up -d)"
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
[ -x .venv/bin/gatewatch ] || bash scripts/bootstrap-venv.sh

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
