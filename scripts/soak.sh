#!/usr/bin/env bash
# Soak test (not part of CI): one der-hub and N der-agent processes (sim
# adapter, accelerated: 200 ms ticks and telemetry, every agent with --spool)
# for a while, with a dispatch to a random asset every 10 s; samples the RSS
# of the hub and of every agent every 10 s and checks that after the warm-up
# neither moves by more than 5% (hub: its own RSS; agents: the fleet's mean).
#
# Usage: scripts/soak.sh [--minutes N] [--agents N] [--warmup-s S] [--build DIR]
#                        [--db CONNINFO] [--out DIR]
#   --minutes N    length of the run (default 20)
#   --agents N     fleet size (default 200)
#   --warmup-s S   samples before S seconds are not judged (default 120,
#                  at most half the run): the hub's in-memory history
#                  (--memory-history 120 rows per asset: 24 s of telemetry,
#                  60 s of heartbeats at heartbeat_s 0.5) fills first
#   --build DIR    build directory with der-hub and der-agent (default <repo>/build)
#   --db CONNINFO  run the hub with --db (default: in-memory history)
#   --out DIR      results directory (default <repo>/docs/soak)
# Writes DIR/soak-<date>-<N>min.csv (every sample) and DIR/soak-<date>-<N>min.md
# (settings, verdict, summary), and exits 1 when RSS moved by more than 5%.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
minutes=20
agents=200
warmup_s=120
build=$repo/build
db=
out=$repo/docs/soak
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift ;;
    --agents) agents=$2; shift ;;
    --warmup-s) warmup_s=$2; shift ;;
    --build) build=$2; shift ;;
    --db) db=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown option '$1'" >&2; exit 64 ;;
  esac
  shift
done
hub_bin=$build/daemon/der-hub/der-hub
agent_bin=$build/tools/der-agent/der-agent
for b in "$hub_bin" "$agent_bin"; do
  [ -x "$b" ] || { echo "soak.sh: $b not built (cmake --build $build --target der-hub der-agent)" >&2; exit 69; }
done
run_s=$((minutes * 60))
[ "$warmup_s" -le $((run_s / 2)) ] || warmup_s=$((run_s / 2))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d /tmp/der-soak.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
agents_port=$(free_port); control_port=$(free_port); stream_port=$(free_port); http_port=$(free_port)

# The fleet: 10 assets a site.
{
  echo "telemetry_s: 0.2"
  echo "heartbeat_s: 0.5"
  echo "sites:"
  for ((i = 0; i < agents; i++)); do
    if ((i % 10 == 0)); then printf '  - name: site-%03d\n    assets:\n' $((i / 10)); fi
    printf '      - name: b%03d\n        capacity_mwh: 4\n        max_mw: 2\n        min_mw: -2\n' "$i"
    printf '        initial_soc_pct: 50\n        soc_min_pct: 5\n        soc_max_pct: 95\n'
  done
} >"$work/assets.yaml"

hub_args=(--config "$work/assets.yaml" --agents "tcp://127.0.0.1:$agents_port"
  --control "tcp://127.0.0.1:$control_port" --stream "tcp://127.0.0.1:$stream_port"
  --http "127.0.0.1:$http_port" --memory-history 120 --log-level warn)
[ -n "$db" ] && hub_args+=(--db "$db")
"$hub_bin" "${hub_args[@]}" 2>"$work/hub.log" &
hub_pid=$!
pids+=("$hub_pid")
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$http_port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$http_port/health" >/dev/null || { cat "$work/hub.log" >&2; exit 69; }

agent_pids=()
for ((i = 0; i < agents; i++)); do
  "$agent_bin" --hub "tcp://127.0.0.1:$agents_port" --config "$work/assets.yaml" \
    --asset "$(printf 'site-%03d/b%03d' $((i / 10)) "$i")" --tick 200ms --spool "$work/spool" \
    --log-level warn 2>>"$work/agents.log" &
  agent_pids+=($!)
  pids+=($!)
