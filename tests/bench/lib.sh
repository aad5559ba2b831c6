# Shell helpers of the benchmarks (sourced by run.sh and smoke.sh).

# gen_assets FILE N [TELEMETRY_S] [HEARTBEAT_S]: an assets.yaml with N simulated
# BESS assets, 100 per site (site-0001/bess-00001 ...).
gen_assets() {
  local file=$1 n=$2 tel=${3:-4} hb=${4:-30}
  awk -v n="$n" -v tel="$tel" -v hb="$hb" 'BEGIN {
    printf "telemetry_s: %s\nheartbeat_s: %s\nsites:\n", tel, hb
    for (i = 0; i < n; i++) {
      if (i % 100 == 0) printf "  - name: site-%04d\n    assets:\n", i / 100
      printf "      - {name: bess-%05d, capacity_mwh: 4, max_mw: 2, min_mw: -2}\n", i
    }
  }' >"$file"
}

# free_port: a TCP port no socket uses (ss), below the ephemeral range (the
# load generators open thousands of outgoing connections there).
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((12000 + RANDOM % 20000))
    if ! ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
  done
  return 1
}

# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT.
wait_port() {
  local port=$1 deadline=$((SECONDS + ${2:-20}))
  while [ $SECONDS -lt $deadline ]; do
    ss -Htln "sport = :$port" 2>/dev/null | grep -q . && return 0
    sleep 0.05
  done
  return 1
}

# json_field JSON KEY: a number or string field of a flat JSON object.
json_field() {
  printf '%s' "$1" | jq -r ".$2"
}
