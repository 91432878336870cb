#!/usr/bin/env bash
# The first command: builds Chorus and runs `chorus demo` on the embedded default
# (SQLite files, a private nats-server, the network simulator).
set -euo pipefail
cd "$(dirname "$0")/.."

CHORUS_NATS_SERVER_BIN=$(scripts/ensure-nats.sh)
export CHORUS_NATS_SERVER_BIN
exec cargo run --quiet -p chorus -- demo "$@"
