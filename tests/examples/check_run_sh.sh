#!/usr/bin/env bash
# examples/run.sh (the README's run command) against the built binaries:
# with --demo-seconds it brings every battery of examples/assets.yaml online,
# shows telemetry with der-tail, applies a site dispatch with der-dispatch,
# exits 0 by itself and leaves no process behind.
# Usage: check_run_sh.sh REPO BIN_DIR
set -euo pipefail
repo=$1 bin=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/der-check-run-XXXXXX")
trap 'rm -rf "$work"' EXIT

free_port() {  # a port nothing listens on (the kernel picks it)
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
export DER_BIN_DIR=$bin
export DER_HTTP=127.0.0.1:$(free_port) DER_AGENTS_PORT=$(free_port)
export DER_CONTROL=tcp://127.0.0.1:$(free_port) DER_STREAM=tcp://127.0.0.1:$(free_port)
export TMPDIR=$work

status=0
timeout -k 5 90 "$repo/examples/run.sh" --demo-seconds 14 >"$work/out" 2>"$work/err" || status=$?
fail() { echo "FAIL: $*"; echo "--- stdout"; cat "$work/out"; echo "--- stderr"; cat "$work/err"; exit 1; }
[ $status -eq 0 ] || fail "examples/run.sh exited $status"
grep -q '5 of 5 agents online' "$work/err" || fail "not every agent came online"
grep -qE '^ts +asset +status' "$work/out" || fail "no der-tail table header"
grep -qE 'north/bess-1 +discharging' "$work/out" || fail "the site dispatch never showed in der-tail"
grep -q '"site":"north".*"state":"applied"' "$work/out" || fail "no applied der-dispatch result line"
grep -q '==> stopped' "$work/err" || fail "no clean stop"
# Nothing it started is left (their command lines name its ports).
port=${DER_AGENTS_PORT}
if pgrep -f "der-.*127.0.0.1:$port" >/dev/null; then fail "processes left behind: $(pgrep -fa "der-.*127.0.0.1:$port")"; fi
echo "examples/run.sh --demo-seconds: ok"
