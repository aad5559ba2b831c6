#!/usr/bin/env bash
# `cmake --install` lays out every file of expected_files.txt, points the
# systemd units at the installed programs, the example scripts parse, and
# the units pass
# `systemd-analyze verify` (with the installed programs and man pages).
#
# Usage: tests/packaging/check_install.sh BUILD_DIR
# Exit status: 0 when every check passed, 1 otherwise, 64 on bad usage.
set -uo pipefail

[ $# -eq 1 ] && [ -d "$1" ] || { echo "usage: $0 BUILD_DIR" >&2; exit 64; }
build=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/der-install-XXXXXX")
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# 1. The .deb's layout: prefix /usr into a DESTDIR.
root=$work/root
if out=$(DESTDIR=$root cmake --install "$build" --prefix /usr 2>&1); then
  pass "cmake --install --prefix /usr into a DESTDIR"
else
  fail "cmake --install failed:"; printf '%s\n' "$out"
fi
missing=()
while read -r f; do
  [[ -z $f || $f == \#* ]] && continue
  [ -e "$root/usr/$f" ] || missing+=("$f")
done <"$here/expected_files.txt"
if [ ${#missing[@]} -eq 0 ]; then pass "every file of expected_files.txt is installed"; else fail "not installed: ${missing[*]}"; fi
for prog in sbin/der-hub bin/der-agent bin/der-launch; do
  [ -x "$root/usr/$prog" ] || fail "$prog is not executable"
done
grep -q '^ExecStart=/usr/sbin/der-hub ' "$root/usr/lib/systemd/system/der-hub.service" &&
  pass "der-hub.service runs /usr/sbin/der-hub" || fail "der-hub.service does not run /usr/sbin/der-hub"
"$root/usr/sbin/der-hub" --version >/dev/null 2>&1 && pass "the installed der-hub runs" || fail "the installed der-hub --version failed"

# The example scripts installed with the docs parse.
for f in "$root"/usr/share/doc/der/examples/*.sh "$root"/usr/share/doc/der/examples/*/*.sh; do
  if out=$(bash -n "$f" 2>&1); then pass "bash -n ${f#"$root"/}"; else fail "bash -n ${f#"$root"/}: $out"; fi
  [ -x "$f" ] || fail "${f#"$root"/} is not executable"
done

# 2. Another prefix: the units follow it.
other=$work/other
if DESTDIR=$other cmake --install "$build" --prefix /opt/der >/dev/null 2>&1 &&
  grep -q '^ExecStart=/opt/der/sbin/der-hub ' "$other/opt/der/lib/systemd/system/der-hub.service" &&
  grep -q '^ExecStart=/opt/der/bin/der-agent ' "$other/opt/der/lib/systemd/system/der-agent@.service" &&
  grep -q '^ExecStart=/opt/der/bin/der-launch ' "$other/opt/der/lib/systemd/system/der-launch.service"; then
  pass "installed under /opt/der, the units run /opt/der/{sbin,bin}/der-*"
else
  fail "the units do not follow --prefix /opt/der"
fi

# 3. systemd-analyze verify: the installed units, their programs taken from
# the DESTDIR (verify checks that ExecStart= is executable) and their
# Documentation= man pages from it too.
if command -v systemd-analyze >/dev/null 2>&1; then
  units=$work/units
  mkdir -p "$units"
  for u in "$root"/usr/lib/systemd/system/*.service; do
    sed -e "s#=/usr/sbin/#=$root/usr/sbin/#" -e "s#=/usr/bin/der-#=$root/usr/bin/der-#" "$u" >"$units/$(basename "$u")"
  done
  # A template is verified through an instance: north/bess-1, escaped.
  instance=$(systemd-escape --template der-agent@.service north/bess-1)
  cp "$units/der-agent@.service" "$units/$instance"
  for u in der-hub.service der-launch.service "$instance"; do
    if out=$(cd "$units" && MANPATH=$root/usr/share/man SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "./$u" 2>&1) &&
      [ -z "$out" ]; then
      pass "systemd-analyze verify $u"
    else
      fail "systemd-analyze verify $u:"; printf '  %s\n' "$out"
    fi
  done
else
  echo "skip: systemd-analyze is not installed (package systemd); units not verified"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
