#!/usr/bin/env bash
# Send what is due in the outbox (emails to patients), every few minutes, as the service
# account whose name and token are in ENV_FILE (see nightly.env.example). The mail server is
# HPMS_SMTP_URL there (or smtp_url in config.toml), e.g. smtp+starttls://user:password@host:587.
#
#   messages-send.sh [ENV_FILE]          (default: ~/.config/hpms/nightly.env)
#
# Quiet when all went; prints the summary when a message failed for good or was left unknown
# by a sender that stopped (both need a look: `hpms messages list --state failed,unknown`).
# Exit 75 means another sender holds the lock: the next run picks up what it leaves.
set -uo pipefail

env_file=${1:-$HOME/.config/hpms/nightly.env}
if [[ ! -r $env_file ]]; then
  echo "messages-send: cannot read $env_file" >&2
  exit 2
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a

summary=$(hpms messages send --json)
rc=$?
if (( rc == 75 )); then
  exit 0
fi
if (( rc != 0 )); then
  echo "messages-send: hpms messages send failed (exit $rc)" >&2
  exit "$rc"
fi
if ! grep -q '"failed": 0' <<<"$summary" || ! grep -q '"found_unknown": 0' <<<"$summary"; then
  printf 'messages-send: messages need a look\n%s\n' "$summary" >&2
fi
