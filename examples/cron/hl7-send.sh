#!/usr/bin/env bash
# Send what is due in the HL7 outbox (SIU and ADT messages to the practice's other systems),
# every few minutes, as the service account whose name and token are in ENV_FILE (see
# nightly.env.example).
#
#   hl7-send.sh [ENV_FILE]          (default: ~/.config/hpms/nightly.env)
#
# Quiet when all went; prints the summary when a message was refused by its receiver or left
# unknown by a sender that stopped (both need a look: `hpms hl7 list --state failed,unknown`).
# Exit 75 means another sender (or `hpms hl7 worker`) holds the lock: nothing to do here.
set -uo pipefail

env_file=${1:-$HOME/.config/hpms/nightly.env}
if [[ ! -r $env_file ]]; then
  echo "hl7-send: cannot read $env_file" >&2
  exit 2
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

summary=$(hpms hl7 send --json)
rc=$?
if (( rc == 75 )); then
  exit 0
fi
if (( rc != 0 )); then
  echo "hl7-send: hpms hl7 send failed (exit $rc)" >&2
  exit "$rc"
fi
if ! grep -q '"failed": 0' <<<"$summary" || ! grep -q '"found_unknown": 0' <<<"$summary"; then
  printf 'hl7-send: HL7 messages need a look\n%s\n' "$summary" >&2
fi
