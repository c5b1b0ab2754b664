#!/usr/bin/env bash
# Nightly online backup of an hpms SQLite database: one dated file per day in BACKUP_DIR,
# files older than KEEP_DAYS days removed. Runs as the service account whose name and token
# are in ENV_FILE (see nightly.env.example), so the audit trail shows who made the backup.
#
#   nightly-backup.sh [ENV_FILE]        (default: ~/.config/hpms/nightly.env)
#
# Quiet on success, so cron mails only failures. Exits with hpms's exit code (docs/cli.md):
# 1 database or schema problem, 2 bad setting, 4 conflict, 5 token refused.
# The key file is deliberately NOT copied here: keep it apart from these backups
# (docs/admin.md, "Backups"). PostgreSQL: use pg_dump instead.
set -uo pipefail

env_file=${1:-$HOME/.config/hpms/nightly.env}
if [[ ! -r $env_file ]]; then
  echo "nightly-backup: cannot read $env_file" >&2
  exit 2
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

backup_dir=${BACKUP_DIR:-/var/backups/hpms}
keep_days=${KEEP_DAYS:-14}
dest="$backup_dir/hpms-$(date +%F).db"

if ! mkdir -p -m 700 "$backup_dir"; then
  echo "nightly-backup: cannot create $backup_dir" >&2
  exit 1
fi

# --yes: a second run on the same day replaces that day's file instead of failing.
hpms db backup "$dest" --yes --json >/dev/null
rc=$?
if (( rc != 0 )); then
  echo "nightly-backup: backup to $dest failed (exit $rc)" >&2
  exit "$rc"
fi

find "$backup_dir" -maxdepth 1 -type f -name 'hpms-*.db' -mtime +"$keep_days" -delete
exit 0
