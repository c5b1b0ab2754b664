"""ADT messages received (A04 registered, A08 changed, A31 updated): recorded first (the raw
message, encrypted), then applied in a transaction of its own, idempotently: the sender's
control id makes a second delivery change nothing and get the same answer.

The patient is matched on an MRN of this practice (an identifier whose assigning authority is
hpms's, or of type MR with none), else on the exact name and date of birth. A certain match is
updated with what the message says; no match and nobody similar: a new patient. An MRN that
no patient has, several exact matches, or only similar patients: staged for staff to review
(`staged`), applied to the patient they choose or dismissed.

Answers: AA applied or staged; AE recorded but refused (a field that cannot be taken); AR not an
ADT message hpms takes, or not HL7 at all (nothing written)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import ConflictError, NotFoundError, ValidationError
from hpms.interop.hl7v2 import build
from hpms.interop.hl7v2 import parse as hl7parse
from hpms.services.interop.hl7.events import quiet, sending_facility
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.context import Clock, open_context, system_clock
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.config import Settings
    from hpms.models import Hl7Inbound, Hl7InboundOut, Patient
    from hpms.services.platform.context import Ctx

ACCEPTED = frozenset({"A04", "A08", "A31"})


@dataclass(frozen=True)
class Answer:
    code: str  # AA, AE, AR
    ack: str  # the ACK message to send back
    inbound_id: int | None = None
    outcome: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Received:
    """A message read far enough to be recorded."""

    head: hl7parse.Header
    patient: hl7parse.AdtPatient


def read(data: bytes | str) -> Received:
    """The header and patient of an ADT message hpms takes. Raises ParseError saying why not."""
    text = data if isinstance(data, str) else _decode(data)
    parsed = hl7parse.split(text)
    head = hl7parse.header(parsed)
    if not head.control_id:
        raise hl7parse.ParseError("its MSH-10 (message control id) is empty")
    if head.message_type != "ADT" or head.trigger not in ACCEPTED:
        kind = f"{head.message_type}^{head.trigger}".strip("^") or "a message without MSH-9"
        raise hl7parse.ParseError(f"{kind} is not taken here (ADT^A04, ADT^A08, ADT^A31)")
    return Received(head, hl7parse.adt_patient(parsed))


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _answer(settings: Settings, facility: str, head: hl7parse.Header | None, code: str, text: str | None) -> str:
    h = build.Header(
        sending_app=settings.hl7_sending_app,
        sending_facility=facility,
        receiving_app=head.sending_app[:20] if head else "",
        receiving_facility=head.sending_facility[:20] if head else "",
        control_id=f"ACK{secrets.token_hex(6)}",
        at=dt.datetime.now(dt.UTC),
    )
    return build.ack(
        h, code=code, answers=head.control_id[:20] if head else "", trigger=head.trigger if head else "", text=text
    )


def _head_of(data: bytes) -> hl7parse.Header | None:
    """The header of a message that could not be taken, when it can be read (for MSA-2)."""
    try:
        return hl7parse.header(hl7parse.split(_decode(data)))
    except hl7parse.ParseError:
        return None


Context = Callable[[], AbstractContextManager["Ctx"]]


def receive(
    settings: Settings,
    data: bytes,
    *,
    env: dict[str, str] | None = None,
    clock: Clock | None = None,
) -> Answer:
    """Take one message as it came off the wire (see the module docstring): record it
    (committed), apply it (committed), answer. Raises PermissionDenied."""
    run_clock = clock or system_clock

    def context() -> AbstractContextManager[Ctx]:
        return open_context(settings, env=env, clock=run_clock)

    try:
        got = read(data)
    except hl7parse.ParseError as exc:
        with context() as ctx:
            require(ctx.actor, "hl7.receive")
            facility = sending_facility(ctx)
        said = f"not accepted: {exc}"
        return Answer("AR", _answer(settings, facility, _head_of(data), "AR", said), text=said)
    with context() as ctx:
        require(ctx.actor, "hl7.receive")
        facility = sending_facility(ctx)
        row = _record(ctx, got, data)
        inbound_id, outcome, note = row.id, row.outcome, row.note
    assert inbound_id is not None
    if outcome == "received":
        try:
            with context() as ctx:
                outcome, note = apply(ctx, inbound_id)
        except (ValidationError, ConflictError) as exc:
            note = f"{exc.field}: {exc.message}" if exc.field else exc.message
            with context() as ctx:
                _settle(ctx, inbound_id, "refused", None, note)
            outcome = "refused"
    code = "AE" if outcome == "refused" else "AA"
    return Answer(
        code, _answer(settings, facility, got.head, code, note if code != "AA" else None), inbound_id, outcome, note
    )


def _record(ctx: Ctx, got: Received, data: bytes) -> Hl7Inbound:
    """The message, kept before anything is done with it; the one already kept when the
    sender sends the same control id again."""
    from hpms.models import Hl7Inbound
    from hpms.models.hl7 import INBOUND_KIND

    h = got.head
    app, facility, control = h.sending_app[:64], h.sending_facility[:64], h.control_id[:64]
    found = ctx.session.execute(
        sa.select(Hl7Inbound).where(
            Hl7Inbound.org_id == ctx.org_id,
            Hl7Inbound.sending_app == app,
            Hl7Inbound.sending_facility == facility,
            Hl7Inbound.control_id == control,
        )
    ).scalar_one_or_none()
    if found is not None:
        return found
    row = Hl7Inbound(
        org_id=ctx.org_id,
        sending_app=app,
        sending_facility=facility,
        control_id=control,
        event=h.trigger,
        raw_enc=ctx.crypto.encrypt(_decode(data), INBOUND_KIND),
        received_at=ctx.now(),
        outcome="received",
    )
    ctx.session.add(row)
    ctx.session.flush()
    audit.record(ctx, audit.Event("receive", "hl7_inbound", row.id, detail=f"ADT^{h.trigger} from {app[:20]}"))
    return row


def _raw(ctx: Ctx, row: Hl7Inbound) -> Received:
    from hpms.models.hl7 import INBOUND_KIND

    return read(ctx.crypto.decrypt(row.raw_enc, INBOUND_KIND))


def _settle(ctx: Ctx, inbound_id: int, outcome: str, patient_id: int | None, note: str | None) -> None:
    from hpms.models import Hl7Inbound

    row = ctx.session.get(Hl7Inbound, inbound_id)
    assert row is not None
    row.outcome, row.patient_id, row.note = outcome, patient_id, (note or None) and note[:500]
    ctx.session.flush()
    audit.record(ctx, audit.Event("apply", "hl7_inbound", inbound_id, patient_id=patient_id, detail=outcome))


def _fields(p: hl7parse.AdtPatient) -> dict[str, Any]:
    """What the message says of the patient, as hpms's fields (only those it gives)."""
    values: dict[str, Any] = {
        "first_name": p.first_name,
        "last_name": p.last_name,
        "middle_name": p.middle_name,
        "dob": p.dob.isoformat() if p.dob else None,
        "sex_at_birth": p.sex_at_birth,
        "address_line1": p.address_line1,
        "address_line2": p.address_line2,
        "city": p.city,
        "state": p.state,
        "postal_code": p.postal_code,
        "country": p.country,
        "phone": p.phone,
        "email": p.email,
    }
    return {k: x for k, x in values.items() if x is not None}


