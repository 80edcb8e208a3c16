#!/bin/bash
# Entry point of compose's optional IB Gateway container (ghcr.io/gnzsnz/ib-gateway, profile ibgateway).
#
# Why: gatewatch's reconciliation sees the fills of every API client (the bot's, a hand trade's
# executions) only when the exporter is the Gateway's Master API client. The exporter's client id is
# gateway.client_id in config/gatewatch.yaml, so the Gateway takes its Master API client id from that
# same line rather than from a second copy that could drift. The image's IBC configuration reads it
# from TWS_MASTER_CLIENT_ID (OverrideTwsMasterClientID in IBC's config.ini).
# A config without a readable gateway.client_id stops the container with the reason: a Gateway
# without the right master client would make reconciliation blind without saying so.
#
# The Gateway's settings directory (TWS_SETTINGS_PATH) is a named volume; Docker creates its mount
# point owned by root, so it is handed to the image's user (who may sudo in this image) first.
set -euo pipefail

config="${GATEWATCH_CONFIG:-/home/ibgateway/gatewatch-config/gatewatch.yaml}"
run="${GATEWATCH_GATEWAY_RUN:-/home/ibgateway/scripts/run.sh}"

if [ ! -r "$config" ]; then
	echo "ib-gateway: cannot read $config (mount ./config at /home/ibgateway/gatewatch-config)" >&2
	exit 1
fi
# gateway.client_id in block style: the first "client_id:" indented under a top-level "gateway:".
master=$(awk '
	/^gateway:[[:space:]]*(#.*)?$/ { inside = 1; next }
	/^[^[:space:]#]/ { inside = 0 }
	inside && /^[[:space:]]+client_id:/ {
		value = $0
		sub(/^[[:space:]]+client_id:[[:space:]]*/, "", value)
		sub(/[[:space:]]*(#.*)?$/, "", value)
		gsub(/["\047]/, "", value)
		print value
		exit
	}' "$config")
if ! [[ "$master" =~ ^[0-9]+$ ]]; then
	echo "ib-gateway: no numeric gateway.client_id in $config (found '${master}'): set it there;" \
		"the Gateway's Master API client id must be the exporter's client id" >&2
	exit 1
fi
export TWS_MASTER_CLIENT_ID="$master"
echo "ib-gateway: Master API client id ${TWS_MASTER_CLIENT_ID} (gateway.client_id in $config)"

settings="${TWS_SETTINGS_PATH:-}"
if [ -n "$settings" ] && [ -d "$settings" ] && [ ! -w "$settings" ]; then
	sudo chown "$(id -u):$(id -g)" "$settings"
fi
exec "$run"
