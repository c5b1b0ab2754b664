"""Audit-log queries by patient reference and date, for the faces."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import ValidationError
from hpms.models import AuditEventOut, Patient
from hpms.services.lookups import find_patient
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx


@dataclass(frozen=True)
class LogPage:
    """Audit events as a person reads them: the events, how many match in all, and the MRN
    of each patient they name (the events keep internal patient ids)."""

    rows: list[AuditEventOut]
    total: int
    mrns: dict[int, str]


def page(
    ctx: Ctx,
    *,
    patient: str | None = None,
    username: str | None = None,
    since: str | dt.date | None = None,
    limit: int = 100,
) -> LogPage:
    """`log`, with the total and the MRNs of the patients named. Raises as `log` does."""
    rows, total = _read(ctx, patient=patient, username=username, since=since, limit=limit, counted=True)
    ids = {i for r in rows for i in ([r.patient_id] if r.patient_id is not None else (r.patient_ids or []))}
    mrns: dict[int, str] = {}
    if ids:
        found = ctx.session.execute(sa.select(Patient.id, Patient.mrn).where(col(Patient.id).in_(sorted(ids))))
        mrns = {pid: mrn for pid, mrn in found}
    return LogPage(rows, total, mrns)


def _filters(ctx: Ctx, patient: str | None, since: str | dt.date | None) -> tuple[int | None, dt.datetime | None]:
    patient_id = find_patient(ctx, patient, field="patient", include_merged=True).id if patient else None
    day = lt.parse_day("since", since, today=ctx.now().date()) if since is not None and str(since).strip() else None
    return patient_id, dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) if day else None


def log(
    ctx: Ctx,
    *,
    patient: str | None = None,
    username: str | None = None,
    since: str | dt.date | None = None,
    limit: int = 100,
) -> list[AuditEventOut]:
    """Audit events, newest first. Raises PermissionDenied, NotFoundError, ValidationError."""
    return _read(ctx, patient=patient, username=username, since=since, limit=limit, counted=False)[0]


def _read(
    ctx: Ctx,
    *,
    patient: str | None,
    username: str | None,
    since: str | dt.date | None,
    limit: int,
    counted: bool,
) -> tuple[list[AuditEventOut], int]:
    """The events and, when `counted`, how many matched in all (before this read is recorded)."""
    require(ctx.actor, "audit.read")
    if limit < 1 or limit > 100000:
        raise ValidationError("limit", "must be between 1 and 100000")
    patient_id, since_dt = _filters(ctx, patient, since)
    rows = audit.log(ctx, patient_id=patient_id, username=username, since=since_dt, limit=limit)
    total = len(rows)
    if counted and total >= limit:
        total = audit.count(ctx, patient_id=patient_id, username=username, since=since_dt)
    audit.record(ctx, audit.Event("read", "audit", patient_id=patient_id, detail=f"{len(rows)} event(s)"))
    return rows, total