def _ours(ctx: Ctx, p: hl7parse.AdtPatient) -> list[str]:
    """The identifiers that are MRNs of this practice."""
    authority = ctx.settings.hl7_assigning_authority.lower()
    return [
        i.value
        for i in p.identifiers
        if i.authority.lower() == authority or (not i.authority and i.type_code.upper() == "MR")
    ]


def match(ctx: Ctx, p: hl7parse.AdtPatient) -> tuple[Patient | None, str | None]:
    """(the patient the message is certainly about, None) or (None, why it is uncertain); (None,
    None) when it is about nobody on file and nobody similar (a new patient)."""
    from hpms.models import Patient
    from hpms.services.people.patients import likely_duplicates

    mrns = _ours(ctx, p)
    if mrns:
        found = (
            ctx.session.execute(sa.select(Patient).where(Patient.org_id == ctx.org_id, col(Patient.mrn).in_(mrns)))
            .scalars()
            .all()
        )
        if len(found) == 1 and found[0].active:
            return found[0], None
        if not found:
            return None, f"MRN {mrns[0]} is not a patient of this practice"
        if len(found) == 1:
            return None, f"MRN {found[0].mrn} was merged into another record"
        return None, "its identifiers name several patients"
    if p.dob is None:
        return None, "no MRN of this practice and no date of birth to match on"
    first, last = v.fold(p.first_name)[:100], v.fold(p.last_name)[:100]
    exact = (
        ctx.session.execute(
            sa.select(Patient).where(
                Patient.org_id == ctx.org_id,
                Patient.active.is_(True),
                Patient.dob == p.dob,
                Patient.first_norm == first,
                Patient.last_norm == last,
            )
        )
        .scalars()
        .all()
    )
    if len(exact) == 1:
        return exact[0], None
    if exact:
        return None, f"{len(exact)} patients have this name and date of birth"
    similar = likely_duplicates(ctx, first_name=p.first_name, last_name=p.last_name, dob=p.dob, phone=p.phone)
    if similar:
        return None, "similar to MRN " + ", ".join(c.patient.mrn for c in similar[:3])
    return None, None


