"""Audit-log queries by patient reference and date, for the faces."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from hpms.errors import ValidationError
from hpms.models import AuditEventOut
from hpms.services.lookups import find_patient
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx


def log(
    ctx: Ctx,
    *,
    patient: str | None = None,
    username: str | None = None,
    since: str | dt.date | None = None,
    limit: int = 100,
) -> list[AuditEventOut]:
    """Audit events, newest first. Raises PermissionDenied, NotFoundError, ValidationError."""
    require(ctx.actor, "audit.read")
    if limit < 1 or limit > 100000:
        raise ValidationError("limit", "must be between 1 and 100000")
    patient_id = find_patient(ctx, patient, field="patient", include_merged=True).id if patient else None
    day = lt.parse_day("since", since, today=ctx.now().date()) if since is not None and str(since).strip() else None
    since_dt = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) if day else None
    rows = audit.log(ctx, patient_id=patient_id, username=username, since=since_dt, limit=limit)
    audit.record(ctx, audit.Event("read", "audit", patient_id=patient_id, detail=f"{len(rows)} event(s)"))
    return rows
