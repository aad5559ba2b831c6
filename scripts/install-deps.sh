#!/usr/bin/env bash
# Installs the Debian 12 packages der needs to build, test and run, when
# missing. Non-interactive; uses sudo when not root.
# Usage: scripts/install-deps.sh [--check]   (--check: only report, exit 69 if missing)
set -euo pipefail

packages=(build-essential cmake pkg-config ccache git
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libcpp-httplib-dev libcli11-dev
  libyaml-cpp-dev libpq-dev nlohmann-json3-dev catch2 libfmt-dev libsystemd-dev
  libmodbus-dev postgresql jq curl procps iproute2 prometheus groff clang-14 libclang-rt-14-dev
  systemd zsh fish dpkg-dev file
  tshark)  # tshark: the CURVE capture test (tests/integration/test_security.cpp)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${1:-}" = "--check" ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  exit 69
fi
echo "==> installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq </dev/null
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
