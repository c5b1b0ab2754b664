#!/usr/bin/env bash
# Make a PostgreSQL server reachable for the test suite at 127.0.0.1:5432 (database `test`,
# trust auth for local TCP): start the installed cluster when it is down, install it when absent.
# Needs root for the start/install steps; does nothing when a server already answers.
set -euo pipefail

ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 -q; }

if ready; then
  echo "postgres: already running"
  exit 0
fi

if ! ls /etc/postgresql/*/main/postgresql.conf >/dev/null 2>&1; then
  echo "postgres: not installed; installing from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q "hpms-test trust" "$hba"; then
  # Trust local TCP connections (a test-only server), ahead of the packaged rules.
  sed -i '1i host all all 127.0.0.1/32 trust # hpms-test trust\nhost all all ::1/128 trust # hpms-test trust' "$hba"
fi
echo "postgres: starting cluster $version/main"
pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
for _ in $(seq 1 60); do
  ready && break
  sleep 0.5
done
ready || { echo "postgres: did not come up" >&2; exit 1; }
pg_ctlcluster "$version" main reload >/dev/null 2>&1 || true
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
fi
echo "postgres: ready"
