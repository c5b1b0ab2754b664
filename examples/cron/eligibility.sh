#!/usr/bin/env bash
# The nightly eligibility request: one 270 file asking each patient's payer(s) whether the
# patients with a visit tomorrow are covered, written to ELIGIBILITY_DIR as
# elig-YYYY-MM-DD.270, ready to upload to the clearinghouse. Runs as the service account whose
# name and token are in ENV_FILE (see nightly.env.example); the `service` role may ask but
# not read the answers.
#
#   eligibility.sh [ENV_FILE]           (default: ~/.config/hpms/nightly.env)
#
# Settings read from ENV_FILE: ELIGIBILITY_DIR (default /var/spool/hpms/eligibility).
# "Tomorrow" is the first location's tomorrow, and the file is named after that date.
#
# Safe to run again: a question still waiting for its answer is asked again under the same
# trace number, not twice. A day without visits is not an error here: the script says
# nothing and writes no file. Quiet on success; the JSON summary (checks, patients, payers,
# patients skipped for lack of coverage) is kept in ELIGIBILITY_DIR/.last-request.json. Any
# other failure exits with hpms's exit code (docs/cli.md): 2 no billing profile
# (`hpms billing setup`) or no location NPI, 5 token refused, 1 database problem.
#
# The files name patients: they are written readable by their owner only. When the 271
# answer comes back, a biller or the front desk imports it: hpms eligibility import FILE.271
set -euo pipefail

env_file=${1:-$HOME/.config/hpms/nightly.env}
if [[ ! -r $env_file ]]; then
  echo "eligibility: cannot read $env_file" >&2
  exit 2
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

out_dir=${ELIGIBILITY_DIR:-/var/spool/hpms/eligibility}
umask 077
if ! mkdir -p "$out_dir"; then
  echo "eligibility: cannot create $out_dir" >&2
  exit 1
fi

# the first location's zone names the file after its own tomorrow (what --date tomorrow means)
rc=0
zone=$(hpms locations list --json |
  python3 -c 'import json, sys; locs = json.load(sys.stdin); print(locs[0]["tz"] if locs else "")') || rc=$?
if (( rc != 0 )); then
  echo "eligibility: cannot list the locations (exit $rc)" >&2
  exit "$rc"
fi
day=$(TZ=${zone:-UTC} date -d tomorrow +%F)
dest="$out_dir/elig-$day.270"
summary="$out_dir/.last-request.json"

rc=0
hpms eligibility request --date "$day" --out "$dest" --json > "$summary.tmp" 2> "$summary.err" || rc=$?
if (( rc == 0 )); then
  mv -f "$summary.tmp" "$summary"
  rm -f "$summary.err"
  exit 0
fi
if (( rc == 3 )) && grep -q "no appointments on" "$summary.err"; then   # nobody to ask about
  rm -f "$summary.tmp" "$summary.err"
  exit 0
fi
echo "eligibility: hpms eligibility request failed (exit $rc)" >&2
cat "$summary.err" >&2
rm -f "$summary.tmp" "$summary.err"
exit "$rc"
