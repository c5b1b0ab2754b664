"""Patient satisfaction surveys: a score from 1 to 5 (and an optional comment) per completed
visit, recorded one at a time or imported from a CSV file. The `satisfaction` report
(hpms.services.reports.scheduling) summarises them by provider and month."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.db import bulk_insert
from hpms.errors import Action, ConflictError, NotFoundError, ValidationError
from hpms.models import Appointment, Location, Patient, Provider, SurveyImportOut, SurveyResponse, SurveyResponseOut
from hpms.services.lookups import load_appointment, provider_name, resolve_location
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform import validation as v
from hpms.services.platform.csvrows import read_rows
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hpms.services.platform.context import Ctx

COLUMNS = ("appointment_id", "score", "comment", "responded_at")
REQUIRED = ("appointment_id", "score")
MAX_COMMENT = 1000


def parse_score(field: str, value: object) -> int:
    text = str(value if value is not None else "").strip()
    if not text:
        raise ValidationError(field, "is required")
    if not text.lstrip("-").isdigit() or not 1 <= int(text) <= 5:
        raise ValidationError(field, f"{text!r} is not a score from 1 to 5")
    return int(text)


def _check_appointment(appt: Appointment, taken: bool) -> None:
    if appt.status != "completed":
        raise ConflictError(
            f"appointment {appt.id} is {appt.status.replace('_', ' ')}; only a completed visit takes a survey response"
        )
    if taken:
        raise ConflictError(f"appointment {appt.id} already has a survey response", action=Action("surveys", "list"))


def _out(ctx: Ctx, ids: list[int]) -> list[SurveyResponseOut]:
    if not ids:
        return []
    q = (
        sa.select(
            SurveyResponse,
            Patient.first_name,
            Patient.last_name,
            Patient.mrn,
            Provider,
            Location.tz,
            Appointment.start_utc,
        )
        .join(Appointment, Appointment.id == SurveyResponse.appointment_id)
        .join(Patient, Patient.id == SurveyResponse.patient_id)
        .join(Provider, Provider.id == SurveyResponse.provider_id)
        .join(Location, Location.id == Appointment.location_id)
        .where(col(SurveyResponse.id).in_(ids))
        .order_by(SurveyResponse.responded_at, SurveyResponse.id)
    )
    out = []
    for r, first, last, mrn, prov, tz, start in ctx.session.execute(q):
        out.append(
            SurveyResponseOut(
                id=r.id,
                appointment_id=r.appointment_id,
                patient_id=r.patient_id,
                patient=f"{first} {last}",
                mrn=mrn,
                provider_id=r.provider_id,
                provider=provider_name(prov),
                visit=lt.to_local(start, tz),
                score=r.score,
                comment=r.comment,
                responded_at=lt.to_local(r.responded_at, tz),
            )
        )
    return out


def answered(ctx: Ctx, appointment_ids: Iterable[int]) -> set[int]:
    """Those of the visits that have a survey response."""
    ids = list(appointment_ids)
    if not ids:
        return set()
    return set(
        ctx.session.execute(
            sa.select(SurveyResponse.appointment_id).where(SurveyResponse.appointment_id.in_(ids))
        ).scalars()
    )


def record(
    ctx: Ctx, *, appointment: str | int | None, score: str | int | None, comment: str | None = None
) -> SurveyResponseOut:
    """Record one response for a completed visit (NotFoundError when the visit is unknown,
    ConflictError when it is not completed or already has a response)."""
    require(ctx.actor, "surveys.write")
    value = parse_score("score", score)
    text = v.optional_text("comment", comment, MAX_COMMENT)
    appt = load_appointment(ctx, appointment, field="appointment")
    assert appt.id is not None  # a stored row
    _check_appointment(appt, bool(answered(ctx, [appt.id])))
    r = SurveyResponse(
        org_id=ctx.org_id,
        appointment_id=appt.id,
        patient_id=appt.patient_id,
        provider_id=appt.provider_id,
        score=value,
        comment=text,
        responded_at=ctx.now(),
        created_by=ctx.actor.user_id,
    )
    ctx.session.add(r)
    try:
        ctx.session.flush()
    except sa.exc.IntegrityError:
        raise ConflictError(f"appointment {appt.id} already has a survey response") from None
    assert r.id is not None  # flushed
    audit.record(
        ctx,
        audit.Event(
            "create",
            "survey_response",
            r.id,
            patient_id=appt.patient_id,
            fields=["score"] + (["comment"] if text else []),
        ),
    )
    return _out(ctx, [r.id])[0]


def _read(path: Path) -> list[tuple[int, dict[str, str] | None]]:
    return read_rows(path, columns=COLUMNS, required=REQUIRED, expected="appointment_id,score[,comment][,responded_at]")


def _responded_at(text: str, tz: str, now: dt.datetime) -> dt.datetime:
    """ISO date-time; without an offset it is wall-clock time at the visit's location."""
    try:
        value = lt.iso_datetime(text)
    except ValueError:
        raise ValidationError("responded_at", f"{text!r} is not a date-time (YYYY-MM-DD HH:MM)") from None
    value = lt.wall_to_utc(value, tz) if value.tzinfo is None else value.astimezone(dt.UTC)
    if value > now:
        raise ValidationError("responded_at", f"{text!r} is in the future")
    return value


