#!/usr/bin/env bash
# Nudges every online battery toward the middle of its charge: discharge
# above HIGH %, charge below LOW %, for DURATION, at a fraction of its limit.
# Reads the latest telemetry over REST and sends dispatches with der-dispatch.
#
# Usage: examples/dispatch/soc-balance.sh [LOW HIGH DURATION]   (default 30 70 15m)
# Environment: DER_URL (http://127.0.0.1:7480), DER_CONTROL (der-dispatch's)
set -euo pipefail
low=${1:-30} high=${2:-70} duration=${3:-15m}
url=${DER_URL:-http://127.0.0.1:7480}

# One CSV line per battery to move, as der-dispatch reads on stdin.
plan=$(curl -fsS "$url/telemetry" | jq -r --argjson low "$low" --argjson high "$high" '
  .[] | select(.stale | not)
  | if .soc_pct > $high then [.asset, (.max_mw * 0.5)]
    elif .soc_pct < $low then [.asset, (.min_mw * 0.5)]
    else empty end
  | @csv')
if [ -z "$plan" ]; then
  echo "every battery is between $low % and $high %" >&2
  exit 0
fi
{ echo "asset,mw"; printf '%s\n' "$plan"; } |
  der-dispatch --for "$duration" --reason "soc balance $low-$high %"
