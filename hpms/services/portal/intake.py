"""Registrations and pre-visit forms sent from the patient portal, staged for the front desk.

Nothing a patient sends goes straight into the chart: a new applicant's registration or a
signed-in patient's changes for a visit to come wait as a request (the member id encrypted,
card photos encrypted in the database) until staff accept it (through the patient and coverage
services, with their rules and audits) or reject it. An applicant is audited as
`applicant:<client address>`, a patient as `patient:<id>`."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import col

from hpms.errors import ConflictError, NotFoundError, ValidationError
from hpms.models import Actor, Patient
from hpms.services.people.patients import RegistrationMatch
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.models.intake import IntakeRequest
    from hpms.services.platform.context import Ctx

STATES = ("pending", "accepted", "rejected")
SIDES = ("front", "back")
# The form's demographic fields, as the patient services name them.
DEMOGRAPHICS = (
    "first_name",
    "last_name",
    "dob",
    "sex_at_birth",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
)
CONSENTS = ("consent_sms", "consent_email")
INSURANCE = ("payer_name", "member_id", "group_number")
# Every field of the portal's forms, as the errors name them (a photo is card_front or card_back).
FORM_FIELDS = (*DEMOGRAPHICS, *CONSENTS, "reason", *INSURANCE, "card_front", "card_back")
# What a file starts with, for the types a card photo may be.
MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"%PDF-", "application/pdf"))


@dataclass(frozen=True)
class Upload:
    """A card photo as the browser sent it: which side, and its bytes."""

    side: str
    data: bytes


@dataclass(frozen=True)
class Submitted:
    """A request staged (its id), or `throttled` when the client address sent too many."""

    id: int | None
    throttled: bool = False


class IntakeSummary(BaseModel):
    id: int
    kind: str
    state: str
    created_at: dt.datetime
    name: str
    dob: dt.date | None
    patient_mrn: str | None
    appointment_id: int | None
    photos: list[str]
    submitted_by: str


class IntakeDetail(IntakeSummary):
    """A request with what was filled in, and the patients on file it likely duplicates."""

    fields: dict[str, Any]
    member_id: str | None
    candidates: list[RegistrationMatch]
    decided_at: dt.datetime | None
    decision_note: str | None


class Accepted(BaseModel):
    id: int
    patient_id: int
    patient_mrn: str
    created: bool
    coverage_id: int | None


@dataclass(frozen=True)
class Photo:
    content_type: str
    data: bytes


# ---- what patients send ------------------------------------------------------------------


def _applicant(ctx: Ctx, client: str) -> Ctx:
    """The same transaction, acting as an applicant not yet a patient (no role)."""
    actor = Actor(
        user_id=ctx.actor.user_id,
        username=f"applicant:{client or '-'}"[:120],
        org_id=ctx.org_id,
        roles=frozenset(),
        auth_method="portal",
    )
    return dataclasses.replace(ctx, actor=actor)


def _file_type(field: str, data: bytes, cap_mb: int) -> str:
    if len(data) > cap_mb * 1024 * 1024:
        raise ValidationError(field, f"is larger than {cap_mb} MB: send a smaller photo")
    for magic, kind in MAGIC:
        if data.startswith(magic):
            return kind
    raise ValidationError(field, "is not a JPEG, PNG or PDF file")


def _checked_uploads(ctx: Ctx, uploads: list[Upload]) -> list[tuple[str, str, bytes]]:
    out = []
    for u in uploads:
        if u.side not in SIDES:
            raise ValidationError("card_front", f"unknown side {u.side!r}")
        if u.data:
            out.append((u.side, _file_type(f"card_{u.side}", u.data, ctx.settings.portal_upload_mb), u.data))
    return out


def _clean_form(ctx: Ctx, form: dict[str, str | None], *, partial: bool) -> tuple[dict[str, Any], str | None]:
    """The checked values of a form (JSON-ready) and the member id. Raises ValidationError
    naming the first bad field."""
    from hpms.services.people.coverage import parse_member_id
    from hpms.services.people.patients import validate_fields

    given: dict[str, Any] = {k: v.clean(form.get(k)) for k in DEMOGRAPHICS}
    if partial:
        given = {k: x for k, x in given.items() if x is not None}
    for k in CONSENTS:
        given[k] = "yes" if v.clean(form.get(k)) else "no"
    values = validate_fields(given, today=ctx.now().date(), partial=partial)
    if not partial and not values.get("email") and not values.get("phone"):
        raise ValidationError("email", "is required, or a mobile number: how the practice reaches you")
    out: dict[str, Any] = {k: (x.isoformat() if isinstance(x, dt.date) else x) for k, x in values.items()}
    out["reason"] = v.optional_text("reason", form.get("reason"), 500)
    payer = v.optional_text("payer_name", form.get("payer_name"), 200)
    member = v.clean(form.get("member_id"))
    group = v.optional_text("group_number", form.get("group_number"), 50)
    if payer or member or group:
        if not payer:
            raise ValidationError("payer_name", "is required with a member id: the name on the card")
        member = parse_member_id("member_id", member)
        out["payer_name"], out["group_number"] = payer, group
    return out, member


def _stage(
    ctx: Ctx,
    *,
    kind: str,
    values: dict[str, Any],
    member: str | None,
    files: list[tuple[str, str, bytes]],
    patient_id: int | None = None,
    appointment_id: int | None = None,
) -> int:
    from hpms.models.intake import UPLOAD_KIND, IntakeRequest, IntakeUpload

    row = IntakeRequest(
        org_id=ctx.org_id,
        kind=kind,
        patient_id=patient_id,
        appointment_id=appointment_id,
        submitted_by=ctx.actor.username,
        fields_json=json.dumps(values, sort_keys=True),
        member_id_enc=ctx.crypto.encrypt(member, "member_id") if member else None,
        created_at=ctx.now(),
    )
    ctx.session.add(row)
    ctx.session.flush()
    assert row.id is not None
    for side, content_type, data in files:
        ctx.session.add(
            IntakeUpload(
                request_id=row.id,
                side=side,
                content_type=content_type,
                size=len(data),
                data_enc=ctx.crypto.encrypt(base64.b64encode(data).decode("ascii"), UPLOAD_KIND),
            )
        )
    ctx.session.flush()
    fields = sorted(k for k, x in values.items() if x not in (None, False)) + (["member_id"] if member else [])
    fields += [f"card_{side}" for side, _, _ in files]
    audit.record(ctx, audit.Event("create", "intake_request", row.id, patient_id=patient_id, fields=fields))
    return row.id


def register_online(ctx: Ctx, *, form: dict[str, str | None], uploads: list[Upload], client: str) -> Submitted:
    """Stage a new patient's registration from the portal (not signed in), as the applicant at
    `client`. Raises ValidationError (the form's field) before anything is written;
    PermissionDenied (the server may not serve the portal)."""
    from hpms.services.portal import access

    access.check_server(ctx)
    values, member = _clean_form(ctx, form, partial=False)
    files = _checked_uploads(ctx, uploads)
    if access.throttled(ctx, f"register|{client}"):
        return Submitted(None, throttled=True)
    return Submitted(_stage(_applicant(ctx, client), kind="register", values=values, member=member, files=files))


def submit_intake(ctx: Ctx, *, appointment: str | None, form: dict[str, str | None], uploads: list[Upload]) -> int:
    """Stage the signed-in patient's pre-visit form for one of their visits to come: only what
    they filled in counts as a change. Raises NotFoundError (appointment: not their visit to
    come), ValidationError (the form's field; reason when nothing is filled in) before anything
    is written."""
    from hpms.models import Appointment

    require(ctx.actor, "intake.submit")
    patient_id = ctx.actor.patient_id
    try:
        appointment_id = int((appointment or "").strip())
    except ValueError:
        raise NotFoundError("no such visit to come", field="appointment") from None
    visit = ctx.session.execute(
        sa.select(Appointment.id).where(
            Appointment.id == appointment_id,
            Appointment.org_id == ctx.org_id,
            Appointment.patient_id == patient_id,
            Appointment.start_utc >= ctx.now(),
            col(Appointment.status).in_(("booked", "confirmed")),
        )
    ).scalar_one_or_none()
    if visit is None:
        raise NotFoundError("no such visit to come", field="appointment")
    values, member = _clean_form(ctx, form, partial=True)
    files = _checked_uploads(ctx, uploads)
    if not files and not member and not any(x not in (None, False) for x in values.values()):
        raise ValidationError("reason", "fill in what changed, or the reason for the visit")
    return _stage(
        ctx,
        kind="update",
        values=values,
        member=member,
        files=files,
        patient_id=patient_id,
        appointment_id=appointment_id,
    )


# ---- the front desk's work list ------------------------------------------------------------


def _find(ctx: Ctx, request_id: int | str) -> IntakeRequest:
    from hpms.models.intake import IntakeRequest

    text = str(request_id).strip()
    row = ctx.session.get(IntakeRequest, int(text)) if text.isdigit() else None
    if row is None or row.org_id != ctx.org_id:
        raise NotFoundError(f"no intake request {text!r}", field="request_id")
    return row


def _summaries(ctx: Ctx, rows: list[IntakeRequest]) -> list[IntakeSummary]:
    from hpms.models.intake import IntakeUpload

    ids = [r.id for r in rows]
    photos: dict[int, list[str]] = {}
    mrns: dict[int, str] = {}
    if ids:
        for rid, side in ctx.session.execute(
            sa.select(IntakeUpload.request_id, IntakeUpload.side)
            .where(col(IntakeUpload.request_id).in_(ids))
            .order_by(col(IntakeUpload.side).desc())
        ):
            photos.setdefault(rid, []).append(side)
        pids = {r.patient_id for r in rows if r.patient_id}
        if pids:
            mrns = dict(ctx.session.execute(sa.select(Patient.id, Patient.mrn).where(col(Patient.id).in_(pids))).all())
    out = []
    for r in rows:
        assert r.id is not None
        values = json.loads(r.fields_json)
        name = f"{values.get('first_name') or ''} {values.get('last_name') or ''}".strip()
        out.append(
            IntakeSummary(
                id=r.id,
                kind=r.kind,
                state=r.state,
                created_at=r.created_at,
                name=name,
                dob=values.get("dob"),
                patient_mrn=mrns.get(r.patient_id) if r.patient_id else None,
                appointment_id=r.appointment_id,
                photos=photos.get(r.id, []),
                submitted_by=r.submitted_by,
            )
        )
    return out


def list_requests(ctx: Ctx, *, state: str | None = "pending", limit: int = 200) -> list[IntakeSummary]:
    """The requests in `state` (None: every state), oldest first. Raises ValidationError (state),
    PermissionDenied."""
    from hpms.models.intake import IntakeRequest

    require(ctx.actor, "intake.read")
    wanted = v.parse_choice("state", state, STATES) if state else None
    stmt = sa.select(IntakeRequest).where(IntakeRequest.org_id == ctx.org_id)
    if wanted:
        stmt = stmt.where(IntakeRequest.state == wanted)
    rows = list(ctx.session.scalars(stmt.order_by(IntakeRequest.created_at, IntakeRequest.id).limit(limit)))
    out = _summaries(ctx, rows)
    if out:
        patients = sorted({r.patient_id for r in rows if r.patient_id})
        audit.record(
            ctx,
            audit.Event(
                "list", "intake_request", None, patient_ids=patients or None, fields=["name", "dob"], detail=state
            ),
        )
    return out


def _candidates(ctx: Ctx, row: IntakeRequest, values: dict[str, Any]) -> list[RegistrationMatch]:
    from hpms.services.people.patients import likely_duplicates

    if row.kind != "register" or row.state != "pending":
        return []
    return likely_duplicates(
        ctx,
        first_name=values["first_name"],
        last_name=values["last_name"],
        dob=dt.date.fromisoformat(values["dob"]),
        phone=values.get("phone"),
    )


def show(ctx: Ctx, request_id: int | str) -> IntakeDetail:
    """A request with what was filled in (the member id decrypted) and, for a pending
    registration, the patients on file it likely duplicates. Raises NotFoundError,
    PermissionDenied."""
    require(ctx.actor, "intake.read")
    row = _find(ctx, request_id)
    values = json.loads(row.fields_json)
    member = ctx.crypto.decrypt(row.member_id_enc, "member_id") if row.member_id_enc else None
    audit.record(
        ctx,
        audit.Event(
            "read",
            "intake_request",
            row.id,
            patient_id=row.patient_id,
            fields=sorted(values) + (["member_id"] if member else []),
        ),
    )
    summary = _summaries(ctx, [row])[0]
    return IntakeDetail(
        **summary.model_dump(),
        fields=values,
        member_id=member,
        candidates=_candidates(ctx, row, values),
        decided_at=row.decided_at,
        decision_note=row.decision_note,
    )


def _pending(ctx: Ctx, request_id: int | str) -> IntakeRequest:
    row = _find(ctx, request_id)
    if row.state != "pending":
        raise ConflictError(f"intake request {row.id} is already {row.state}", field="request_id")
    return row


def _decided(ctx: Ctx, row: IntakeRequest, state: str, note: str | None = None) -> None:
    row.state, row.decided_at, row.decided_by, row.decision_note = state, ctx.now(), ctx.actor.user_id, note
    ctx.session.flush()


def accept(
    ctx: Ctx,
    request_id: int | str,
    *,
    merge_into: str | None = None,
    allow_duplicate: bool = False,
    payer: str | None = None,
    skip_coverage: bool = False,
) -> Accepted:
    """Apply a pending request: a registration creates the patient (refused as LikelyDuplicate
    when one is likely on file, unless `allow_duplicate`) or, with `merge_into`, updates that
    patient; a pre-visit form updates its patient. A member id adds a coverage with `payer`
    (default: the payer named on the form) unless the patient has it already or
    `skip_coverage`. All through the patient and coverage services; nothing is written unless
    all of it is. Raises NotFoundError, ConflictError, LikelyDuplicate, ValidationError,
    PermissionDenied."""
    from hpms.services.people import coverage, patients

    require(ctx.actor, "intake.write")
    row = _pending(ctx, request_id)
    values = json.loads(row.fields_json)
    demographics = {k: x for k, x in values.items() if k in DEMOGRAPHICS or k in CONSENTS}
    for k in CONSENTS:  # consents are booleans on file
        if k in demographics:
            demographics[k] = demographics[k] in (True, "yes")
    created = False
    if row.kind == "register" and not merge_into:
        out = patients.register(ctx, allow_duplicate=allow_duplicate, **demographics)
        created = True
    else:
        target: str | int = merge_into if merge_into else (row.patient_id or 0)
        changes = {k: x for k, x in demographics.items() if x is not None}
        if row.kind == "update":  # a pre-visit form's unticked boxes are not a withdrawal
            changes = {k: x for k, x in changes.items() if k not in CONSENTS or x}
        out = (
            patients.update(ctx, target, **changes)
            if changes
            else patients.show(ctx, target)  # nothing but insurance or photos to take in
        )
    coverage_id = None
    if row.member_id_enc and not skip_coverage:
        member = ctx.crypto.decrypt(row.member_id_enc, "member_id")
        on_file = [c for c in coverage.list_coverage(ctx, out.mrn) if c.member_id == member]
        if on_file:
            coverage_id = on_file[0].id
        else:
            added = coverage.add_coverage(
                ctx,
                patient=out.mrn,
                payer=payer or values.get("payer_name"),
                member_id=member,
                group_number=values.get("group_number"),
            )
            coverage_id = added.id
    row.patient_id = out.id
    _decided(ctx, row, "accepted")
    audit.record(ctx, audit.Event("accept", "intake_request", row.id, patient_id=out.id))
    assert row.id is not None
    return Accepted(id=row.id, patient_id=out.id, patient_mrn=out.mrn, created=created, coverage_id=coverage_id)


def reject(ctx: Ctx, request_id: int | str, *, reason: str | None) -> IntakeSummary:
    """Reject a pending request, saying why (kept with it). Raises ValidationError (reason),
    NotFoundError, ConflictError (already decided), PermissionDenied."""
    require(ctx.actor, "intake.write")
    note = v.require_text("reason", reason, 500)
    row = _pending(ctx, request_id)
    _decided(ctx, row, "rejected", note)
    audit.record(ctx, audit.Event("reject", "intake_request", row.id, patient_id=row.patient_id))
    return _summaries(ctx, [row])[0]


def photo(ctx: Ctx, request_id: int | str, *, side: str) -> Photo:
    """A card photo of a request, decrypted (its read audited). Raises ValidationError (side),
    NotFoundError, PermissionDenied."""
    from hpms.models.intake import UPLOAD_KIND, IntakeUpload

    require(ctx.actor, "intake.read")
    wanted = v.parse_choice("side", side, SIDES)
    row = _find(ctx, request_id)
    up = ctx.session.execute(
        sa.select(IntakeUpload).where(IntakeUpload.request_id == row.id, IntakeUpload.side == wanted)
    ).scalar_one_or_none()
    if up is None:
        raise NotFoundError(f"intake request {row.id} has no {wanted} photo", field="side")
    audit.record(ctx, audit.Event("read", "intake_upload", up.id, patient_id=row.patient_id, fields=[f"card_{wanted}"]))
    return Photo(up.content_type, base64.b64decode(ctx.crypto.decrypt(up.data_enc, UPLOAD_KIND)))
