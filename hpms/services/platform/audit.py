"""The append-only, sealed audit trail: record, list, verify, checkpoint.

Each event stores the seal of the one before and its own seal: an HMAC-SHA256 under the audit
key, which is derived from the practice key and never stored in the database, so an event
inserted, edited or re-chained by someone who can write the database but lacks the key file is
found by `verify`. The single `audit_head` row, locked by every appender, holds the last
sequence number and seal (itself sealed) so that concurrent writers cannot fork the chain and
a cut tail shows. A checkpoint, kept outside the database, shows a cut behind it even when the
head was rewound with a seal copied from an older state.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlmodel import col

from hpms.db import bulk_insert
from hpms.errors import EncryptionKeyError, ValidationError
from hpms.models import AuditEvent, AuditEventOut, AuditHead
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.models import Actor
    from hpms.services.platform.crypto import KeyRing


class Ctx(Protocol):
    """What the audit trail takes of a service context (hpms.services.platform.context.Ctx),
    named here so that the context, which records refusals, may import this module."""

    session: Session
    actor: Actor

    def now(self) -> dt.datetime: ...

    @property
    def key_ring(self) -> KeyRing: ...


GENESIS = "0" * 64
_FEW = 20  # appends up to this many events run on the driver cursor


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
    """The unkeyed digest of events written before sealing (key_id None)."""
    return hashlib.sha256(_canonical(row)).hexdigest()


def event_seal(row: dict[str, Any], key: bytes) -> str:
    """The seal of an event: HMAC-SHA256 over its canonical form and the id of the sealing key."""
    return hmac.new(key, _canonical(row) + b"|" + str(row["key_id"]).encode(), hashlib.sha256).hexdigest()


def head_seal(seq: int, last: str, kid: str, key: bytes) -> str:
    return hmac.new(key, f"head|{seq}|{last}|{kid}".encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=256)
def _fields_json(fields: tuple[str, ...]) -> str:
    """Field-name lists repeat (an import's rows share a handful): encode each once."""
    return json.dumps(sorted(set(fields)), separators=(",", ":"))


# Built once: every write of the application appends to the chain.
_HEAD = AuditHead.__table__
_LOCK_HEAD = sa.select(_HEAD.c.last_seq, _HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
_MOVE_HEAD = (
    sa.update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(
        last_seq=sa.bindparam("seq"),
        last_hash=sa.bindparam("hash"),
        mac=sa.bindparam("mac"),
        key_id=sa.bindparam("kid"),
    )
)


def _lock_head(session: Session) -> tuple[int, str]:
    session.info.pop(_HELD, None)  # the head moves past what was held
    row = session.connection().execute(_LOCK_HEAD).one()
    return row.last_seq, row.last_hash


# The head as read earlier in the transaction on SQLite, whose transactions see one state of the
# database from their first read (a writer holds the write lock from BEGIN IMMEDIATE; a reader
# that later writes is refused if another wrote in between): (transaction, last_seq, last_hash),
# kept up to date by the appends, good for that transaction (or savepoint) alone.
_HELD = "hpms_audit_head"
# the head as a transaction's first statement reads it with what it reads anyway
HEAD_SEQ = sa.select(_HEAD.c.last_seq).where(_HEAD.c.id == 1).scalar_subquery().label("audit_last_seq")
HEAD_HASH = sa.select(_HEAD.c.last_hash).where(_HEAD.c.id == 1).scalar_subquery().label("audit_last_hash")


def _current(session: Session) -> object:
    return session.get_nested_transaction() or session.get_transaction()


def hold_head(session: Session, seq: int | None, last: str | None) -> None:
    """Note the head read (by HEAD_SEQ and HEAD_HASH) in this SQLite transaction, so that the
    next append needs not read it again."""
    if seq is not None and last is not None and session.get_bind().dialect.name == "sqlite":
        session.info[_HELD] = (_current(session), seq, last)


_EVENT_COLUMNS = (
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
    "key_id",
    "hash",
)


@functools.cache
def _driver_sql(dialect: str) -> tuple[str, str, str]:
    """The head lock, event insert and head move of a short append as driver SQL: an append
    of a few events (every write of a clinic's day) runs them on the driver, without the
    statement machinery around them."""
    mark = "?" if dialect == "sqlite" else "%s"
    lock = "SELECT last_seq, last_hash FROM audit_head WHERE id = 1" + (" FOR UPDATE" if dialect != "sqlite" else "")
    cols = ", ".join(_EVENT_COLUMNS)
    insert = f"INSERT INTO audit_event ({cols}) VALUES ({', '.join([mark] * len(_EVENT_COLUMNS))})"
    move = f"UPDATE audit_head SET last_seq = {mark}, last_hash = {mark}, mac = {mark}, key_id = {mark} WHERE id = 1"
    return lock, insert, move


def _append_few(
    session: Session,
    ring_kid: str,
    key: bytes,
    ctx: Ctx,
    events: list[Event] | Callable[[], list[Event]],
) -> int:
    """record_many for a handful of events, on the driver cursor of the session's connection;
    `events` may be a function asked once the head lock is sent (see record_after). Returns
    the sequence number of the last event, 0 when `events()` gave none."""
    conn = session.connection()
    dialect = conn.dialect
    lock, insert, move = _driver_sql(dialect.name)
    at_bind = AuditEvent.__table__.c.at.type._cached_bind_processor(dialect)
    dbapi_error = dialect.loaded_dbapi.Error
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    statement = lock
    held = session.info.pop(_HELD, None)
    try:
        if held is not None and held[0] is _current(session):
            head: tuple[int, str] | None = (held[1], held[2])
        else:
            cur.execute(lock)
            head = None
        if callable(events):  # the events, asked for once the head lock is on its way (or held)
            events = events()
            if not events:
                if held is not None and head is not None:
                    session.info[_HELD] = held  # nothing appended: the head held is still the head
                return 0
        seq, prev = head if head is not None else cur.fetchone()
        rows = _event_rows(ctx, events, seq, prev, ring_kid, key, ctx.now())
        seq, prev = rows[-1]["seq"], rows[-1]["hash"]
        params = []
        for row in rows:
            values = [row[c] for c in _EVENT_COLUMNS]
            values[1] = at_bind(values[1]) if at_bind else values[1]
            params.append(tuple(values))
        statement = insert
        cur.executemany(insert, params)
        statement = move
        cur.execute(move, (seq, prev, head_seal(seq, prev, ring_kid, key), ring_kid))
    except dbapi_error as exc:  # raised as SQLAlchemy raises it (a locked database, a lost connection)
        raise sa.exc.DBAPIError.instance(statement, None, exc, dbapi_error) from exc
    finally:
        cur.close()
    if dialect.name == "sqlite":
        session.info[_HELD] = (_current(session), seq, prev)
    return seq


def _event_rows(
    ctx: Ctx, events: Iterable[Event], seq: int, prev: str, kid: str, key: bytes, now: dt.datetime
) -> list[dict[str, Any]]:
    """The rows of `events` appended after event `seq` (sealed `prev`), each sealed and chained."""
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
            "key_id": kid,
        }
        row["hash"] = prev = event_seal(row, key)
        rows.append(row)
    return rows


def record(ctx: Ctx, event: Event) -> None:
    """Append one event in the caller's transaction."""
    record_many(ctx, [event])


def record_list(ctx: Ctx, entity: str, patient_ids: Iterable[int], count: int, detail: str | None = None) -> None:
    """A list read: one event naming every patient shown (none when nothing was shown)."""
    if count:
        ids = sorted(set(patient_ids))
        record(ctx, Event("read", entity, None, patient_ids=ids, detail=detail or f"list of {count}"))


def record_after(ctx: Ctx, events: Callable[[], list[Event]]) -> int:
    """Append, as record_many does for a few events, those that `events()` returns, asked only
    once the head lock has been sent: in hpms.db.commit_pipelined a statement the events depend
    on (sent before) and the lock then come back in one round trip. No event, nothing appended
    (the head stays locked to the end of the transaction). Returns the sequence number of the
    last event appended, 0 when none was."""
    ring = ctx.key_ring  # before the head lock: a missing key refuses the write, holding nothing
    kid = ring.active
    return _append_few(ctx.session, kid, ring.audit_keys()[kid], ctx, events)


def record_many(ctx: Ctx, events: Iterable[Event]) -> int:
    """Append events in order, chained, in the caller's transaction; returns how many."""
    session = ctx.session
    ring = ctx.key_ring  # before the head lock: a missing key refuses the write, holding nothing
    kid = ring.active
    key = ring.audit_keys()[kid]
    if isinstance(events, (list, tuple)) and 0 < len(events) <= _FEW:
        return _append_few(session, kid, key, ctx, list(events))
    seq, prev = _lock_head(session)
    now = ctx.now()
    pending = iter(events)
    while True:
        chunk = list(itertools.islice(pending, 5000))
        if not chunk:
            break
        rows = _event_rows(ctx, chunk, seq, prev, kid, key, now)
        seq, prev = rows[-1]["seq"], rows[-1]["hash"]
        bulk_insert(session, AuditEvent.__table__, rows)
    session.connection().execute(
        _MOVE_HEAD, {"seq": seq, "hash": prev, "mac": head_seal(seq, prev, kid, key), "kid": kid}
    )
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
    stmt = _filtered(sa.select(AuditEvent), patient_id=patient_id, username=username, since=since)
    stmt = stmt.order_by(AuditEvent.seq.desc())
    if limit:
        stmt = stmt.limit(limit)
    return [_out(e) for e in ctx.session.scalars(stmt)]


def count(
    ctx: Ctx, *, patient_id: int | None = None, username: str | None = None, since: dt.datetime | None = None
) -> int:
    """How many events `log` would return without a limit. Raises PermissionDenied."""
    require(ctx.actor, "audit.read")
    stmt = _filtered(
        sa.select(sa.func.count()).select_from(AuditEvent), patient_id=patient_id, username=username, since=since
    )
    return int(ctx.session.execute(stmt).scalar_one())


def _filtered(stmt: Any, *, patient_id: int | None, username: str | None, since: dt.datetime | None) -> Any:
    if patient_id is not None:
        pattern = f"%[{patient_id}]%", f"%[{patient_id},%", f"%,{patient_id},%", f"%,{patient_id}]%"
        stmt = stmt.where(
            sa.or_(AuditEvent.patient_id == patient_id, *[col(AuditEvent.patient_ids).like(p) for p in pattern])
        )
    if username is not None:
        stmt = stmt.where(AuditEvent.username == username)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    return stmt


@dataclass
class VerifyResult:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str | None = None
    keys: list[str] = field(default_factory=list)  # ids of the practice keys that sealed the events
    checkpoint: dict[str, object] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "events": self.events,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "sealed_with": self.keys,
            "checkpoint": self.checkpoint,
        }


