#!/usr/bin/env bash
# The nightly billing run: every signed encounter becomes a scrubbed, priced claim, and one
# 837P file per payer and billing location is written to CLAIMS_DIR, ready to upload to the
# clearinghouse. Runs as the service account whose name and token are in ENV_FILE (see
# nightly.env.example); the `service` role may run billing but not read or change claims.
#
#   billing-run.sh [ENV_FILE]           (default: ~/.config/hpms/nightly.env)
#
# Settings read from ENV_FILE: CLAIMS_DIR (default /var/spool/hpms/claims); BILLING_LOCK_RETRIES
# (default 0) and BILLING_LOCK_WAIT (seconds, default 300) to wait for a run that holds the lock.
#
# Safe to run again: a rerun bills nothing twice and rewrites a file a crashed run left
# half-written (same name, same control numbers). Exit 75 from hpms means another billing
# run holds the lock: that one does the work, so after the retries this script exits 0 and
# says nothing. Quiet on success; the run's JSON summary (run id, counts, files) is kept in
# CLAIMS_DIR/.last-run.json. Any other failure exits with hpms's exit code (docs/cli.md):
# 2 no billing profile (`hpms billing setup`) or CLAIMS_DIR not writable, 5 token refused,
# 1 database problem.
#
# The files name patients: they are written readable by their owner only. After uploading a
# file, a biller marks it: hpms claims mark-submitted FILE
set -euo pipefail

env_file=${1:-$HOME/.config/hpms/nightly.env}
if [[ ! -r $env_file ]]; then
  echo "billing-run: cannot read $env_file" >&2
  exit 2
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

claims_dir=${CLAIMS_DIR:-/var/spool/hpms/claims}
retries=${BILLING_LOCK_RETRIES:-0}
wait_s=${BILLING_LOCK_WAIT:-300}
umask 077
if ! mkdir -p "$claims_dir"; then
  echo "billing-run: cannot create $claims_dir" >&2
  exit 1
fi

summary="$claims_dir/.last-run.json"
attempt=0
while true; do
  rc=0
  hpms billing run --out "$claims_dir" --json > "$summary.tmp" 2> "$summary.err" || rc=$?
  if (( rc == 0 )); then
    mv -f "$summary.tmp" "$summary"
    rm -f "$summary.err"
    exit 0
  fi
  if (( rc == 75 )); then   # another run holds the lock
    if (( attempt < retries )); then
      attempt=$((attempt + 1))
      sleep "$wait_s"
      continue
    fi
    rm -f "$summary.tmp" "$summary.err"
    exit 0
  fi
  echo "billing-run: hpms billing run failed (exit $rc)" >&2
  cat "$summary.err" >&2
  rm -f "$summary.tmp" "$summary.err"
  exit "$rc"
done
