"""The append-only, hash-chained audit trail: record, list and verify.

Each event stores the hash of the one before; the single `audit_head` row, locked by every
appender, holds the last sequence number so that concurrent writers cannot fork the chain.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.db import bulk_insert
from hpms.models import AuditEvent, AuditEventOut, AuditHead
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.services.platform.context import Ctx

GENESIS = "0" * 64


@dataclass(frozen=True)
class Event:
    action: str
    entity: str
    entity_id: str | int | None = None
    patient_id: int | None = None
    patient_ids: Sequence[int] | None = None
    fields: Sequence[str] | None = None
    detail: str | None = None


def _canonical(row: dict[str, Any]) -> bytes:
    at: dt.datetime = row["at"]
    payload = [
        row["seq"],
        at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        row["org_id"],
        row["user_id"],
        row["username"],
        row["action"],
        row["entity"],
        row["entity_id"],
        row["patient_id"],
        row["patient_ids"],
        row["fields"],
        row["detail"],
        row["prev_hash"],
    ]
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()


def event_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(row)).hexdigest()


@functools.lru_cache(maxsize=256)
def _fields_json(fields: tuple[str, ...]) -> str:
    """Field-name lists repeat (an import's rows share a handful): encode each once."""
    return json.dumps(sorted(set(fields)), separators=(",", ":"))


# Built once: every write of the application appends to the chain.
_HEAD = AuditHead.__table__
_LOCK_HEAD = sa.select(_HEAD.c.last_seq, _HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
_MOVE_HEAD = (
    sa.update(_HEAD).where(_HEAD.c.id == 1).values(last_seq=sa.bindparam("seq"), last_hash=sa.bindparam("hash"))
)


def _lock_head(session: Session) -> tuple[int, str]:
    row = session.connection().execute(_LOCK_HEAD).one()
    return row.last_seq, row.last_hash


def record(ctx: Ctx, event: Event) -> None:
    """Append one event in the caller's transaction."""
    record_many(ctx, [event])


def record_list(ctx: Ctx, entity: str, patient_ids: Iterable[int], count: int, detail: str | None = None) -> None:
    """A list read: one event naming every patient shown (none when nothing was shown)."""
    if count:
        ids = sorted(set(patient_ids))
        record(ctx, Event("read", entity, None, patient_ids=ids, detail=detail or f"list of {count}"))


def record_many(ctx: Ctx, events: Iterable[Event]) -> int:
    """Append events in order, chained, in the caller's transaction; returns how many."""
    session = ctx.session
    seq, prev = _lock_head(session)
    now = ctx.now()
    rows: list[dict[str, Any]] = []
    for ev in events:
        seq += 1
        # Truncate to microseconds as stored, so the hash recomputes identically on read.
        row = {
            "seq": seq,
            "at": now,
            "org_id": ctx.actor.org_id,
            "user_id": ctx.actor.user_id,
            "username": ctx.actor.username,
            "action": ev.action,
            "entity": ev.entity,
            "entity_id": None if ev.entity_id is None else str(ev.entity_id),
            "patient_id": ev.patient_id,
            "patient_ids": None
            if ev.patient_ids is None
            else json.dumps(sorted(set(ev.patient_ids)), separators=(",", ":")),
            "fields": None if ev.fields is None else _fields_json(tuple(ev.fields)),
            "detail": ev.detail,
            "prev_hash": prev,
        }
        row["hash"] = prev = event_hash(row)
        rows.append(row)
        if len(rows) >= 5000:
            bulk_insert(session, AuditEvent.__table__, rows)
            rows = []
    if rows:
        bulk_insert(session, AuditEvent.__table__, rows)
    session.connection().execute(_MOVE_HEAD, {"seq": seq, "hash": prev})
    return seq


def _out(e: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        seq=e.seq,
        at=e.at,
        username=e.username,
        action=e.action,
        entity=e.entity,
        entity_id=e.entity_id,
        patient_id=e.patient_id,
        patient_ids=json.loads(e.patient_ids) if e.patient_ids else None,
        fields=json.loads(e.fields) if e.fields else None,
        detail=e.detail,
    )


def log(
    ctx: Ctx,
    *,
    patient_id: int | None = None,
    username: str | None = None,
    since: dt.datetime | None = None,
    limit: int | None = 1000,
) -> list[AuditEventOut]:
    """Events, newest first, filtered; a patient filter also finds list/search events naming it.
    Raises PermissionDenied."""
    require(ctx.actor, "audit.read")
    stmt = sa.select(AuditEvent)
    if patient_id is not None:
        pattern = f"%[{patient_id}]%", f"%[{patient_id},%", f"%,{patient_id},%", f"%,{patient_id}]%"
        stmt = stmt.where(
            sa.or_(AuditEvent.patient_id == patient_id, *[col(AuditEvent.patient_ids).like(p) for p in pattern])
        )
    if username is not None:
        stmt = stmt.where(AuditEvent.username == username)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    stmt = stmt.order_by(AuditEvent.seq.desc())
    if limit:
        stmt = stmt.limit(limit)
    return [_out(e) for e in ctx.session.scalars(stmt)]


@dataclass
class VerifyResult:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "events": self.events, "first_bad_seq": self.first_bad_seq, "problem": self.problem}


def verify(ctx: Ctx, *, batch: int = 5000) -> VerifyResult:
    """Walk the chain; report the first event that was edited, removed or reordered.
    Raises PermissionDenied."""
    require(ctx.actor, "audit.verify")
    session = ctx.session
    cols = [
        AuditEvent.seq,
        AuditEvent.at,
        AuditEvent.org_id,
        AuditEvent.user_id,
        AuditEvent.username,
        AuditEvent.action,
        AuditEvent.entity,
        AuditEvent.entity_id,
        AuditEvent.patient_id,
        AuditEvent.patient_ids,
        AuditEvent.fields,
        AuditEvent.detail,
        AuditEvent.prev_hash,
        AuditEvent.hash,
    ]
    expected_seq, prev, count = 1, GENESIS, 0
    last_seq = 0
    while True:
        rows = (
            session.execute(
                sa.select(*cols).where(AuditEvent.seq >= expected_seq).order_by(AuditEvent.seq).limit(batch)
            )
            .mappings()
            .all()
        )
        if not rows:
            break
        for r in rows:
            row = dict(r)
            if row["seq"] != expected_seq:
                return VerifyResult(
                    False, count, expected_seq, f"event {expected_seq} is missing (next is {row['seq']})"
                )
            if row["prev_hash"] != prev:
                return VerifyResult(
                    False, count, row["seq"], f"event {row['seq']} does not follow event {row['seq'] - 1}"
                )
            if event_hash(row) != row["hash"]:
                return VerifyResult(False, count, row["seq"], f"event {row['seq']} was altered")
            prev, expected_seq, last_seq = row["hash"], row["seq"] + 1, row["seq"]
            count += 1
    head_seq, head_hash = session.execute(
        sa.select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1)
    ).one()
    if head_seq != last_seq or head_hash != prev:
        bad = last_seq + 1 if head_seq > last_seq else head_seq
        return VerifyResult(False, count, bad, f"the chain ends at event {last_seq} but the head records {head_seq}")
    return VerifyResult(True, count)
