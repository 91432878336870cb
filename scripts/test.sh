#!/usr/bin/env bash
# The test command: every test of the workspace against a real nats-server and real
# databases (a fresh SQLite file or PostgreSQL database per test).
set -euo pipefail
cd "$(dirname "$0")/.."

CHORUS_NATS_SERVER_BIN=$(scripts/ensure-nats.sh)
export CHORUS_NATS_SERVER_BIN
scripts/ensure-postgres.sh
export CHORUS_TEST_POSTGRES_URL="${CHORUS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked

exec cargo nextest run --workspace --no-fail-fast "$@"