done

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# The hub's RSS split: anonymous, of the [heap] mapping (main arena), of the
# other anonymous mappings (thread arenas, stacks, libzmq), and threads.
hub_split() {
  local anon threads heap
  anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
  heap=$(awk '/\[heap\]/ {h = 1; next} h && /^Rss:/ {print $2; exit}' "/proc/$1/smaps" 2>/dev/null || echo 0)
  echo "$anon,${heap:-0},$((anon - ${heap:-0})),$threads"
}
# smaps_table PID: "start name rss_kb" for every mapping (keyed by its start: [heap] grows at its end)
smaps_table() {
  awk '/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); range = r[1]; name = ($6 == "") ? "[anon]" : $6; next }
       /^Rss:/ { print range, name, $2 }' "/proc/$1/smaps" 2>/dev/null
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
online() {
  curl -sf "http://127.0.0.1:$http_port/agents" | python3 -c \
    'import json,sys; print(sum(1 for a in json.load(sys.stdin) if a.get("online")))' 2>/dev/null || echo 0
}

mkdir -p "$out"
stamp=$(date -u +%Y%m%d-%H%M)
csv=$out/soak-$stamp-${minutes}min.csv
md=$out/soak-$stamp-${minutes}min.md
echo "elapsed_s,hub_rss_kb,agents_rss_kb_mean,agents_rss_kb_max,hub_cpu_pct,agents_cpu_pct,online,load1,hub_anon_kb,hub_heap_kb,hub_other_anon_kb,hub_threads" >"$csv"

hz=$(getconf CLK_TCK)
start=$(date +%s)
prev_hub=$(cpu_ticks "$hub_pid")
prev_agents=0
for p in "${agent_pids[@]}"; do prev_agents=$((prev_agents + $(cpu_ticks "$p"))); done
prev_t=$start
next_dispatch=$((start + 10))
echo "soak: $agents agents, $minutes min, warm-up ${warmup_s} s, samples in $csv" >&2
while :; do
  sleep 10
  now=$(date +%s)
  elapsed=$((now - start))
  if ((now >= next_dispatch)); then
    i=$((RANDOM % agents))
    curl -sf -X POST "http://127.0.0.1:$http_port/dispatch" -H 'Content-Type: application/json' \
      -d "{\"asset\": \"$(printf 'site-%03d/b%03d' $((i / 10)) "$i")\", \"mw\": 0.5, \"duration_s\": 30}" \
      >/dev/null || true
    next_dispatch=$((now + 10))
  fi
  kill -0 "$hub_pid" 2>/dev/null || { echo "soak: der-hub died" >&2; tail "$work/hub.log" >&2; exit 1; }
  hub_rss=$(rss_kb "$hub_pid")
  sum=0; max=0; ticks=0; alive=0
  for p in "${agent_pids[@]}"; do
    r=$(rss_kb "$p"); [ -n "$r" ] || r=0
    ((r > 0)) && alive=$((alive + 1))
    sum=$((sum + r)); ((r > max)) && max=$r
    ticks=$((ticks + $(cpu_ticks "$p")))
  done
  hub_ticks=$(cpu_ticks "$hub_pid")
  dt=$((now - prev_t)); ((dt > 0)) || dt=1
  hub_cpu=$(awk -v a="$hub_ticks" -v b="$prev_hub" -v hz="$hz" -v dt="$dt" 'BEGIN {printf "%.1f", 100 * (a - b) / hz / dt}')
  agents_cpu=$(awk -v a="$ticks" -v b="$prev_agents" -v hz="$hz" -v dt="$dt" 'BEGIN {printf "%.1f", 100 * (a - b) / hz / dt}')
  prev_hub=$hub_ticks; prev_agents=$ticks; prev_t=$now
  load=$(cut -d' ' -f1 /proc/loadavg)
  mean=$((alive > 0 ? sum / alive : 0))
  echo "$elapsed,$hub_rss,$mean,$max,$hub_cpu,$agents_cpu,$(online),$load,$(hub_split "$hub_pid")" >>"$csv"
  if [ ! -f "$work/smaps-warm" ] && ((elapsed >= warmup_s)); then smaps_table "$hub_pid" >"$work/smaps-warm"; fi
  ((elapsed >= run_s)) && break
done

smaps_table "$hub_pid" >"$work/smaps-end"
# Which of the hub's mappings moved between the first judged sample and the end.
moved=$(awk 'NR == FNR { w[$1 " " $2] = $3; next }
  { k = $1 " " $2; d = $3 - (k in w ? w[k] : 0); delete w[k]
    if (d >= 64 || d <= -64) printf "| %s | %s | %d | %d | %+d |\n", $1, $2, $3 - d, $3, d }
  END { for (k in w) if (w[k] >= 64) { split(k, a, " "); printf "| %s | %s (gone) | %d | 0 | %+d |\n", a[1], a[2], w[k], -w[k] } }' \
  "$work/smaps-warm" "$work/smaps-end" 2>/dev/null || true)

# Verdict: after the warm-up, max and min within 5% of the first judged sample.
verdict=$(awk -F, -v w="$warmup_s" '
  NR == 1 || $1 < w { next }
  { if (!n++) { h0 = $2; a0 = $3; hmin = hmax = $2; amin = amax = $3 }
    if ($2 < hmin) hmin = $2; if ($2 > hmax) hmax = $2
    if ($3 < amin) amin = $3; if ($3 > amax) amax = $3
    on = $7 }
  END {
    if (!n) { print "FAIL no samples after the warm-up"; exit }
    hd = 100 * (hmax - hmin) / h0; ad = 100 * (amax - amin) / a0
    printf "%s hub RSS %d..%d KiB (spread %.1f%% of %d), agent mean RSS %d..%d KiB (spread %.1f%% of %d), %d samples judged, %d online at the end\n",
      (hd <= 5 && ad <= 5) ? "PASS" : "FAIL", hmin, hmax, hd, h0, amin, amax, ad, a0, n, on
  }' "$csv")
echo "soak: $verdict" >&2

{
  echo "# Soak run $stamp ($minutes min)"
  echo
  echo "Command: \`scripts/soak.sh --minutes $minutes --agents $agents --warmup-s $warmup_s\`"
  echo "on $(nproc) cores, Linux $(uname -r), $("$agent_bin" --version 2>/dev/null | head -1)."
  echo
  echo "- Length: **$minutes minutes** ($elapsed s of samples, one every 10 s), warm-up $warmup_s s not judged."
  echo "- Fleet: $agents der-agent processes (sim adapter, --tick 200ms, telemetry_s 0.2, heartbeat_s 0.5, each with --spool),"
  echo "  one der-hub ($([ -n "$db" ] && echo "with --db" || echo "in-memory history, --memory-history 120")), a 30 s dispatch to a random asset every 10 s."
  echo "- Verdict (RSS within 5% after warm-up): **$verdict**"
  echo
  echo "The hub's mappings whose RSS moved by 64 KiB or more between the first judged sample and the end"
  echo "(from /proc/PID/smaps; [heap] is glibc's main arena, [anon] mappings are thread arenas, stacks and libzmq's buffers):"
  echo
  if [ -n "$moved" ]; then
    echo "| mapping start | name | RSS KiB after warm-up | RSS KiB at the end | change |"
    echo "|---|---|---|---|---|"
    echo "$moved"
  else
    echo "none."
  fi
  echo
  echo "| elapsed s | hub RSS KiB | agent mean RSS KiB | agent max RSS KiB | hub CPU % | all agents CPU % | online | load | hub anon KiB | hub [heap] KiB | hub other anon KiB | hub threads |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  tail -n +2 "$csv" | awk -F, '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12}'
  echo
  echo "Samples: [$(basename "$csv")]($(basename "$csv"))."
} >"$md"
echo "soak: wrote $md" >&2
[[ $verdict == PASS* ]]
