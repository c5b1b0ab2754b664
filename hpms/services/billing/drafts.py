"""Claim drafts: the signed encounters read in bulk (a handful of queries per chunk of
thousands) into what the scrubber checks and the run turns into claims, priced per payer; and
the scrub of encounters on request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import Action, NotFoundError
from hpms.models import BillingProfile, Coverage, Encounter, Location, Payer, Provider
from hpms.services.billing.fees import Schedule, load_schedule, price_in
from hpms.services.billing.rows import birth_day, modifiers_of, pointers_of, select_in, service_day
from hpms.services.billing.scrubber import ClaimDraft, DraftLine, Finding, scrub
from hpms.services.platform import audit
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx


@dataclass(slots=True)
class _Enc:
    id: int
    patient_id: int
    provider_id: int
    location_id: int
    service_date: dt.date
    place_of_service: str

    def __post_init__(self) -> None:
        self.service_date = service_day(self.service_date)


@dataclass(slots=True)
class DraftMeta:
    """What the run needs of a draft besides the claim: who, billed to whom, from where."""

    patient_id: int
    payer_id: int | None
    coverage_id: int | None
    location_id: int


def build_drafts(
    ctx: Ctx, encounter_ids: list[int], *, fees: Schedule | None = None, profile: BillingProfile | None = None
) -> list[tuple[ClaimDraft, DraftMeta]]:
    """Drafts for encounters, read in bulk (a handful of queries per chunk)."""
    session = ctx.session
    if not encounter_ids:
        return []
    conn = session.connection()  # column reads: no ORM row machinery
    fees = load_schedule(session, ctx.org_id) if fees is None else fees
    profile = session.get(BillingProfile, ctx.org_id) if profile is None else profile
    encs = [
        _Enc(*row)
        for row in select_in(
            conn,
            "SELECT id, patient_id, provider_id, location_id, service_date, place_of_service FROM encounter "
            "WHERE id IN ({}) ORDER BY id",
            encounter_ids,
        )
    ]
    if not encs:
        return []
    dx: dict[int, list[str]] = {}
    for encounter_id, code in select_in(
        conn,
        "SELECT encounter_id, code FROM encounter_diagnosis WHERE encounter_id IN ({}) ORDER BY encounter_id, seq",
        encounter_ids,
    ):
        dx.setdefault(encounter_id, []).append(code)
    lines: dict[int, list] = {}
    for encounter_id, seq, code, mods, units, ptrs, dos in select_in(
        conn,
        "SELECT encounter_id, seq, code, modifiers, units, pointers, service_date FROM encounter_line "
        "WHERE encounter_id IN ({}) ORDER BY encounter_id, seq",
        encounter_ids,
    ):
        lines.setdefault(encounter_id, []).append((seq, code, mods, units, ptrs, dos))
    pids = {e.patient_id for e in encs}
    provs = {
        r.id: r.npi
        for r in conn.execute(
            sa.select(Provider.id, Provider.npi).where(col(Provider.id).in_({e.provider_id for e in encs}))
        )
    }
    locs = {
        r.id: r
        for r in conn.execute(
            sa.select(
                Location.id,
                col(Location.npi),
                col(Location.postal_code),
                col(Location.address_line1),
                col(Location.city),
                col(Location.state),
            ).where(col(Location.id).in_({e.location_id for e in encs}))
        )
    }
    # (first, last, dob, street, city, state, zip) as plain tuples: read for every draft
    pats = {
        pid: rest
        for pid, *rest in select_in(
            conn,
            "SELECT id, first_name, last_name, dob, address_line1, city, state, postal_code FROM patient "
            "WHERE id IN ({})",
            sorted(pids),
        )
    }
    covs: dict[int, list] = {}
    for r in conn.execute(
        sa.select(
            Coverage.id,
            Coverage.patient_id,
            Coverage.payer_id,
            Coverage.member_id_enc,
            Coverage.relationship,
            col(Coverage.subscriber_first_name),
            col(Coverage.subscriber_last_name),
            col(Coverage.subscriber_dob),
            col(Coverage.valid_from),
            col(Coverage.valid_to),
            col(Coverage.medicare_secondary_type),
        )
        .where(Coverage.patient_id.in_(pids), Coverage.priority == "primary", Coverage.active.is_(True))
        .order_by(Coverage.id)
    ):
        covs.setdefault(r.patient_id, []).append(r)
    payers = {
        r.id: (r.payer_id, r.claim_filing)
        for r in conn.execute(sa.select(Payer.id, Payer.payer_id, Payer.claim_filing).where(Payer.org_id == ctx.org_id))
    }
    today = ctx.now().date()
    tax_id = profile.tax_id if profile else None
    out = []
    for e in encs:
        cov = next(
            (
                c
                for c in covs.get(e.patient_id, ())
                if (c.valid_from is None or c.valid_from <= e.service_date)
                and (c.valid_to is None or e.service_date <= c.valid_to)
            ),
            None,
        )
        first, last, dob, street, city, state, zip_ = pats[e.patient_id]
        payer_id = cov.payer_id if cov else None
        dlines = []
        for seq, code, mods_text, units, ptrs, dos in lines.get(e.id, ()):
            mods = modifiers_of(mods_text)
            unit_price = price_in(fees, code, mods, payer_id)
            dlines.append(
                DraftLine(
                    seq=seq,
                    code=code,
                    modifiers=mods,
                    units=units,
                    pointers=pointers_of(ptrs),
                    charge_cents=None if unit_price is None else unit_price * units,
                    service_date=service_day(dos),
                )
            )
        total = sum(dl.charge_cents or 0 for dl in dlines)
        self_ = cov is not None and cov.relationship == "self"
        loc = locs[e.location_id]
        payer_code, filing = payers.get(payer_id, (None, "CI"))
        draft = ClaimDraft(
            encounter_id=e.id,
            service_date=e.service_date,
            place_of_service=e.place_of_service,
            diagnoses=tuple(dx.get(e.id, ())),
            lines=dlines,
            total_cents=total,
            billing_npi=loc.npi,
            billing_zip=loc.postal_code,
            billing_address1=loc.address_line1,
            billing_city=loc.city,
            billing_state=loc.state,
            patient_address1=street,
            patient_city=city,
            patient_state=state,
            patient_zip=zip_,
            tax_id=tax_id,
            rendering_npi=provs.get(e.provider_id),
            payer_id=payer_id,
            payer_code=payer_code,
            payer_filing=filing,
            responsibility="P",
            medicare_secondary_type=cov.medicare_secondary_type if cov else None,
            subscriber_member_id=cov.member_id_enc if cov else None,
            subscriber_last=(last if self_ else cov.subscriber_last_name) if cov else None,
            subscriber_first=(first if self_ else cov.subscriber_first_name) if cov else None,
            subscriber_dob=(birth_day(dob) if self_ else cov.subscriber_dob) if cov else None,
            today=today,
        )
        out.append(
            (
                draft,
                DraftMeta(
                    patient_id=e.patient_id,
                    payer_id=payer_id,
                    coverage_id=cov.id if cov else None,
                    location_id=e.location_id,
                ),
            )
        )
    return out


def scrub_encounters(ctx: Ctx, encounter_ids: list[int] | None = None) -> list[tuple[int, list[Finding]]]:
    """The scrub of encounters on request: the findings of each (default: every signed one); no
    write but the audit event. Raises NotFoundError (an unknown encounter), PermissionDenied."""
    require(ctx.actor, "claims.read")
    if encounter_ids is None:
        encounter_ids = list(
            ctx.session.execute(
                sa.select(Encounter.id)
                .where(Encounter.org_id == ctx.org_id, Encounter.status == "signed")
                .order_by(Encounter.id)
            ).scalars()
        )
    drafts = build_drafts(ctx, encounter_ids)
    found = {d.encounter_id for d, _ in drafts}
    missing = [i for i in encounter_ids if i not in found]
    if missing:
        raise NotFoundError(f"no encounter {missing[0]}", action=Action("encounters", "list"))
    if drafts:
        audit.record(
            ctx,
            audit.Event(
                "read",
                "encounter",
                None,
                patient_ids=sorted({m.patient_id for _, m in drafts}),
                detail=f"scrub of {len(drafts)}",
            ),
        )
    return [(d.encounter_id, scrub(d)) for d, _ in drafts]
