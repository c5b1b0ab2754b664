"""What a signed link in a message opens without a sign-in: one visit to cancel or move (the
online booking's own rules: the cancellation window, the late-cancel flag, the waitlist), or
one completed visit's satisfaction survey. The link is checked first (links.py); everything
after runs as the patient it names and is audited so. A link that is bad, expired, or names a
visit no longer the patient's (or no longer to come) opens nothing: None."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpms.errors import ConflictError
from hpms.services.platform import audit
from hpms.services.portal import access, links

if TYPE_CHECKING:
    from collections.abc import Callable

    from hpms.models import AppointmentOut, SlotOut
    from hpms.services.platform.context import Ctx


@dataclass(frozen=True)
class Linked:
    """The visit a link opens, and the context acting as its patient."""

    ctx: Ctx
    link: links.Link
    visit: AppointmentOut


def _visit(ctx: Ctx, token: str | None, purpose: str, *, upcoming: bool) -> Linked | None:
    from hpms.errors import NotFoundError
    from hpms.services.scheduling import online

    access.check_server(ctx)
    link = links.check(ctx, token, purpose)
    if link is None:
        return None
    pctx = access.as_patient(ctx, link.patient_id)
    try:
        visits = online.my_visits(pctx, include_past=not upcoming)
    except NotFoundError:  # the patient is gone (merged, inactive)
        return None
    visit = next((v for v in visits if v.id == link.appointment_id), None)
    if visit is None or (upcoming and visit.status not in ("booked", "confirmed")):
        return None
    return Linked(pctx, link, visit)


def manage(ctx: Ctx, *, token: str | None) -> Linked | None:
    """The visit to come a manage link opens (audited as a read by its patient), or None."""
    found = _visit(ctx, token, links.MANAGE, upcoming=True)
    if found is not None:
        audit.record(
            found.ctx,
            audit.Event("read", "appointment", found.visit.id, patient_id=found.link.patient_id, detail="portal link"),
        )
    return found


def manage_call(ctx: Ctx, *, token: str | None, service: Callable[..., Any], **kw: Any) -> Any:
    """`service(patient ctx, appointment id, **kw)` for the visit of a manage link (None when
    the link opens nothing); the online booking's services then apply their own rules."""
    found = _visit(ctx, token, links.MANAGE, upcoming=True)
    if found is None:
        return None
    return service(found.ctx, found.visit.id, **kw)


def times(pctx: Ctx, appointment_id: int) -> list[SlotOut]:
    """The times open online to move the visit to (same type, provider and location)."""
    from hpms.services.scheduling import online

    visit = next(v for v in online.my_visits(pctx) if v.id == appointment_id)
    slots = online.open_slots(pctx, type=visit.type_id, location=visit.location_id, provider=visit.provider_id)
    return [s for s in slots if s.start != visit.start]


@dataclass(frozen=True)
class Survey:
    """The completed visit a survey link opens, and whether it was answered already."""

    visit: AppointmentOut
    answered: bool


def survey(ctx: Ctx, *, token: str | None) -> Survey | None:
    """The completed visit of a survey link (None when the link opens nothing)."""
    from hpms.services.people import surveys

    found = _visit(ctx, token, links.SURVEY, upcoming=False)
    if found is None or found.visit.status != "completed":
        return None
    answered = bool(surveys.answered(found.ctx, [found.visit.id]))
    audit.record(
        found.ctx,
        audit.Event("read", "appointment", found.visit.id, patient_id=found.link.patient_id, detail="survey link"),
    )
    return Survey(found.visit, answered)


def answer(ctx: Ctx, *, token: str | None, score: str | None, comment: str | None) -> Survey | None:
    """Record the patient's answer to the survey of a link, through the survey service (as
    the patient). None when the link opens nothing; raises ValidationError (score, comment)
    before anything is written, ConflictError when the visit was answered already."""
    from hpms.services.people import surveys
    from hpms.services.scheduling.online import on_behalf

    found = _visit(ctx, token, links.SURVEY, upcoming=False)
    if found is None or found.visit.status != "completed":
        return None
    with on_behalf(found.ctx, "surveys.write"):
        try:
            surveys.record(found.ctx, appointment=found.visit.id, score=score, comment=comment)
        except ConflictError:
            if surveys.answered(found.ctx, [found.visit.id]):
                raise ConflictError("this visit's survey was answered already", field="survey") from None
            raise
    return Survey(found.visit, True)