def apply(ctx: Ctx, inbound_id: int, *, to: Patient | None = None, new: bool = False) -> tuple[str, str | None]:
    """Apply a recorded message: to its certain match, to `to` (staff chose), as a `new`
    patient, or stage it. Returns (outcome, note). Raises ValidationError naming the field
    the message gets wrong."""
    from hpms.models import Hl7Inbound

    row = ctx.session.get(Hl7Inbound, inbound_id)
    assert row is not None
    got = _raw(ctx, row)
    if to is None and not new:
        to, why = match(ctx, got.patient)
        if to is None and why is not None:
            _settle(ctx, inbound_id, "staged", None, why)
            return "staged", why
    with quiet():
        if to is None:
            created = _create(ctx, got)
            _settle(ctx, inbound_id, "created", created.id, None)
            return "created", None
        changed = _update(ctx, to, got)
    note = ("changed " + ", ".join(changed)) if changed else "nothing to change"
    _settle(ctx, inbound_id, "updated", to.id, note)
    return "updated", note


def _source(got: Received) -> str:
    return f"from HL7 ADT^{got.head.trigger} of {got.head.sending_app[:20]}"


def _create(ctx: Ctx, got: Received) -> Patient:
    from hpms.models import Patient
    from hpms.services.people.patients import derived_columns, next_mrns, validate_fields

    values = validate_fields(_fields(got.patient), today=ctx.now().date())
    row = Patient(org_id=ctx.org_id, mrn=next_mrns(ctx.session, 1, ctx.org_id)[0], **values, **derived_columns(values))
    row.created_at = row.updated_at = ctx.now()
    ctx.session.add(row)
    ctx.session.flush()
    fields = sorted(k for k, x in values.items() if x not in (None, False)) + ["mrn"]
    audit.record(ctx, audit.Event("create", "patient", row.id, patient_id=row.id, fields=fields, detail=_source(got)))
    return row


def _update(ctx: Ctx, row: Patient, got: Received) -> list[str]:
    from hpms.services.people.patients import derived_columns, validate_fields

    given = _fields(got.patient)
    given |= {"_has_phone": bool(row.phone), "_has_email": bool(row.email), "_channel": row.preferred_channel}
    values = validate_fields(given, today=ctx.now().date(), partial=True)
    changed = [k for k, x in values.items() if getattr(row, k) != x]
    for k in changed:
        setattr(row, k, values[k])
    for k, x in derived_columns({k: values[k] for k in changed}).items():
        setattr(row, k, x)
    if changed:
        row.version += 1
        row.updated_at = ctx.now()
        ctx.session.flush()
        event = audit.Event("update", "patient", row.id, patient_id=row.id, fields=changed, detail=_source(got))
        audit.record(ctx, event)
    return changed


