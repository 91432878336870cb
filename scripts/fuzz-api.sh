#!/usr/bin/env bash
# Property-based fuzzing of the Chorus HTTP API with Schemathesis.
#
# Starts `chorus run --target all` on the embedded default (SQLite and a private nats-server) in
# a fresh temporary data folder on free ports, creates the tenant `acme` and an admin user
# (`carol`), mints her token, and runs Schemathesis against the gateway's served
# /openapi.json with the checks:
#   not_a_server_error          no 5xx, whatever the input
#   status_code_conformance     every status code is documented for its operation
#   content_type_conformance    every Content-Type is documented for its status
#   response_schema_conformance every body matches its documented schema
# The server is always stopped at the end. Exits non-zero when Schemathesis reports a failure.
#
# Usage: scripts/fuzz-api.sh [CHORUS_BINARY] [extra `st run` options...]
#   CHORUS_BINARY: $1, else $CHORUS_BIN, else ${CARGO_TARGET_DIR:-$HOME/.cache/chorus-target}/debug/chorus
#   e.g. scripts/fuzz-api.sh "" --include-path-regex '^/v1/posts'
# Environment:
#   FUZZ_MAX_EXAMPLES  test cases per operation and phase [25]
#   FUZZ_WORKERS       concurrent Schemathesis workers [2]
#   FUZZ_SEED          fixed seed, to repeat a run (Schemathesis prints the seed it used)
#   FUZZ_ROLES         roles of the fuzzing user [admin curator approver advocate integrator]:
#                      every tenant role, so that no operation stops at 403
#   FUZZ_REPORT_DIR    where the JUnit and NDJSON reports go [kept temporary folder]
# CHORUS_* settings of the caller are ignored: the run is always on the embedded default.
#
# Left out: GET /v1/me/notifications/stream, an endless Server-Sent Events stream; every test
# case would hang until the request timeout, and its body has no schema to check.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

bin="${1:-${CHORUS_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/chorus-target}/debug/chorus}}"
shift || true
[ -x "$bin" ] || { echo "no chorus binary at $bin (build it: cargo build -p chorus)" >&2; exit 2; }
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
max_examples="${FUZZ_MAX_EXAMPLES:-25}"
workers="${FUZZ_WORKERS:-2}"
read -r -a roles <<<"${FUZZ_ROLES:-admin curator approver advocate integrator}"
user=carol

if command -v st >/dev/null; then
  st=(st)
else
  echo "installing schemathesis $SCHEMATHESIS_VERSION" >&2
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  st=(python3 -m schemathesis.cli) # the same interpreter as pip, whatever its bin folder
fi
echo "using $("${st[@]}" --version)"

# Everything of this run lives in one temporary folder: data, server log, reports, and the
# Schemathesis/Hypothesis caches (st runs from there, so nothing lands in the caller's folder).
work="$(mktemp -d "${TMPDIR:-/tmp}/chorus-fuzz.XXXXXX")"
report_dir="${FUZZ_REPORT_DIR:-$work/report}"
mkdir -p "$report_dir"
report_dir="$(cd "$report_dir" && pwd)"
server_pid=""
st_pid=""

stop_server() {
  [ -n "$server_pid" ] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true # chorus stops its nats-server itself
    for _ in $(seq 40); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.5; done
  fi
  # Whatever is left of its process group (chorus and the nats-server it started).
  kill -KILL -- "-$server_pid" 2>/dev/null || true
  server_pid=""
}

