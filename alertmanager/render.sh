#!/bin/sh
# Render alertmanager.yml from alertmanager.yml.tmpl and the environment.
#
# Why a script: Alertmanager does not expand environment variables, and the SMTP server, sender
# and recipient differ per installation. POSIX sh + awk only, so the same step runs inside the
# busybox-based Alertmanager image (compose entrypoint) and on the host (native stack, tests).
# The password is never rendered: Alertmanager reads it from GATEWATCH_SMTP_PASSWORD_FILE.
#
# Usage: render.sh OUTPUT_FILE        (exit 2 with the variable named when one is missing or bad)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
template="${GATEWATCH_ALERTMANAGER_TEMPLATE:-$here/alertmanager.yml.tmpl}"
output="${1:-}"

fail() { echo "alertmanager/render.sh: $*" >&2; exit 2; }

[ -n "$output" ] || fail "usage: render.sh OUTPUT_FILE"
[ -r "$template" ] || fail "GATEWATCH_ALERTMANAGER_TEMPLATE: cannot read $template"

for name in GATEWATCH_SMTP_SMARTHOST GATEWATCH_ALERT_EMAIL_FROM GATEWATCH_ALERT_EMAIL_TO; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || fail "$name is not set (required)"
done

case "$GATEWATCH_SMTP_SMARTHOST" in
  *:[0-9]*) ;;
  *) fail "GATEWATCH_SMTP_SMARTHOST: expected host:port, got '$GATEWATCH_SMTP_SMARTHOST'" ;;
esac
case "$GATEWATCH_ALERT_EMAIL_FROM" in
  *@*) ;;
  *) fail "GATEWATCH_ALERT_EMAIL_FROM: expected an e-mail address, got '$GATEWATCH_ALERT_EMAIL_FROM'" ;;
esac
case "$GATEWATCH_ALERT_EMAIL_TO" in
  *@*) ;;
  *) fail "GATEWATCH_ALERT_EMAIL_TO: expected an e-mail address, got '$GATEWATCH_ALERT_EMAIL_TO'" ;;
esac

GATEWATCH_SMTP_USERNAME="${GATEWATCH_SMTP_USERNAME:-}"
GATEWATCH_SMTP_PASSWORD_FILE="${GATEWATCH_SMTP_PASSWORD_FILE:-/run/secrets/smtp_password}"
GATEWATCH_SMTP_REQUIRE_TLS="${GATEWATCH_SMTP_REQUIRE_TLS:-true}"
GATEWATCH_ALERTMANAGER_TEMPLATES="${GATEWATCH_ALERTMANAGER_TEMPLATES:-$here/templates}"
case "$GATEWATCH_SMTP_REQUIRE_TLS" in
  true|false) ;;
  *) fail "GATEWATCH_SMTP_REQUIRE_TLS: expected true or false, got '$GATEWATCH_SMTP_REQUIRE_TLS'" ;;
esac
export GATEWATCH_SMTP_USERNAME GATEWATCH_SMTP_PASSWORD_FILE GATEWATCH_SMTP_REQUIRE_TLS \
  GATEWATCH_ALERTMANAGER_TEMPLATES

# Replace @@NAME@@ with ENVIRON[NAME] literally (index/substr, no regex), doubling single quotes
# because every placeholder sits inside a single-quoted YAML string.
tmp="$output.tmp.$$"
awk '
{
  line = $0; out = ""
  while ((start = index(line, "@@")) > 0) {
    rest = substr(line, start + 2)
    stop = index(rest, "@@")
    if (stop == 0) break
    name = substr(rest, 1, stop - 1)
    if (name !~ /^GATEWATCH_[A-Z_]+$/) { out = out substr(line, 1, start + 1); line = rest; continue }
    value = ENVIRON[name]
    gsub(/\047/, "\047\047", value)
    out = out substr(line, 1, start - 1) value
    line = substr(rest, stop + 2)
  }
  print out line
}' "$template" > "$tmp"
mv "$tmp" "$output"
echo "alertmanager/render.sh: wrote $output (SMTP $GATEWATCH_SMTP_SMARTHOST, to $GATEWATCH_ALERT_EMAIL_TO)" >&2
