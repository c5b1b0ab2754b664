"""Claim drafts: the signed encounters read in bulk (a handful of queries per chunk of
thousands) into what the scrubber checks and the run turns into claims, priced per payer; and
the scrub of encounters on request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa

from hpms.errors import Action, NotFoundError
from hpms.models import BillingProfile, Encounter, Payer
from hpms.services.billing.fees import Schedule, load_schedule, price_in
from hpms.services.billing.rows import birth_day, modifiers_of, pointers_of, select_in, service_day
from hpms.services.billing.scrubber import ClaimDraft, DraftLine, Finding, scrub
from hpms.services.platform import audit
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx


class _Cov(NamedTuple):
    """A primary coverage as a draft reads it (dates as dates)."""

    id: int
    payer_id: int
    member_id_enc: str
    relationship: str
    subscriber_first_name: str | None
    subscriber_last_name: str | None
    subscriber_dob: dt.date | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    medicare_secondary_type: str | None


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
    conn = session.connection()  # column reads, straight from the driver: no row machinery
    fees = load_schedule(session, ctx.org_id) if fees is None else fees
    profile = session.get(BillingProfile, ctx.org_id) if profile is None else profile
    encs = select_in(
        conn,
        "SELECT id, patient_id, provider_id, location_id, service_date, place_of_service FROM encounter "
        "WHERE id IN ({}) ORDER BY id",
        encounter_ids,
    )
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
        lines.setdefault(encounter_id, []).append((seq, code, modifiers_of(mods), units, pointers_of(ptrs), dos))
    pids = sorted({e[1] for e in encs})
    provs = dict(select_in(conn, "SELECT id, npi FROM provider WHERE id IN ({})", sorted({e[2] for e in encs})))
    # (npi, zip, street, city, state)
    locs = {
        lid: rest
        for lid, *rest in select_in(
            conn,
            "SELECT id, npi, postal_code, address_line1, city, state FROM location WHERE id IN ({})",
            sorted({e[3] for e in encs}),
        )
    }
    # (first, last, dob, street, city, state, zip) as plain tuples: read for every draft
    pats = {
        pid: rest
        for pid, *rest in select_in(
            conn,
            "SELECT id, first_name, last_name, dob, address_line1, city, state, postal_code FROM patient "
            "WHERE id IN ({})",
            pids,
        )
    }
    covs: dict[int, list[_Cov]] = {}
    for cov_id, patient_id, payer_id, member, rel, sfirst, slast, sdob, since, until, msp in select_in(
        conn,
        "SELECT id, patient_id, payer_id, member_id_enc, relationship, subscriber_first_name, "
        "subscriber_last_name, subscriber_dob, valid_from, valid_to, medicare_secondary_type FROM coverage "
        "WHERE patient_id IN ({}) AND priority = 'primary' AND active ORDER BY id",
        pids,
    ):
        covs.setdefault(patient_id, []).append(
            _Cov(
                cov_id,
                payer_id,
                member,
                rel,
                sfirst,
                slast,
                None if sdob is None else birth_day(sdob),
                None if since is None else service_day(since),
                None if until is None else service_day(until),
                msp,
            )
        )
    payers = {
        r.id: (r.payer_id, r.claim_filing)
        for r in conn.execute(sa.select(Payer.id, Payer.payer_id, Payer.claim_filing).where(Payer.org_id == ctx.org_id))
    }
    today = ctx.now().date()
    tax_id = profile.tax_id if profile else None
    out = []
    no_lines: list = []
    for eid, patient_id, provider_id, location_id, service_date, pos in encs:
        dos_ = service_day(service_date)
        cov = None
        for c in covs.get(patient_id, ()):
            if (c.valid_from is None or c.valid_from <= dos_) and (c.valid_to is None or dos_ <= c.valid_to):
                cov = c
                break
        first, last, dob, street, city, state, zip_ = pats[patient_id]
        payer_id = cov.payer_id if cov else None
        dlines = []
        total = 0
        for seq, code, mods, units, ptrs, dos in lines.get(eid, no_lines):
            unit_price = price_in(fees, code, mods, payer_id)
            charge = None if unit_price is None else unit_price * units
            if charge:
                total += charge
            dlines.append(DraftLine(seq, code, mods, units, ptrs, charge, service_day(dos)))
        loc_npi, loc_zip, loc_street, loc_city, loc_state = locs[location_id]
        payer_code, filing = payers.get(payer_id, (None, "CI"))
        if cov is None:
            member = sub_last = sub_first = sub_dob = msp = None
        elif cov.relationship == "self":
            member, sub_last, sub_first, sub_dob = cov.member_id_enc, last, first, birth_day(dob)
            msp = cov.medicare_secondary_type
        else:
            member, sub_last, sub_first = cov.member_id_enc, cov.subscriber_last_name, cov.subscriber_first_name
            sub_dob, msp = cov.subscriber_dob, cov.medicare_secondary_type
        draft = ClaimDraft(
            encounter_id=eid,
            service_date=dos_,
            place_of_service=pos,
            diagnoses=tuple(dx.get(eid, ())),
            lines=dlines,
            total_cents=total,
            billing_npi=loc_npi,
            billing_zip=loc_zip,
            billing_address1=loc_street,
            billing_city=loc_city,
            billing_state=loc_state,
            patient_address1=street,
            patient_city=city,
            patient_state=state,
            patient_zip=zip_,
            tax_id=tax_id,
            rendering_npi=provs.get(provider_id),
            payer_id=payer_id,
            payer_code=payer_code,
            payer_filing=filing,
            responsibility="P",
            medicare_secondary_type=msp,
            subscriber_member_id=member,
            subscriber_last=sub_last,
            subscriber_first=sub_first,
            subscriber_dob=sub_dob,
            today=today,
        )
        out.append((draft, DraftMeta(patient_id, payer_id, cov.id if cov else None, location_id)))
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
