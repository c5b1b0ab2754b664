#!/usr/bin/env bash
# Tomorrow's day sheet of every location, as JSON, one file per location:
# DAYSHEET_DIR/daysheet-YYYY-MM-DD-<location>.json (for printing, or for a reminder system).
# Runs as the service account whose name and token are in ENV_FILE (see nightly.env.example);
# the `service` role may read the schedule but not change it.
#
#   daysheet.sh [ENV_FILE]              (default: ~/.config/hpms/nightly.env)
#
# Settings read from ENV_FILE: DAYSHEET_DIR (default /var/lib/hpms/daysheets) and, to pick
# the locations instead of taking all of them, DAYSHEET_LOCATIONS ("Riverside Main,Lakeside Clinic").
# "Tomorrow" is each location's own tomorrow, and the file is named after that date.
#
# The files name patients: they are written readable by their owner only, and every run is
# recorded in the audit trail as a read of the patients listed. Quiet on success; exits with
# hpms's exit code (docs/cli.md): 3 unknown location, 5 token refused, 1 database problem.
set -euo pipefail

env_file=${1:-$HOME/.config/hpms/nightly.env}
if [[ ! -r $env_file ]]; then
  echo "daysheet: cannot read $env_file" >&2
  exit 2
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

out_dir=${DAYSHEET_DIR:-/var/lib/hpms/daysheets}
umask 077
if ! mkdir -p "$out_dir"; then
  echo "daysheet: cannot create $out_dir" >&2
  exit 1
fi

# Every location with its time zone ("zone<TAB>name" lines): the file is named after the
# location's own tomorrow, the date `--date tomorrow` means there.
rc=0
listing=$(hpms locations list --json) || rc=$?
if (( rc != 0 )); then
  echo "daysheet: cannot list the locations (exit $rc)" >&2
  exit "$rc"
fi
declare -A zones=()
all=()
while IFS=$'\t' read -r zone name; do
  zones[$name]=$zone
  all+=("$name")
done < <(printf '%s' "$listing" |
  python3 -c 'import json, sys; [print(loc["tz"], loc["name"], sep="\t") for loc in json.load(sys.stdin)]')

locations=()
if [[ -n ${DAYSHEET_LOCATIONS:-} ]]; then
  IFS=',' read -r -a locations <<< "$DAYSHEET_LOCATIONS"
else
  locations=("${all[@]}")
fi
if (( ${#locations[@]} == 0 )); then
  echo "daysheet: no location to export" >&2
  exit 2
fi

for location in "${locations[@]}"; do
  location=${location#"${location%%[![:space:]]*}"}   # trim spaces around a name
  location=${location%"${location##*[![:space:]]}"}
  day=$(TZ=${zones[$location]:-} date -d tomorrow +%F)
  slug=$(printf '%s' "$location" | tr -cs 'A-Za-z0-9' '-' | tr 'A-Z' 'a-z')
  dest="$out_dir/daysheet-$day-${slug%-}.json"
  tmp="$dest.tmp"
  rc=0
  hpms appointments list --date tomorrow --location "$location" --json > "$tmp" || rc=$?
  if (( rc != 0 )); then
    rm -f "$tmp"
    echo "daysheet: day sheet of $location failed (exit $rc)" >&2
    exit "$rc"
  fi
  mv -f "$tmp" "$dest"   # readers never see half a file
done
exit 0
