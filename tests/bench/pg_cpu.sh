#!/usr/bin/env bash
# CPU per committed telemetry row of der-hub --db against the plain COPY
# baseline (issue #9 figure 2), less sensitive to a busy machine than rows/s:
# for each hub binary given (alternated, A/B in the same minutes), 1,000
# agents at --rate 0 for 14 s against one throwaway PostgreSQL; over 6 s of
# it, CPU ticks of the hub process and of every postgres process (from /proc)
# divided by the rows inserted into telemetry (pg_stat_user_tables). Then
# der_bench_copy into a fresh database, measured the same way.
# Usage (root, after tests/bench/run.sh built build-bench):
#   tests/bench/pg_cpu.sh HUB_BINARY...   env: ROUNDS="1 2", PERF=/tmp/prefix (perf record each hub run)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); build=$repo/build-bench; bin=$build/tests/bench
. "$repo/tests/bench/lib.sh"
tmp=$(mktemp -d /tmp/pgcpu.XXXXXX); chmod 755 $tmp
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
mkdir -p $tmp/pg; chown postgres $tmp/pg
runuser -u postgres -- $pg_bin/initdb -D $tmp/pg/data -U der --auth=trust -E UTF8 >/dev/null
pgport=$(free_port)
runuser -u postgres -- $pg_bin/postgres -D $tmp/pg/data -h 127.0.0.1 -p $pgport -k $tmp/pg -c fsync=off \
  -c synchronous_commit=off -c full_page_writes=off -c max_connections=50 >$tmp/postgres.log 2>&1 &
pgpid=$!
trap 'runuser -u postgres -- $pg_bin/pg_ctl -D $tmp/pg/data -m immediate -w stop >/dev/null 2>&1; rm -rf $tmp' EXIT
wait_port $pgport 30; sleep 1
a1k=$tmp/assets.yaml; gen_assets $a1k 1000 4 30
pgticks() { local t=0; for p in $(pgrep -u postgres postgres); do [ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
ins() { psql -qAt -h 127.0.0.1 -p $pgport -U der -d $1 -c "SELECT coalesce(sum(n_tup_ins),0) FROM pg_stat_user_tables WHERE relname LIKE 'telemetry%'"; }
n=0
for round in ${ROUNDS:-1 2}; do
 for hub in "$@"; do
  n=$((n+1)); db=h$n
  psql -qAt -h 127.0.0.1 -p $pgport -U der -d postgres -c "CREATE DATABASE $db" >/dev/null
  pa=$(free_port) ph=$(free_port)
  $hub -c $a1k --agents tcp://127.0.0.1:$pa --control tcp://127.0.0.1:$(free_port) --stream tcp://127.0.0.1:$(free_port) \
    --http 127.0.0.1:$ph --log-level warn --db "host=127.0.0.1 port=$pgport user=der dbname=$db" >>$tmp/hub.log 2>&1 &
  hp=$!; wait_port $ph 30
  $bin/der_bench_loadgen --hub tcp://127.0.0.1:$pa --assets $a1k --rate 0 --warmup 0 --duration 14 >$tmp/lg.json &
  lp=$!
  sleep 5
  sleep 0.2; i0=$(ins $db); p0=$(pgticks); h0=$(awk '{print $14+$15}' /proc/$hp/stat); t0=$(date +%s.%N)
  if [ -n "${PERF:-}" ]; then perf record -o $PERF.$n.data -F 499 -g -p "$hp,$(pgrep -u postgres -d, postgres)" -- sleep 6 2>/dev/null >/dev/null; else sleep 6; fi
  i1=$(ins $db); p1=$(pgticks); h1=$(awk '{print $14+$15}' /proc/$hp/stat); t1=$(date +%s.%N)
  psql -qAt -h 127.0.0.1 -p $pgport -U der -d $db -c "SELECT relname, n_tup_ins FROM pg_stat_user_tables WHERE n_tup_ins > 0" | tr '\n' ' '; echo
  echo "pg errors: $(grep -c ERROR $tmp/postgres.log || true)"; { grep ERROR $tmp/postgres.log || true; } | tail -2
  wait $lp; kill $hp; wait $hp 2>/dev/null || true
  awk -v hub=$(basename $hub) -v r=$((i1-i0)) -v pt=$((p1-p0)) -v ht=$((h1-h0)) -v s=$(echo "$t1 - $t0" | bc) 'BEGIN {
    printf "%s: rows/s %.0f  pg us/row %.2f  hub us/row %.2f\n", hub, r/s, pt*10000/r, ht*10000/r }'
 done
 psql -qAt -h 127.0.0.1 -p $pgport -U der -d postgres -c "CREATE DATABASE c$round" >/dev/null
 # migrate via a short hub start
 ph=$(free_port); $1 -c $a1k --agents tcp://127.0.0.1:$(free_port) --control tcp://127.0.0.1:$(free_port) --stream tcp://127.0.0.1:$(free_port) --http 127.0.0.1:$ph --log-level warn --db "host=127.0.0.1 port=$pgport user=der dbname=c$round" >>$tmp/hub.log 2>&1 &
 hp=$!; wait_port $ph 30; kill $hp; wait $hp 2>/dev/null || true
 $bin/der_bench_copy --conninfo "host=127.0.0.1 port=$pgport user=der dbname=c$round" --assets 1000 --duration 9 >$tmp/copy.json &
 cp=$!
 sleep 2; i0=$(ins c$round); p0=$(pgticks); c0=$(awk '{print $14+$15}' /proc/$cp/stat); t0=$(date +%s.%N)
 sleep 5; i1=$(ins c$round); p1=$(pgticks); c1=$(awk '{print $14+$15}' /proc/$cp/stat); t1=$(date +%s.%N)
 wait $cp
 awk -v r=$((i1-i0)) -v pt=$((p1-p0)) -v ht=$((c1-c0)) -v s=$(echo "$t1 - $t0" | bc) 'BEGIN {
    printf "copy: rows/s %.0f  pg us/row %.2f  client us/row %.2f\n", r/s, pt*10000/r, ht*10000/r }'
 cat $tmp/copy.json
done
