#!/usr/bin/env bash
# Runs every fuzz target of a DER_FUZZ build for a bounded time, each on a
# copy of its corpus (tests/fuzz/corpus/<target>), so the tree is never
# written to. Fails if any target crashes, hangs past -timeout, runs out of
# memory or breaks a property, printing the crash output and the reproducer.
#
# Usage: tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET]   (default 60)
# Reproducers and logs are kept in BUILD_DIR/fuzz-artifacts/<target>/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  sed -n '2,9p' "$0" >&2
  exit 64
fi
build=$(cd "$1" && pwd)
seconds=${2:-60}

# Sanitizer reports must end the process through abort(), where the engine
# writes the input out as a reproducer.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1:abort_on_error=1"

work=$(mktemp -d "${TMPDIR:-/tmp}/der-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=()
for seeds in "$here"/corpus/*/; do
  target=$(basename "$seeds")
  binary=$build/tests/fuzz/$target
  artifacts=$build/fuzz-artifacts/$target
  log=$artifacts/fuzz.log
  if [ ! -x "$binary" ]; then
    echo "tests/fuzz/run.sh: $binary is missing (configure with -DDER_FUZZ=ON and build target der_fuzz)" >&2
    failed+=("$target (not built)")
    continue
  fi
  rm -rf "$artifacts"
  mkdir -p "$artifacts" "$work/$target"
  cp -R "$seeds". "$work/$target/"
  printf '==> %s: %s s\n' "$target" "$seconds"
  rc=0
  timeout --kill-after=10 $((seconds + 120)) "$binary" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" "$work/$target" >"$log" 2>&1 || rc=$?
  grep -E '^(#[0-9]+.*(DONE|pulse)|Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log" \
    | tail -n 2 || true
  reproducers=$(find "$artifacts" -type f ! -name fuzz.log)
  if [ $rc -ne 0 ] || [ -n "$reproducers" ]; then
    printf '\n==> %s FAILED (exit %s); its output:\n' "$target" "$rc" >&2
    tail -n 80 "$log" >&2
    for r in $reproducers; do
      printf '==> reproducer: %s\n    reproduce with: %s %s\n' "$r" "$binary" "$r" >&2
    done
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  printf '\n==> fuzzing FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
printf '==> fuzzing passed: no crash in %s s per target\n' "$seconds"
