#!/usr/bin/env bash
# Discharge a whole site for a while: der-hub splits the target across the
# site's available batteries by headroom (POST /sites/{site}/dispatch).
# Prints the parent dispatch and its children, one JSON line each.
#
# Usage: examples/dispatch/site-peak.sh SITE MW [DURATION]   (e.g. north 3 30m)
# Environment: DER_URL (http://127.0.0.1:7480)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 SITE MW [DURATION]" >&2; exit 64; }
url=${DER_URL:-http://127.0.0.1:7480}
body=$(jq -nc --arg mw "$2" --arg d "${3:-15m}" --arg who "${USER:-script}" \
  '{mw: ($mw | tonumber), duration_s: $d, reason: "site peak", requested_by: $who}')
curl -fsS -X POST "$url/sites/$1/dispatch" -H 'Content-Type: application/json' -d "$body" |
  jq -c '., .children[]? | {dispatch_id, asset_id, site_id, mw, state}'
