#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine to a verdict:
#   installs the Debian packages it needs (when missing), builds der normally
#   and with ASan+UBSan and TSan, and runs every test with ctest.
#
# Usage: tests/run.sh [--quick] [--no-install] [--jobs N]
#   --quick       normal build only (skip the sanitizer and fuzz builds)
#   --no-install  never call apt-get (fail if something is missing)
# Environment: DER_BUILD_ROOT (default: <repo>/build), CCACHE_DIR.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_root=${DER_BUILD_ROOT:-$repo/build}
jobs=$(nproc)
quick=0
install=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    --jobs) jobs=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "tests/run.sh: unknown option '$1'" >&2; exit 64 ;;
  esac
  shift
done

say() { printf '\n==> %s\n' "$*"; }

# --- Debian packages -----------------------------------------------------------
if [ $install -eq 1 ]; then
  "$repo/scripts/install-deps.sh"
else
  "$repo/scripts/install-deps.sh" --check
fi

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

failed=()
timings=()
phase_start=$SECONDS
# Records how long the phase that just ended took (CI has 45 minutes in all).
timed() { timings+=("$1 $((SECONDS - phase_start))s"); phase_start=$SECONDS; }
build_and_test() {  # name, ctest label regex ('' = all), cmake args...
  local name=$1 labels=$2
  shift 2
  local dir=$build_root/$name
  say "[$name] configure"
  cmake -S "$repo" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log"; failed+=("$name: configure"); return; }
  say "[$name] build"
  if ! cmake --build "$dir" -j "$jobs"; then failed+=("$name: build"); return; fi
  say "[$name] test"
  local args=(--test-dir "$dir" --output-on-failure -j "$jobs" --timeout 300)
  [ -n "$labels" ] && args+=(-L "$labels")
  if ! ctest "${args[@]}"; then failed+=("$name: tests"); fi
}

# Fuzz targets (tests/fuzz), 30 s each under ASan+UBSan. With clang able to
# compile <expected>: libFuzzer, in a build of its own. With g++ (Debian 12:
# clang 14 cannot) the engine is tests/fuzz/standalone_main.cpp and the
# targets are part of the ASan build (configured with DER_FUZZ=ON), which
# saves a whole build of der in CI.
fuzz_clang=0
if printf '#include <expected>\nstd::expected<int, int> e;\n' \
    | clang++-14 -std=c++2b -fsyntax-only -x c++ - 2>/dev/null; then fuzz_clang=1; fi
fuzz() {
  local dir=$build_root/asan
  if [ $fuzz_clang -eq 1 ]; then
    dir=$build_root/fuzz
    say "[fuzz] configure (clang++-14, libFuzzer)"
    CC=clang-14 CXX=clang++-14 cmake -S "$repo" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDER_FUZZ=ON \
      -DDER_BUILD_BENCH=OFF "${sanitizer_flags[@]}" >"$dir.configure.log" 2>&1 \
      || { cat "$dir.configure.log"; failed+=("fuzz: configure"); return; }
    say "[fuzz] build"
    if ! cmake --build "$dir" -j "$jobs" --target der_fuzz; then failed+=("fuzz: build"); return; fi
  fi
  [ -x "$dir/tests/fuzz/fuzz_wire_decode" ] || { failed+=("fuzz: no fuzz targets in $dir"); return; }
  say "[fuzz] run"
  if ! "$repo/tests/fuzz/run.sh" "$dir" 30; then failed+=("fuzz: crashes"); fi
}

# Build flags: line tables only (-g1), enough for symbolised stack traces and
# perf, in the normal and ASan builds, and -O1 under ASan (what it
# recommends): full debug info and -O2 there cost CI minutes, not findings.
# TSan keeps -O2 -g: built with -O1 -g1, TSan reported races inside
# libzmq's own memcpy calls that called_from_lib:libzmq.so suppresses at -O2
# (seen 2026-11-23, not understood yet).
normal_flags=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG")
sanitizer_flags=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DDER_BUILD_BENCH=OFF)
tsan_flags=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g -DNDEBUG" -DDER_BUILD_BENCH=OFF)
asan_fuzz=()
[ $fuzz_clang -eq 0 ] && asan_fuzz=(-DDER_FUZZ=ON)

mkdir -p "$build_root"
timed deps
build_and_test normal '' "${normal_flags[@]}"
timed normal
if [ $quick -eq 0 ]; then
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  build_and_test asan 'unit|sanitize' -DDER_SANITIZE=address "${asan_fuzz[@]}" "${sanitizer_flags[@]}"
  timed asan
  fuzz
  timed fuzz
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1 suppressions=$repo/tests/tsan.supp}
  build_and_test tsan 'unit|sanitize' -DDER_SANITIZE=thread "${tsan_flags[@]}"
  timed tsan
fi
say "time per phase: ${timings[*]} (total ${SECONDS}s)"

if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED: ${failed[*]}"
  exit 1
fi
say "all builds and tests passed"