def import_csv(ctx: Ctx, path: Path | str) -> SurveyImportOut:
    """Import responses from a CSV file with the header appointment_id,score[,comment][,responded_at].
    Every row is checked first (known, completed visit without a response, not twice in the
    file, score 1..5, comment of at most 1000 characters, responded_at an ISO date-time, default
    now); the first bad row raises a ValidationError naming its line and column and nothing is
    written. Then all rows are inserted at once, with one audit event."""
    require(ctx.actor, "surveys.write")
    rows = _read(Path(path))
    if not rows:
        raise ValidationError("file", f"{path} has no rows")

    def bad(line: int, exc: ValidationError | ConflictError | NotFoundError) -> ValidationError:
        return ValidationError("file", f"line {line}, {exc.field or 'appointment_id'}: {exc.message}; nothing imported")

    ids: dict[int, int] = {}
    checked: list[tuple[int, dict[str, str]]] = []
    for line, row in rows:
        if row is None:
            raise ValidationError("file", f"line {line}: more cells than columns in the header; nothing imported")
        text = row["appointment_id"].strip()
        if not text.isdigit():
            raise bad(line, ValidationError("appointment_id", f"{text!r} is not an appointment id"))
        if int(text) in ids:
            raise bad(line, ValidationError("appointment_id", f"appointment {text} is also on line {ids[int(text)]}"))
        ids[int(text)] = line
        checked.append((line, row))
    found = {
        a.id: (a, tz)
        for a, tz in ctx.session.execute(
            sa.select(Appointment, Location.tz)
            .join(Location, Location.id == Appointment.location_id)
            .where(col(Appointment.id).in_(list(ids)), Appointment.org_id == ctx.org_id)
        )
    }
    taken = answered(ctx, ids)
    now = ctx.now()
    values = []
    for line, row in checked:
        aid = int(row["appointment_id"].strip())
        if aid not in found:
            raise bad(line, ValidationError("appointment_id", f"no appointment {aid}"))
        appt, tz = found[aid]
        try:
            _check_appointment(appt, aid in taken)
            score = parse_score("score", row["score"])
            comment = v.optional_text("comment", row.get("comment"), MAX_COMMENT)
            when = _responded_at(row["responded_at"], tz, now) if (row.get("responded_at") or "").strip() else now
        except (ValidationError, ConflictError) as exc:
            raise bad(line, exc) from None
        values.append(
            {
                "org_id": ctx.org_id,
                "appointment_id": aid,
                "patient_id": appt.patient_id,
                "provider_id": appt.provider_id,
                "score": score,
                "comment": comment,
                "responded_at": when,
                "created_by": ctx.actor.user_id,
            }
        )
    try:
        bulk_insert(ctx.session, SurveyResponse.__table__, values)
    except sa.exc.IntegrityError:
        raise ConflictError("a visit in the file got a survey response meanwhile; nothing imported") from None
    audit.record(
        ctx,
        audit.Event(
            "import",
            "survey_response",
            None,
            patient_ids=[r["patient_id"] for r in values],
            fields=["score", "comment"],
            detail=f"{len(values)} responses from {Path(path).name}",
        ),
    )
    return SurveyImportOut(imported=len(values))


def list_responses(
    ctx: Ctx, *, start: str | dt.date | None = None, end: str | dt.date | None = None
) -> list[SurveyResponseOut]:
    """Responses received on local days start..end (the first location's zone), oldest first.
    The read is audited: comments are patient data."""
    require(ctx.actor, "reports.run")
    tz = resolve_location(ctx, None).tz
    today = lt.local_now(ctx.now(), tz).date()
    q = sa.select(SurveyResponse.id, SurveyResponse.patient_id).where(SurveyResponse.org_id == ctx.org_id)
    s = lt.parse_day("start", start, today=today) if start else None
    e = lt.parse_day("end", end, today=today) if end else None
    if s and e and e < s:
        raise ValidationError("end", f"{e} is before the first day {s}")
    if s:
        q = q.where(SurveyResponse.responded_at >= lt.day_bounds_utc(s, tz)[0])
    if e:
        q = q.where(SurveyResponse.responded_at < lt.day_bounds_utc(e, tz)[1])
    hits = ctx.session.execute(q).all()
    if hits:
        audit.record(
            ctx,
            audit.Event(
                "read",
                "survey_response",
                None,
                patient_ids=[h.patient_id for h in hits],
                detail=f"list {s or ''}..{e or ''}",
            ),
        )
    return _out(ctx, [h.id for h in hits])
