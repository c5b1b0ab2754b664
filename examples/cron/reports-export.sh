#!/usr/bin/env bash
# Last month's reports as xlsx files, on the first of the month:
# REPORTS_DIR/NAME-YYYY-MM-DD-YYYY-MM-DD.xlsx (first and last day of the month).
# Runs as the service account whose name and token are in ENV_FILE (see nightly.env.example);
# the `service` role may run the money reports (reports.revenue).
#
#   reports-export.sh [ENV_FILE]        (default: ~/.config/hpms/nightly.env)
#
# Settings read from ENV_FILE: REPORTS_DIR (default /var/lib/hpms/reports) and, to pick the
# reports, REPORTS ("charges claims-summary"; default below). Each file is written under a
# temporary name and renamed by hpms, so a failed export leaves no file. Quiet on success;
# exits with hpms's exit code (docs/cli.md): 3 unknown report, 5 token refused, 1 database problem.
set -euo pipefail

env_file=${1:-$HOME/.config/hpms/nightly.env}
if [[ ! -r $env_file ]]; then
  echo "reports-export: cannot read $env_file" >&2
  exit 2
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

out_dir=${REPORTS_DIR:-/var/lib/hpms/reports}
umask 077
if ! mkdir -p "$out_dir"; then
  echo "reports-export: cannot create $out_dir" >&2
  exit 1
fi

read -r -a names <<< "${REPORTS:-appointments-by-day charges charges-by-code claims-summary ar-aging provider-productivity}"
for name in "${names[@]}"; do
  rc=0
  hpms reports export "$name" --period last-month --format xlsx -o "$out_dir/$name-{from}-{to}.xlsx" || rc=$?
  if (( rc != 0 )); then
    echo "reports-export: $name failed (exit $rc)" >&2
    exit "$rc"
  fi
done
exit 0
