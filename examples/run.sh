#!/usr/bin/env bash
# Runs der on this machine with no database: installs what is missing,
# builds, starts der-hub on examples/assets.yaml (or the file given) and
# der-launch with one simulated der-agent per battery, shows the live
# telemetry with der-tail, sends a site dispatch with der-dispatch after a few
# seconds, and stops everything cleanly on Ctrl-C (or after --demo-seconds).
#
# Usage: examples/run.sh [--demo-seconds N] [--no-install] [assets.yaml]
# Environment: DER_HTTP (127.0.0.1:7480), DER_AGENTS_PORT (7410),
#              DER_CONTROL (tcp://127.0.0.1:7411), DER_STREAM (tcp://127.0.0.1:7412),
#              DER_BUILD_ROOT (<repo>/build), DER_BIN_DIR (use these binaries, build nothing).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo_seconds=0
install=1
config=$repo/examples/assets.yaml
while [ $# -gt 0 ]; do
  case "$1" in
    --demo-seconds) demo_seconds=${2:?--demo-seconds needs a number}; shift ;;
    --demo-seconds=*) demo_seconds=${1#*=} ;;
    --no-install) install=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "examples/run.sh: unknown option '$1'" >&2; exit 64 ;;
    *) config=$1 ;;
  esac
  shift
done
[[ $demo_seconds =~ ^[0-9]+$ ]] || { echo "examples/run.sh: --demo-seconds: '$demo_seconds' is not a number" >&2; exit 64; }
config=$(realpath "$config")
http=${DER_HTTP:-127.0.0.1:7480}
agents_port=${DER_AGENTS_PORT:-7410}
export DER_CONTROL=${DER_CONTROL:-tcp://127.0.0.1:7411}
export DER_STREAM=${DER_STREAM:-tcp://127.0.0.1:7412}

if [ -n "${DER_BIN_DIR:-}" ]; then
  bin=$DER_BIN_DIR
else
  if [ $install -eq 1 ]; then "$repo/scripts/install-deps.sh"; fi
  build=${DER_BUILD_ROOT:-$repo/build}/normal
  echo "==> building der in $build (if needed)" >&2
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j "$(nproc)" --target der-hub der-agent der-launch der-tail der-dispatch >/dev/null
  bin=$(mktemp -d "${TMPDIR:-/tmp}/der-bin-XXXXXX")
  for p in daemon/der-hub/der-hub tools/der-agent/der-agent tools/der-launch/der-launch \
           tools/der-tail/der-tail tools/der-dispatch/der-dispatch; do
    ln -s "$build/$p" "$bin/"
  done
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo >&2
  echo "==> stopping der-tail, der-launch (and its agents) and der-hub" >&2
  # Reverse order: the agents say goodbye to a hub that still listens.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "==> stopped; logs in $logs" >&2
}
trap cleanup INT TERM EXIT

logs=$(mktemp -d "${TMPDIR:-/tmp}/der-run-XXXXXX")
echo "==> der-hub on http://$http (logs in $logs)" >&2
"$bin/der-hub" --config "$config" --agents "tcp://127.0.0.1:$agents_port" --control "$DER_CONTROL" \
  --stream "$DER_STREAM" --http "$http" 2>"$logs/der-hub.log" &
pids+=($!)
for _ in $(seq 100); do
  curl -fs "http://$http/health" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$logs/der-hub.log" >&2; exit 1; }
  sleep 0.1
done

# Every battery is simulated here (DER_ADAPTER=sim overrides the adapter the
# file names for the real device): this is a demo machine with no devices.
DER_ADAPTER=sim "$bin/der-launch" --hub "tcp://127.0.0.1:$agents_port" --agent "$bin/der-agent" "$config" \
  >"$logs/der-launch.log" 2>&1 &
pids+=($!)
assets=$(curl -fs "http://$http/assets" | jq length)
echo "==> der-launch started; waiting for $assets agents" >&2
for _ in $(seq 100); do
  online=$(curl -fs "http://$http/agents" | jq '[.[] | select(.online)] | length')
  [ "$online" -ge "$assets" ] && break
  sleep 0.1
done
echo "==> $online of $assets agents online; live telemetry (der-tail --format table), Ctrl-C stops" >&2
echo "    try: curl -s http://$http/telemetry | jq .   or   der-dispatch --stop" >&2

"$bin/der-tail" --snapshot --format table &
pids+=($!)

# A dispatch after a few seconds: the whole first site discharges 2 MW for
# 5 minutes, split across its available batteries by the hub.
site=$(curl -fs "http://$http/assets" | jq -r '[.[] | select(.available)][0].site_name')
sleep 6
echo "==> der-dispatch --site $site 2 --for 5m --wait" >&2
"$bin/der-dispatch" --site "$site" 2 --for 5m --reason "examples/run.sh demo" --wait --timeout 15s \
  || echo "(dispatch did not complete: see $logs/der-hub.log)" >&2

start=$SECONDS
while [ "$demo_seconds" -eq 0 ] || [ $((SECONDS - start + 6)) -lt "$demo_seconds" ]; do
  sleep 1
  kill -0 "${pids[0]}" 2>/dev/null || { echo "==> der-hub ended; see $logs/der-hub.log" >&2; exit 1; }
done
