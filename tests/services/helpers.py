"""Direct reads of the database for assertions (bypassing the services on purpose)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from hpms.db import get_engine

AUDIT_COLUMNS = (
    "seq",
    "at",
    "org_id",
    "user_id",
    "username",
    "action",
    "entity",
    "entity_id",
    "patient_id",
    "patient_ids",
    "fields",
    "detail",
    "prev_hash",
    "hash",
    "key_id",
)


def query(settings, sql: str, **params) -> list[dict]:
    with get_engine(settings).connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def scalar(settings, sql: str, **params):
    with get_engine(settings).connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def audit_rows(settings, after_seq: int = 0) -> list[dict]:
    """Audit events with seq > after_seq, oldest first, JSON columns decoded into `*_list`."""
    from hpms.models import AuditEvent

    cols = [getattr(AuditEvent, c) for c in AUDIT_COLUMNS]
    with get_engine(settings).connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                sa.select(*cols).where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq)
            ).mappings()
        ]
    for r in rows:
        r["patient_ids_list"] = json.loads(r["patient_ids"]) if r["patient_ids"] else None
        r["fields_list"] = json.loads(r["fields"]) if r["fields"] else None
    return rows


def last_seq(settings) -> int:
    return scalar(settings, "SELECT coalesce(max(seq), 0) FROM audit_event")


def audit_text(settings) -> str:
    """Every audit row rendered as text, to look for values that must never be there. The
    timestamp and the two hex digests are left out: they cannot carry a value, but their digits
    and hex letters would match short numbers by chance."""
    cols = [c for c in AUDIT_COLUMNS if c not in ("at", "hash", "prev_hash")]
    rows = query(settings, f"SELECT {', '.join(cols)} FROM audit_event ORDER BY seq")
    return "\n".join(" | ".join(str(r[c]) for c in cols) for r in rows)


def counts(settings, *tables: str) -> dict[str, int]:
    return {t: scalar(settings, f"SELECT count(*) FROM {t}") for t in tables}


WRITE_TABLES = ("patient", "coverage", "payer", "hpms_user", "user_role", "audit_event", "location")


def snapshot(settings) -> dict:
    """Row counts of every table a service writes, plus the MRN counter and audit head."""
    snap: dict = counts(settings, *WRITE_TABLES)
    snap["counter"] = query(settings, "SELECT name, value FROM counter ORDER BY name")
    snap["audit_head"] = query(settings, "SELECT last_seq, last_hash FROM audit_head")
    return snap
