#!/usr/bin/env bash
# Post the remittance advice (835) files the clearinghouse dropped in ERA_INBOX: each file is
# posted whole or not at all (`hpms remits import`), then moved to ERA_INBOX/posted; a file
# hpms refuses (not an 835, does not balance, none of its claims billed here) is moved to
# ERA_INBOX/refused with the reason next to it (FILE.error) for a biller to look at.
# Runs as the service account whose name and token are in ENV_FILE (see nightly.env.example).
#
#   remits-import.sh [ENV_FILE]           (default: ~/.config/hpms/nightly.env)
#
# Safe to run again: a file already posted posts nothing (hpms keeps its SHA-256), and so
# does a payment already posted from another file (same interchange, payer and trace number).
# Quiet on success; each file's JSON summary (claims posted, unmatched, denied) is kept as
# ERA_INBOX/posted/FILE.json. Claims hpms did not bill are kept for `hpms remits unmatched`.
# Exit codes: 0 done (refused files are moved, not fatal), 5 token refused, 1 database problem.
set -euo pipefail

env_file=${1:-$HOME/.config/hpms/nightly.env}
if [[ ! -r $env_file ]]; then
  echo "remits-import: cannot read $env_file" >&2
  exit 2
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

inbox=${ERA_INBOX:-/var/spool/hpms/era}
umask 077
mkdir -p "$inbox/posted" "$inbox/refused"

shopt -s nullglob
for file in "$inbox"/*.835 "$inbox"/*.txt; do
  name=$(basename "$file")
  rc=0
  hpms remits import "$file" --json > "$inbox/posted/$name.json.tmp" 2> "$inbox/$name.err" || rc=$?
  case $rc in
    0)
      mv -f "$inbox/posted/$name.json.tmp" "$inbox/posted/$name.json"
      mv -f "$file" "$inbox/posted/$name"
      rm -f "$inbox/$name.err"
      ;;
    2 | 3)   # not an 835, does not balance, or none of its claims billed here
      rm -f "$inbox/posted/$name.json.tmp"
      mv -f "$file" "$inbox/refused/$name"
      mv -f "$inbox/$name.err" "$inbox/refused/$name.error"
      echo "remits-import: $name refused: $(cat "$inbox/refused/$name.error")" >&2
      ;;
    *)
      rm -f "$inbox/posted/$name.json.tmp"
      echo "remits-import: hpms remits import $name failed (exit $rc)" >&2
      cat "$inbox/$name.err" >&2
      rm -f "$inbox/$name.err"
      exit "$rc"
      ;;
  esac
done
