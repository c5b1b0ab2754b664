"""Who may act for whom in the patient portal: staff link a guardian (a parent, a carer; a
patient too) to the patients whose portal they may see."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from hpms.errors import ConflictError, NotFoundError, ValidationError
from hpms.models import Patient
from hpms.services.lookups import find_patient
from hpms.services.platform import audit
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.models import ProxyOut
    from hpms.services.platform.context import Ctx


def _out(ctx: Ctx, where: sa.ColumnElement[bool] | None = None) -> list[ProxyOut]:
    from hpms.models import PortalProxy, ProxyOut

    guardian, patient = aliased(Patient), aliased(Patient)
    q = (
        sa.select(PortalProxy, guardian, patient)
        .join(guardian, guardian.id == PortalProxy.guardian_id)
        .join(patient, patient.id == PortalProxy.patient_id)
        .where(PortalProxy.org_id == ctx.org_id)
    )
    if where is not None:
        q = q.where(where)
    rows = ctx.session.execute(q.order_by(guardian.last_name, guardian.first_name, patient.last_name, PortalProxy.id))
    return [
        ProxyOut(
            id=link.id,
            guardian_id=g.id,
            guardian_mrn=g.mrn,
            guardian=f"{g.first_name} {g.last_name}",
            patient_id=p.id,
            patient_mrn=p.mrn,
            patient=f"{p.first_name} {p.last_name}",
            created_at=link.created_at,
        )
        for link, g, p in rows
    ]


def add(ctx: Ctx, *, guardian: str | int | None, patient: str | int | None) -> ProxyOut:
    """Let `guardian` act for `patient` in the portal. Raises NotFoundError (guardian, patient),
    ValidationError (patient: the guardian themself), ConflictError (already linked),
    PermissionDenied."""
    from hpms.models import PortalProxy

    require(ctx.actor, "proxy.write")
    g = find_patient(ctx, guardian, field="guardian", active=True)
    p = find_patient(ctx, patient, field="patient", active=True)
    if g.id == p.id:
        raise ValidationError("patient", f"is the guardian themself (MRN {p.mrn})")
    exists = ctx.session.execute(
        sa.select(PortalProxy.id).where(PortalProxy.guardian_id == g.id, PortalProxy.patient_id == p.id)
    ).first()
    if exists:
        raise ConflictError(f"MRN {g.mrn} may already act for MRN {p.mrn}", field="patient")
    link = PortalProxy(org_id=ctx.org_id, guardian_id=g.id, patient_id=p.id, created_by=ctx.actor.user_id)
    ctx.session.add(link)
    ctx.session.flush()
    audit.record(ctx, audit.Event("create", "portal_proxy", link.id, patient_ids=[g.id or 0, p.id or 0]))
    return _out(ctx, PortalProxy.id == link.id)[0]


def list_links(ctx: Ctx, *, patient: str | int | None = None) -> list[ProxyOut]:
    """Every link, or those of `patient` (as guardian or as the one acted for). Raises
    NotFoundError (patient), PermissionDenied."""
    from hpms.models import PortalProxy

    require(ctx.actor, "proxy.read")
    where = None
    if patient is not None:
        pid = find_patient(ctx, patient, field="patient").id
        where = sa.or_(PortalProxy.guardian_id == pid, PortalProxy.patient_id == pid)
    out = _out(ctx, where)
    audit.record_list(ctx, "portal_proxy", [i for o in out for i in (o.guardian_id, o.patient_id)], len(out))
    return out


def remove(ctx: Ctx, *, guardian: str | int | None, patient: str | int | None) -> ProxyOut:
    """End `guardian`'s access to `patient` (their sessions acting for them go back to
    themselves). Raises NotFoundError (guardian, patient, or no such link), PermissionDenied."""
    from hpms.models import PortalProxy, PortalSession

    require(ctx.actor, "proxy.write")
    g = find_patient(ctx, guardian, field="guardian", include_merged=True)
    p = find_patient(ctx, patient, field="patient", include_merged=True)
    found = _out(ctx, sa.and_(PortalProxy.guardian_id == g.id, PortalProxy.patient_id == p.id))
    if not found:
        raise NotFoundError(f"MRN {g.mrn} may not act for MRN {p.mrn}", field="patient")
    ctx.session.execute(sa.delete(PortalProxy).where(PortalProxy.id == found[0].id))
    ctx.session.execute(
        sa.update(PortalSession)
        .where(PortalSession.patient_id == g.id, PortalSession.acting_for_id == p.id)
        .values(acting_for_id=g.id)
    )
    audit.record(ctx, audit.Event("delete", "portal_proxy", found[0].id, patient_ids=[g.id or 0, p.id or 0]))
    return found[0]
