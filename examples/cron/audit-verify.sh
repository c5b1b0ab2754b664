#!/usr/bin/env bash
# Daily check that the audit trail is intact (sealed chain) and the database is healthy,
# as the service account whose name and token are in ENV_FILE (see nightly.env.example).
# With CHECKPOINT_DIR set there (a folder the database's users cannot rewrite, e.g. a mount
# of another machine), the trail is also checked against the newest checkpoint in it, and a
# new checkpoint is written there.
#
#   audit-verify.sh [ENV_FILE]          (default: ~/.config/hpms/nightly.env)
#
# Quiet on success, so cron mails only problems. Exits with hpms's exit code: 1 when the
# audit trail is broken (the report names the first bad event) or the database check
# fails, 5 when the token is refused.
set -uo pipefail

env_file=${1:-$HOME/.config/hpms/nightly.env}
if [[ ! -r $env_file ]]; then
  echo "audit-verify: cannot read $env_file" >&2
  exit 2
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

checkpoint_dir=${CHECKPOINT_DIR:-}
latest=
if [[ -n $checkpoint_dir ]]; then
  latest=$(ls -1 "$checkpoint_dir"/audit-checkpoint-*.json 2>/dev/null | tail -n 1)
fi
if [[ -n $latest ]]; then
  report=$(hpms audit verify --json --checkpoint "$latest")
else
  report=$(hpms audit verify --json)
fi
rc=$?
if (( rc != 0 )); then
  printf 'audit-verify: audit trail not verified (exit %d)\n%s\n' "$rc" "$report" >&2
  exit "$rc"
fi

if [[ -n $checkpoint_dir ]]; then
  hpms audit checkpoint -o "$checkpoint_dir/audit-checkpoint-$(date -u +%Y%m%dT%H%M%SZ).json" || exit $?
fi

report=$(hpms db check --json)
rc=$?
if (( rc != 0 )); then
  printf 'audit-verify: database check failed (exit %d)\n%s\n' "$rc" "$report" >&2
  exit "$rc"
fi
exit 0
