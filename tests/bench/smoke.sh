#!/usr/bin/env bash
# Smoke test of the benchmark programs (ctest, label unit): each runs for about
# a second with tiny parameters and must report a plausible figure. Measures
# nothing. Usage: smoke.sh BIN_DIR DER_HUB SOURCE_DIR
set -euo pipefail
bin=$1 hub=$2 src=$3
# shellcheck source=lib.sh
. "$src/tests/bench/lib.sh"
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "smoke: $*" >&2; exit 1; }

gen_assets "$tmp/assets.yaml" 20 1 1

# Raw ROUTER baseline fed by the load generator.
p=$(free_port)
"$bin/der_bench_router" --bind "tcp://127.0.0.1:$p" --telemetry-s 1 --duration 10 >"$tmp/router.json" &
pids+=($!)
out=$("$bin/der_bench_loadgen" --hub "tcp://127.0.0.1:$p" --assets "$tmp/assets.yaml" --agents 20 \
  --warmup 0.2 --duration 0.5 --welcome-timeout 10)
echo "router: $out"
[ "$(json_field "$out" acked)" -gt 0 ] || fail "no telemetry acknowledged by the raw router"

# der-hub: ingest, stream end to end, control and REST dispatch.
pa=$(free_port) pc=$(free_port) ps=$(free_port) ph=$(free_port)
"$hub" -c "$tmp/assets.yaml" --agents "tcp://127.0.0.1:$pa" --control "tcp://127.0.0.1:$pc" \
  --stream "tcp://127.0.0.1:$ps" --http "127.0.0.1:$ph" --log-level warn >"$tmp/hub.log" 2>&1 &
pids+=($!)
wait_port "$ph" || fail "der-hub did not start: $(cat "$tmp/hub.log")"
out=$("$bin/der_bench_loadgen" --hub "tcp://127.0.0.1:$pa" --assets "$tmp/assets.yaml" --rate 200 \
  --warmup 0.2 --duration 0.5 --stream "tcp://127.0.0.1:$ps" --welcome-timeout 10)
echo "hub: $out"
[ "$(json_field "$out" acked)" -gt 0 ] || fail "no telemetry acknowledged by der-hub"
[ "$(json_field "$out" e2e_n)" -gt 0 ] || fail "no telemetry seen on the stream"
out=$("$bin/der_bench_loadgen" --hub "tcp://127.0.0.1:$pa" --assets "$tmp/assets.yaml" --rate 20 \
  --warmup 0.2 --control "tcp://127.0.0.1:$pc" --dispatches 5 --welcome-timeout 10)
echo "control dispatch: $out"
[ "$(json_field "$out" dispatch_n)" -eq 5 ] || fail "control dispatches not applied"
out=$("$bin/der_bench_loadgen" --hub "tcp://127.0.0.1:$pa" --assets "$tmp/assets.yaml" --rate 20 \
  --warmup 0.2 --stream "tcp://127.0.0.1:$ps" --http "127.0.0.1:$ph" --dispatches 5 --welcome-timeout 10)
echo "REST dispatch: $out"
[ "$(json_field "$out" dispatch_n)" -eq 5 ] || fail "REST dispatches not applied"

# Minimal HTTP baseline.
echo '{"x":1}' >"$tmp/body.json"
pb=$(free_port)
"$bin/der_bench_http" --body-file "$tmp/body.json" --port "$pb" --duration 5 &
pids+=($!)
wait_port "$pb" || fail "der_bench_http did not start"
[ "$(curl -fsS "http://127.0.0.1:$pb/telemetry/x")" = '{"x":1}' ] || fail "der_bench_http: wrong body"
# Codec cost per message, no sockets.
out=$("$bin/der_bench_codec" --n 2000 --rounds 2)
echo "codec: $out"
[ "$(json_field "$out" check)" -gt 0 ] || fail "der_bench_codec decoded nothing"
# PostgreSQL COPY baseline and Mosquitto peer: need servers; here only that they start.
"$bin/der_bench_copy" --help >/dev/null || fail "der_bench_copy --help"
if [ -x "$bin/der_bench_mqtt" ]; then "$bin/der_bench_mqtt" --help >/dev/null || fail "der_bench_mqtt --help"; fi
echo "smoke: ok"
