"""What every service stands on: the context a call runs in (session, actor, clock, settings),
authentication and the permission table, the hash-chained audit trail, field encryption,
counters, input validation, local time, CSV rows, and the practice itself (organization,
locations, users, set-up, backups and keys)."""
