#!/usr/bin/env bash
# Keeps the man pages and shell completions in step with the programs:
# every long flag a program's --help lists must appear in its man page and in
# each of its completion files; every man page must render without a groff
# warning; every completion file must parse.
#
# Usage: tests/docs/check_docs.sh PROGRAM_BINARY...
#        tests/docs/check_docs.sh BUILD_DIR
# Each PROGRAM_BINARY is a der program (der-hub, der-agent, der-dispatch,
# der-tail, der-history, der-launch); its name is the file's name, and its man
# page man/NAME.<section> and completions completions/NAME.bash,
# completions/_NAME and completions/NAME.fish are checked against its --help.
# With BUILD_DIR, the six programs are taken from their places in that build
# tree (daemon/der-hub/der-hub, tools/NAME/NAME).
# Exit status: 0 when every check passed, 1 otherwise, 64 on bad usage.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

programs=(der-hub der-agent der-dispatch der-tail der-history der-launch)
if [ $# -eq 1 ] && [ -d "$1" ]; then
  bins=("$1/daemon/der-hub/der-hub")
  for prog in "${programs[@]:1}"; do bins+=("$1/tools/$prog/$prog"); done
elif [ $# -ge 1 ]; then
  bins=("$@")
else
  echo "usage: $0 PROGRAM_BINARY... | BUILD_DIR" >&2
  exit 64
fi

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# The text of a roff file with escaped hyphens (\-) made plain, so that
# \-\-flag and --flag read the same.
plain_roff() { sed 's/\\-/-/g' "$1"; }

# Does FILE mention --FLAG as a whole flag (not as the prefix of a longer one)?
has_flag() { # kind file flag
  local kind=$1 file=$2 flag=$3 name=${3#--}
  case $kind in
    roff) grep -Eq -- "--${name}([^a-z0-9-]|\$)" <<<"$(plain_roff "$file")" ;;
    fish) grep -Eq -- "(^|[[:space:]])(-l|--long|--long-option)[[:space:]=]+['\"]?${name}([^a-z0-9-]|\$)" "$file" ;;
    *) grep -Eq -- "--${name}([^a-z0-9-]|\$)" "$file" ;;
  esac
}

check_program() { # name binary man-glob completion-files...
  local prog=$1 bin=$2 help flags f kind missing
  shift 2
  if [ ! -x "$bin" ]; then
    fail "$prog: no executable at $bin"
    return
  fi
  if ! help=$("$bin" --help 2>&1); then
    fail "$prog --help exited with a non-zero status"
    return
  fi
  # The long names of the options --help lists (CLI11: an indented line that
  # starts with the option's names, `-n,--count UINT ...`); flags mentioned in
  # descriptions (der-launch describes der-agent's command line) are not its own.
  flags=$(printf '%s\n' "$help" | grep -E -- '^ {1,8}-' | awk '{print $1}' | tr ',' '\n' |
    grep -oE -- '^--[a-z][a-z0-9-]*' | sort -u)
  if [ -z "$flags" ]; then
    fail "$prog --help lists no long flags"
    return
  fi
  pass "$prog --help lists $(printf '%s\n' "$flags" | wc -l) long flags"
  for f in "$@"; do
    case $f in
      */man/*) kind=roff ;;
      *.fish) kind=fish ;;
      *) kind=plain ;;
    esac
    if [ ! -f "$f" ]; then
      fail "$prog: ${f#"$root"/} is missing"
      continue
    fi
    missing=()
    for flag in $flags; do
      has_flag "$kind" "$f" "$flag" || missing+=("$flag")
    done
    if [ ${#missing[@]} -eq 0 ]; then
      pass "$prog: every flag is in ${f#"$root"/}"
    else
      fail "$prog: missing from ${f#"$root"/}: ${missing[*]}"
    fi
  done
}

# The man page of a program: man/PROG.<section>.
man_of() { local m; for m in "$root"/man/"$1".[1-8]; do [ -f "$m" ] && { echo "$m"; return; }; done; echo "$root/man/$1.(missing)"; }

c=$root/completions
for bin in "${bins[@]}"; do
  prog=$(basename "$bin")
  check_program "$prog" "$bin" "$(man_of "$prog")" "$c/$prog.bash" "$c/_$prog" "$c/$prog.fish"
done

# Man pages render without warnings.
if command -v groff >/dev/null 2>&1; then
  shopt -s nullglob
  pages=("$root"/man/*.[1-8])
  [ ${#pages[@]} -gt 0 ] || fail "no man pages in man/"
  for page in "${pages[@]}"; do
    warnings=$(LC_ALL=C.UTF-8 groff -ww -man -Tutf8 "$page" 2>&1 >/dev/null)
    if [ -z "$warnings" ]; then
      pass "groff -ww renders ${page#"$root"/} cleanly"
    else
      fail "groff -ww warns on ${page#"$root"/}:"
      printf '  %s\n' "$warnings"
    fi
  done
else
  fail "groff is not installed (scripts/install-deps.sh installs it)"
fi

# Completion files parse.
for f in "$c"/*.bash; do
  if out=$(bash -n "$f" 2>&1); then pass "bash -n ${f#"$root"/}"; else fail "bash -n ${f#"$root"/}: $out"; fi
done
if command -v zsh >/dev/null 2>&1; then
  for f in "$c"/_der-*; do
    if out=$(zsh -n "$f" 2>&1); then pass "zsh -n ${f#"$root"/}"; else fail "zsh -n ${f#"$root"/}: $out"; fi
  done
else
  echo "skip: zsh is not installed; zsh completions not parsed"
fi
if command -v fish >/dev/null 2>&1; then
  for f in "$c"/*.fish; do
    if out=$(fish -n "$f" 2>&1); then pass "fish -n ${f#"$root"/}"; else fail "fish -n ${f#"$root"/}: $out"; fi
  done
else
  echo "skip: fish is not installed; fish completions not parsed"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
