#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests (user postgres,
# trust authentication): starts the local cluster, or installs PostgreSQL from Debian.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if command -v pg_isready >/dev/null && ready; then exit 0; fi

if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "installing PostgreSQL from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
config="/etc/postgresql/$version/main"
# Tests connect over TCP as postgres without a password.
if ! grep -q "chorus-tests" "$config/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust # chorus-tests\nhost all all ::1/128 trust # chorus-tests' "$config/pg_hba.conf"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster "$version" main restart
for _ in $(seq 1 60); do
  ready && exit 0
  sleep 0.5
done
echo "PostgreSQL did not start" >&2
exit 1
