#!/usr/bin/env bash
# cpack builds the .deb, `dpkg-deb -c` lists every file of
# expected_files.txt under /usr, and its control fields are filled in
# (Depends on the runtime libraries, Maintainer, Section, Description).
#
# Usage: tests/packaging/check_deb.sh BUILD_DIR
# Exit status: 0 when every check passed, 1 otherwise, 64 on bad usage.
set -uo pipefail

[ $# -eq 1 ] && [ -f "$1/CPackConfig.cmake" ] || { echo "usage: $0 BUILD_DIR (configured, with CPackConfig.cmake)" >&2; exit 64; }
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/der-deb-XXXXXX")
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

if ! out=$(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work" 2>&1); then
  fail "cpack -G DEB failed:"; printf '%s\n' "$out"
  echo "$passed passed, $failed failed"
  exit 1
fi
deb=$(ls "$work"/*.deb 2>/dev/null | head -1)
[ -n "$deb" ] && pass "cpack built $(basename "$deb")" || { fail "cpack made no .deb"; exit 1; }

listing=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#')
missing=()
while read -r f; do
  [[ -z $f || $f == \#* ]] && continue
  grep -qxF "/usr/$f" <<<"$listing" || missing+=("$f")
done <"$here/expected_files.txt"
if [ ${#missing[@]} -eq 0 ]; then pass "dpkg-deb -c lists every file of expected_files.txt"; else fail "not in the .deb: ${missing[*]}"; fi

field() { dpkg-deb -f "$deb" "$1"; }
depends=$(field Depends)
for lib in libzmq5 libyaml-cpp0.7 libpq5 libfmt9 libsystemd0 libmodbus5 libc6 libstdc++6; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
pass "Depends: $depends"
for f in Package Version Maintainer Section Description Architecture; do
  [ -n "$(field "$f")" ] && pass "$f: $(field "$f" | head -1)" || fail "the control field $f is empty"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
