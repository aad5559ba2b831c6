#!/usr/bin/env bash
# Runs the chaos tests (tests/chaos/test_chaos.cpp) by hand.
#
# Usage: tests/chaos/run.sh [--long] [--fault SECONDS] [--agents N] [--build DIR] [-- CATCH-ARGS...]
#   --long          faults of 60 s instead of 15 s
#   --fault S       faults of S seconds
#   --agents N      fleet size (default 100)
#   --build DIR     build directory holding der_chaos_tests (default <repo>/build)
# Needs root for the network-namespace cut (else the TcpProxy stand-in) and
# PostgreSQL 15 binaries (the throwaway server of tests/store/pg_server.hpp).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$repo/build
fault=15
agents=100
while [ $# -gt 0 ]; do
  case "$1" in
    --long) fault=60 ;;
    --fault) fault=$2; shift ;;
    --agents) agents=$2; shift ;;
    --build) build=$2; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    --) shift; break ;;
    *) echo "tests/chaos/run.sh: unknown option '$1'" >&2; exit 64 ;;
  esac
  shift
done
bin=$build/tests/chaos/der_chaos_tests
[ -x "$bin" ] || cmake --build "$build" --target der_chaos_tests
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "chaos: $agents agents, faults of $fault s" >&2
DER_CHAOS_FAULT_S=$fault DER_CHAOS_AGENTS=$agents exec "$bin" --durations yes "$@"