# ---- the staff's review ------------------------------------------------------------------


def list_inbound(ctx: Ctx, *, everything: bool = False, limit: int = 50) -> list[Hl7InboundOut]:
    """The messages received that wait for staff (staged, not handled), newest first; all of
    them with `everything`."""
    from hpms.models import Hl7Inbound, Hl7InboundOut, Patient

    require(ctx.actor, "interfaces.read")
    if limit < 1 or limit > 100000:
        raise ValidationError("limit", "must be between 1 and 100000")
    stmt = (
        sa.select(Hl7Inbound, Patient.mrn)
        .outerjoin(Patient, col(Patient.id) == Hl7Inbound.patient_id)
        .where(Hl7Inbound.org_id == ctx.org_id)
    )
    if not everything:
        stmt = stmt.where(Hl7Inbound.outcome == "staged", col(Hl7Inbound.handled_at).is_(None))
    rows = ctx.session.execute(stmt.order_by(col(Hl7Inbound.id).desc()).limit(limit)).all()
    out = [
        Hl7InboundOut.model_validate(r).model_copy(update={"mrn": mrn, "message_type": build.message_type(r.event)})
        for r, mrn in rows
    ]
    ids = sorted({r.patient_id for r, _ in rows if r.patient_id is not None})
    audit.record(ctx, audit.Event("list", "hl7_inbound", patient_ids=ids, detail=f"{len(out)} message(s)"))
    return out


def _staged(ctx: Ctx, inbound_id: int) -> Hl7Inbound:
    from hpms.models import Hl7Inbound

    row = ctx.session.get(Hl7Inbound, inbound_id)
    if row is None or row.org_id != ctx.org_id:
        raise NotFoundError(f"no HL7 message received with id {inbound_id}")
    if row.outcome != "staged" or row.handled_at is not None:
        raise ConflictError(f"HL7 message {inbound_id} is {row.outcome}: only a staged one waits for review")
    return row


def accept(ctx: Ctx, inbound_id: int, *, patient: str | None = None, new: bool = False) -> Hl7InboundOut:
    """Apply a staged message to `patient` (an MRN) or as a new patient. Raises NotFoundError,
    ConflictError, ValidationError naming the field."""
    from hpms.models import Hl7InboundOut
    from hpms.services.lookups import find_patient

    require(ctx.actor, "hl7.review")
    if (patient is None) == (not new):
        raise ValidationError("patient", "give the patient it is about, or that it is a new patient")
    row = _staged(ctx, inbound_id)
    to = find_patient(ctx, patient, field="patient", active=True) if patient is not None else None
    apply(ctx, inbound_id, to=to, new=new)
    row.handled_at, row.handled_by = ctx.now(), ctx.actor.user_id
    ctx.session.flush()
    return Hl7InboundOut.model_validate(row)


def dismiss(ctx: Ctx, inbound_id: int) -> Hl7InboundOut:
    """Let a staged message go without applying it. Raises NotFoundError, ConflictError."""
    from hpms.models import Hl7InboundOut

    require(ctx.actor, "hl7.review")
    row = _staged(ctx, inbound_id)
    row.outcome, row.handled_at, row.handled_by = "dismissed", ctx.now(), ctx.actor.user_id
    ctx.session.flush()
    audit.record(ctx, audit.Event("dismiss", "hl7_inbound", row.id))
    return Hl7InboundOut.model_validate(row)


def check_listener(ctx: Ctx) -> None:
    """That the actor may run the listener. Raises PermissionDenied."""
    require(ctx.actor, "hl7.receive")


__all__ = ["receive", "apply", "match", "list_inbound", "accept", "dismiss", "check_listener", "Answer"]
