#!/usr/bin/env bash
# The monthly patient statements: one file per patient who owes at least STATEMENTS_MIN_BALANCE
# with an amount open longer than STATEMENTS_OLDER_THAN, written to STATEMENTS_DIR/YYYY-MM/
# (statement-NNNNNN.pdf, named by statement id), ready for the mailing house or the printer.
# Runs as the service account whose name and token are in ENV_FILE (see nightly.env.example);
# the `service` role may generate statements but not read the ledger or record payments.
#
#   statements.sh [ENV_FILE]            (default: ~/.config/hpms/nightly.env)
#
# Settings read from ENV_FILE: STATEMENTS_DIR (default /var/spool/hpms/statements),
# STATEMENTS_MIN_BALANCE (default 5.00), STATEMENTS_OLDER_THAN (default 30d) and
# STATEMENTS_FORMAT (pdf, html or txt; default pdf).
#
# Each statement lists the activity since the patient's previous one, so run it once a
# month: a second run the same month writes new statements (with no new activity) for the
# same patients. The run's JSON summary (count, amount due, files) is kept in
# STATEMENTS_DIR/YYYY-MM/.run.json. The files name patients: they are written readable by
# their owner only. Quiet on success; any failure exits with hpms's exit code (docs/cli.md):
# 2 a bad setting or a directory that cannot be written, 5 token refused, 1 database problem.
set -eu

env_file=${1:-$HOME/.config/hpms/nightly.env}
if [ ! -r "$env_file" ]; then
  echo "statements: cannot read $env_file" >&2
  exit 2
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

month_dir=${STATEMENTS_DIR:-/var/spool/hpms/statements}/$(date +%Y-%m)
umask 077
if ! mkdir -p "$month_dir"; then
  echo "statements: cannot create $month_dir" >&2
  exit 1
fi

summary="$month_dir/.run.json"
rc=0
hpms statements generate --out "$month_dir" --min-balance "${STATEMENTS_MIN_BALANCE:-5.00}" \
  --older-than "${STATEMENTS_OLDER_THAN:-30d}" --format "${STATEMENTS_FORMAT:-pdf}" --json \
  > "$summary.tmp" 2> "$summary.err" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "statements: hpms statements generate failed (exit $rc)" >&2
  cat "$summary.err" >&2
  rm -f "$summary.tmp" "$summary.err"
  exit "$rc"
fi
mv -f "$summary.tmp" "$summary"
rm -f "$summary.err"
exit 0
