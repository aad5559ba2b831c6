#!/usr/bin/env bash
# Emergency stop: every asset (or every asset of SITE) to 0 MW now, and every
# open or scheduled dispatch cancelled (POST /stop). Recorded in /audit.
#
# Usage: examples/dispatch/stop-all.sh [SITE] [REASON]
# Environment: DER_URL (http://127.0.0.1:7480)
set -euo pipefail
url=${DER_URL:-http://127.0.0.1:7480}
body=$(jq -nc --arg site "${1:-}" --arg reason "${2:-manual stop}" --arg who "${USER:-script}" \
  '{reason: $reason, requested_by: $who} + (if $site == "" then {} else {site: $site} end)')
curl -fsS -X POST "$url/stop" -H 'Content-Type: application/json' -d "$body" | jq .