cleanup() {
  local status=$?
  [ -z "$st_pid" ] || kill -TERM "$st_pid" 2>/dev/null || true
  stop_server
  if [ "$status" -eq 0 ]; then
    rm -rf "$work"
  else
    echo "server log, reports and Schemathesis cache kept in $work" >&2
  fi
  [ -z "${FUZZ_REPORT_DIR:-}" ] || echo "reports in $report_dir" >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two free ports for the gateway and admin listeners, one for the network simulator.
read -r gateway_port admin_port netsim_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
base="http://127.0.0.1:$gateway_port"

nats_bin="$("$here/ensure-nats.sh")"
for name in $(compgen -e | grep '^CHORUS_' || true); do unset "$name"; done
export CHORUS_DATA_DIR="$work/data"
export CHORUS_GATEWAY__LISTEN="127.0.0.1:$gateway_port"
export CHORUS_ADMIN_LISTEN="127.0.0.1:$admin_port"
export CHORUS_NETSIM__LISTEN="127.0.0.1:$netsim_port"
export CHORUS_PUBLIC_URL="$base"
export CHORUS_NATS_SERVER_BIN="$nats_bin"
mkdir -p "$CHORUS_DATA_DIR"

echo "starting chorus on $base (data in $CHORUS_DATA_DIR)"
set -m # own process group, so that stop_server can also reach the nats-server child
"$bin" run --target all >"$work/chorus.log" 2>&1 &
server_pid=$!
set +m
for _ in $(seq 120); do
  curl -sf -o /dev/null "http://127.0.0.1:$admin_port/readyz" && break
  kill -0 "$server_pid" 2>/dev/null || { echo "chorus exited; its log:" >&2; tail -n 30 "$work/chorus.log" >&2; exit 1; }
  sleep 1
done
curl -sf -o /dev/null "http://127.0.0.1:$admin_port/readyz" || { echo "chorus not ready after 120 s" >&2; exit 1; }

# post TOKEN PATH JSON: fails loudly unless the gateway answers 2xx.
post() {
  local status
  status=$(curl -sS -o "$work/post.out" -w '%{http_code}' -X POST "$base$2" \
    -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$3")
  case "$status" in
    2??) ;;
    *) echo "POST $2 answered $status: $(cat "$work/post.out")" >&2; exit 1 ;;
  esac
}

operator="$("$bin" token --tenant acme --user ops --role operator)"
post "$operator" /v1/tenants '{"id":"acme","name":"Acme"}'
roles_json="$(printf '"%s",' "${roles[@]}")"
post "$operator" /v1/users "{\"id\":\"$user\",\"display_name\":\"Carol\",\"email\":\"carol@acme.example\",\"roles\":[${roles_json%,}]}"
role_args=()
for role in "${roles[@]}"; do role_args+=(--role "$role"); done
token="$("$bin" token --tenant acme --user "$user" "${role_args[@]}")"

# Schemathesis hooks, run before every request:
# - the fuzzer must not delete, deactivate or demote the user it is signed in as (it learns
#   `carol` from the API's own answers): otherwise every later request gets 401/403 and the run
#   means nothing. Those calls go to an unknown user instead (404).
# - an Idempotency-Key that Schemathesis took from the document's example (or any other valid
#   key it repeats) would make the gateway refuse most POSTs as a reuse of the key (422), so the
#   handlers behind them would never run: valid keys are replaced with a fresh UUID. Invalid keys
#   are kept, to keep testing their validation.
cat >"$work/hooks.py" <<'EOF'
import os
import re
import uuid

import schemathesis

CALLER = os.environ["FUZZ_CALLER_ID"]
VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.method.upper() in ("DELETE", "PUT", "PATCH") and case.path.startswith(
        ("/scim/v2/Users/", "/v1/users/")
    ):
        for name, value in (case.path_parameters or {}).items():
            if str(value).strip().lower() == CALLER.lower():
                case.path_parameters[name] = "fuzz-not-" + CALLER
    for name, value in list((case.headers or {}).items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.fullmatch(value):
            case.headers[name] = str(uuid.uuid4())
EOF

st_args=(
  run "$base/openapi.json"
  --header "Authorization: Bearer $token"
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
  --exclude-path /v1/me/notifications/stream
  --max-examples "$max_examples"
  --workers "$workers"
  --request-timeout 15
  --report junit,ndjson --report-dir "$report_dir"
)
[ -z "${FUZZ_SEED:-}" ] || st_args+=(--seed "$FUZZ_SEED")
st_args+=("$@")

echo "st ${st_args[*]}" | sed 's/Bearer [^ ]*/Bearer <token>/'
run_st() {
  # In the background, so that a signal to this script stops the run at once (see cleanup).
  (cd "$work" && FUZZ_CALLER_ID="$user" SCHEMATHESIS_HOOKS="$work/hooks.py" exec "${st[@]}" "${st_args[@]}") \
    > "$work/st.out" 2>&1 &
  st_pid=$!
  status=0
  wait "$st_pid" || status=$?
  st_pid=""
  cat "$work/st.out"
}
run_st
# Schemathesis can fail inside itself (Hypothesis's caches shared by its worker threads raise
# a KeyError, reported as "Runtime Error" with no check failing): that is no finding about the
# API, so the run is repeated once. A failed check is never repeated.
if [ "$status" -ne 0 ] && grep -q "Runtime Error" "$work/st.out" && ! grep -q "^Failures:" "$work/st.out"; then
  echo "Schemathesis failed inside itself, with no check failing; running it once more" >&2
  run_st
fi
exit "$status"