CHECKPOINT_FORMAT = "hpms-audit-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    """The head of the chain at one moment, signed with the audit key, kept outside the database."""

    seq: int
    seal: str
    at: str
    key_id: str
    signature: str

    def signed_part(self) -> bytes:
        body = [CHECKPOINT_FORMAT, self.seq, self.seal, self.at, self.key_id]
        return json.dumps(body, separators=(",", ":")).encode()

    def as_dict(self) -> dict[str, object]:
        return {
            "format": CHECKPOINT_FORMAT,
            "seq": self.seq,
            "seal": self.seal,
            "at": self.at,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def parse_checkpoint(text: str, field_name: str = "checkpoint") -> Checkpoint:
    """A checkpoint read back from its JSON text; ValidationError naming what is wrong."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValidationError(field_name, "is not a checkpoint (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValidationError(field_name, f"is not a checkpoint (format is not {CHECKPOINT_FORMAT})")
    try:
        cp = Checkpoint(
            seq=int(data["seq"]),
            seal=str(data["seal"]),
            at=str(data["at"]),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(field_name, f"is not a checkpoint (no valid {exc})") from None
    if cp.seq < 0:
        raise ValidationError(field_name, "is not a checkpoint (negative sequence number)")
    return cp


def _sign(cp_body: Checkpoint, key: bytes) -> str:
    return hmac.new(key, cp_body.signed_part(), hashlib.sha256).hexdigest()


# The columns as stored: the time unconverted, so that a mangled value is reported, not raised.
_COLS = [
    AuditEvent.seq,
    sa.type_coerce(AuditEvent.at, sa.String).label("at"),
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
    AuditEvent.key_id,
]


def _stored_time(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, str):
        when = dt.datetime.fromisoformat(value)
    else:
        raise ValueError(f"time {value!r} is not a timestamp")
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


class _Broken(Exception):
    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.problem = seq, problem


@dataclass
class _Walk:
    """The state of one walk along the chain."""

    keys: dict[str, bytes]
    allow_unsealed: bool = False
    checkpoint: Checkpoint | None = None
    expected_seq: int = 1
    prev: str = GENESIS
    count: int = 0
    last_seq: int = 0
    used: set[str] = field(default_factory=set)
    checkpoint_seen: bool = False

    def step(self, row: dict[str, Any]) -> None:
        seq = row["seq"]
        if seq != self.expected_seq:
            raise _Broken(self.expected_seq, f"event {self.expected_seq} is missing (next is {seq})")
        if row["prev_hash"] != self.prev:
            raise _Broken(seq, f"event {seq} does not follow event {seq - 1}")
        try:
            row["at"] = _stored_time(row["at"])
            kid = row["key_id"]
            if kid is None:
                if not self.allow_unsealed:
                    raise _Broken(seq, f"event {seq} is not sealed with the practice key")
                good = event_hash(row) == row["hash"]
            else:
                key = self.keys.get(kid)
                if key is None:
                    raise _Broken(seq, f"event {seq} was sealed with key {kid}, which the key ring does not hold")
                self.used.add(kid)
                good = hmac.compare_digest(event_seal(row, key), str(row["hash"]))
        except (ValueError, TypeError, OverflowError, AttributeError) as exc:
            raise _Broken(seq, f"event {seq} is malformed: {exc}") from None
        if not good:
            raise _Broken(seq, f"event {seq} was altered")
        cp = self.checkpoint
        if cp is not None and seq == cp.seq:
            if row["hash"] != cp.seal:
                raise _Broken(seq, f"event {seq} differs from the checkpoint of {cp.at}")
            self.checkpoint_seen = True
        self.prev, self.expected_seq, self.last_seq = row["hash"], seq + 1, seq
        self.count += 1


def _walk(session: Session, walk: _Walk, batch: int) -> None:
    """Every event in order through `walk`; raises _Broken at the first bad one."""
    while True:
        rows = (
            session.execute(
                sa.select(*_COLS).where(AuditEvent.seq >= walk.expected_seq).order_by(AuditEvent.seq).limit(batch)
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        for r in rows:
            walk.step(dict(r))


def _check_head(session: Session, walk: _Walk) -> None:
    head = session.execute(
        sa.select(AuditHead.last_seq, AuditHead.last_hash, AuditHead.mac, AuditHead.key_id).where(AuditHead.id == 1)
    ).one_or_none()
    if head is None:
        raise _Broken(walk.last_seq + 1, "the head of the chain is missing")
    if head.last_seq != walk.last_seq or head.last_hash != walk.prev:
        bad = walk.last_seq + 1 if (head.last_seq or 0) > walk.last_seq else head.last_seq
        raise _Broken(bad, f"the chain ends at event {walk.last_seq} but the head records {head.last_seq}")
    if walk.last_seq == 0 and head.mac is None:
        return  # nothing written yet
    if head.key_id is None and walk.allow_unsealed:
        return
    key = walk.keys.get(head.key_id or "")
    if (
        key is None
        or head.mac is None
        or not hmac.compare_digest(head_seal(head.last_seq, head.last_hash, head.key_id or "", key), head.mac)
    ):
        raise _Broken(walk.last_seq, "the head of the chain is not sealed with the practice key")


def _audit_keys(ctx: Ctx) -> dict[str, bytes]:
    return ctx.key_ring.audit_keys()


def verify(ctx: Ctx, *, checkpoint: Checkpoint | None = None, batch: int = 5000) -> VerifyResult:
    """Walk the chain; report the first event that was edited, removed, inserted or reordered,
    a head that does not match, and, given a checkpoint, a chain cut behind it.
    Raises PermissionDenied."""
    require(ctx.actor, "audit.verify")
    try:
        keys = _audit_keys(ctx)
    except EncryptionKeyError as exc:
        return VerifyResult(False, 0, None, f"the audit trail cannot be verified without the practice key: {exc}")
    walk = _Walk(keys=keys, checkpoint=checkpoint)
    cp_report: dict[str, object] | None = None
    try:
        if checkpoint is not None:
            cp_report = {"seq": checkpoint.seq, "at": checkpoint.at, "ok": False}
            key = keys.get(checkpoint.key_id)
            if key is None or not hmac.compare_digest(_sign(checkpoint, key), checkpoint.signature):
                raise _Broken(checkpoint.seq, "the checkpoint's signature does not match this practice's key")
        _walk(ctx.session, walk, batch)
        if checkpoint is not None and not walk.checkpoint_seen:
            raise _Broken(
                walk.last_seq + 1,
                f"the chain ends at event {walk.last_seq} but the checkpoint of {checkpoint.at} "
                f"records event {checkpoint.seq}: events were removed",
            )
        _check_head(ctx.session, walk)
    except _Broken as bad:
        return VerifyResult(False, walk.count, bad.seq, bad.problem, sorted(walk.used), cp_report)
    if cp_report is not None:
        cp_report["ok"] = True
    return VerifyResult(True, walk.count, keys=sorted(walk.used), checkpoint=cp_report)


def checkpoint(ctx: Ctx) -> Checkpoint:
    """The verified head of the chain, signed, for safekeeping outside the database; records
    that it was taken. Raises PermissionDenied, ConflictError (the chain is broken)."""
    from hpms.errors import ConflictError

    result = verify(ctx)
    if not result.ok:
        raise ConflictError(f"the audit trail is broken at event {result.first_bad_seq}: {result.problem}")
    ring = ctx.key_ring
    seq, last = ctx.session.execute(sa.select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1)).one()
    at = ctx.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = Checkpoint(seq=seq, seal=last, at=at, key_id=ring.active, signature="")
    signed = Checkpoint(seq, last, at, ring.active, _sign(body, ring.audit_keys()[ring.active]))
    record(ctx, Event("checkpoint", "audit", seq, detail=f"head at event {seq}"))
    return signed


@contextmanager
def _append_only_lifted(session: Session) -> Iterator[None]:
    """The append-only guard of audit_event off for the caller's transaction, on again after
    (sealing rewrites each event's seal once, and nothing else)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        yield
        conn.exec_driver_sql("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
        return
    triggers = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_event'"
    ).all()
    for name, _ in triggers:
        conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    yield
    for _, sql in triggers:
        conn.exec_driver_sql(sql)


def seal(session: Session, ring: KeyRing, *, batch: int = 5000) -> dict[str, object]:
    """Seal events written before sealing existed (and re-chain the ones after them) with the
    active key, once the old chain is found intact; in the caller's transaction. Returns how
    many were sealed, or the problem that kept the chain as it is."""
    first = session.execute(sa.select(sa.func.min(AuditEvent.seq)).where(col(AuditEvent.key_id).is_(None))).scalar()
    if first is None:
        return {"sealed": 0, "problem": None}
    _lock_head(session)
    keys = ring.audit_keys()
    walk = _Walk(keys=keys, allow_unsealed=True)
    try:
        _walk(session, walk, batch)
        _check_head(session, walk)
    except _Broken as bad:
        return {"sealed": 0, "problem": f"event {bad.seq}: {bad.problem}"}
    kid, key = ring.active, keys[ring.active]
    prev = session.execute(sa.select(AuditEvent.hash).where(AuditEvent.seq == first - 1)).scalar() or GENESIS
    table = AuditEvent.__table__
    update = (
        sa.update(table)
        .where(table.c.seq == sa.bindparam("b_seq"))
        .values(prev_hash=sa.bindparam("b_prev"), hash=sa.bindparam("b_hash"), key_id=sa.bindparam("b_kid"))
    )
    count, seq = 0, first
    with _append_only_lifted(session):
        while True:
            rows = (
                session.execute(sa.select(*_COLS).where(AuditEvent.seq >= seq).order_by(AuditEvent.seq).limit(batch))
                .mappings()
                .all()
            )
            if not rows:
                break
            changes = []
            for r in rows:
                row = dict(r)
                row["at"] = _stored_time(row["at"])
                row["prev_hash"], row["key_id"] = prev, kid
                prev = event_seal(row, key)
                changes.append({"b_seq": row["seq"], "b_prev": row["prev_hash"], "b_hash": prev, "b_kid": kid})
            session.connection().execute(update, changes)
            count += len(changes)
            seq = rows[-1]["seq"] + 1
    last_seq = seq - 1
    session.connection().execute(
        _MOVE_HEAD, {"seq": last_seq, "hash": prev, "mac": head_seal(last_seq, prev, kid, key), "kid": kid}
    )
    return {"sealed": count, "problem": None}
