#!/usr/bin/env bash
# Runs der on this machine with no database: der-hub with examples/assets.yaml
# (or the file given) and one der-agent per battery in it, then shows the
# fleet's live telemetry every few seconds. Ctrl-C stops everything cleanly.
#
# Usage: examples/run.sh [assets.yaml]
# Environment: DER_HTTP (127.0.0.1:7480), DER_AGENTS_PORT (7410),
#              DER_CONTROL (tcp://127.0.0.1:7411), DER_STREAM (tcp://127.0.0.1:7412),
#              DER_BUILD_ROOT (<repo>/build).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
config=$(realpath "${1:-$repo/examples/assets.yaml}")
build=${DER_BUILD_ROOT:-$repo/build}/normal
http=${DER_HTTP:-127.0.0.1:7480}
agents_port=${DER_AGENTS_PORT:-7410}
control=${DER_CONTROL:-tcp://127.0.0.1:7411}
stream=${DER_STREAM:-tcp://127.0.0.1:7412}

"$repo/scripts/install-deps.sh"
echo "==> building der in $build (if needed)" >&2
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target der-hub der-agent >/dev/null
hub_bin=$build/daemon/der-hub/der-hub
agent_bin=$build/tools/der-agent/der-agent

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo >&2
  echo "==> stopping ${#pids[@]} processes" >&2
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

logs=$(mktemp -d "${TMPDIR:-/tmp}/der-run-XXXXXX")
echo "==> der-hub on http://$http (logs in $logs)" >&2
"$hub_bin" --config "$config" --agents "tcp://127.0.0.1:$agents_port" --control "$control" \
  --stream "$stream" --http "$http" 2>"$logs/der-hub.log" &
pids+=($!)
for _ in $(seq 100); do
  curl -fs "http://$http/health" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$logs/der-hub.log" >&2; exit 1; }
  sleep 0.1
done

mapfile -t assets < <(curl -fs "http://$http/assets" | jq -r '.[] | .site_name + "/" + .name')
for asset in "${assets[@]}"; do
  # Every battery is simulated here (--adapter sim), whatever adapter the
  # file names for the real device: this is a demo machine with no devices.
  "$agent_bin" --hub "tcp://127.0.0.1:$agents_port" --config "$config" --asset "$asset" --adapter sim \
    2>"$logs/der-agent-${asset//\//_}.log" &
  pids+=($!)
done
echo "==> ${#assets[@]} agents started; live telemetry below (Ctrl-C stops)" >&2
echo "    try: curl -s http://$http/telemetry | jq ." >&2

while true; do
  sleep 4
  printf '\n%s\n' "$(date -u +%H:%M:%S)"
  curl -fs "http://$http/telemetry" | jq -r '
    (["ASSET","SOC%","MW","SETPOINT","STATUS","AGE_S"] | @tsv),
    (.[] | [.asset, (.soc_pct*10|round/10), .current_mw, .setpoint_mw, .status, (.age_s*10|round/10)] | @tsv)' \
    || echo "(hub not answering)"
done
