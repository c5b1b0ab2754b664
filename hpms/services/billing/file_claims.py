"""The claims of a recorded 837P file as the writer reads them: read in bulk, FILE_CHUNK claims
at a time (memory stays flat), with their lines, diagnoses, subscriber, patient, rendering
provider and the other payer's loops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.interop.x12 import x837p
from hpms.models import Claim, Coverage, Encounter, Patient, Payer, Provider, X12File
from hpms.services.billing.cob import adjudications, next_payer, secondary_coverages
from hpms.services.billing.rows import modifiers_of, pointers_of, select_in, service_day

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

FILE_CHUNK = 2000


def claims_of_file(ctx: Ctx, f: X12File) -> Iterator[x837p.Claim]:
    """The claims of a file as writer input, read FILE_CHUNK at a time (memory stays flat)."""
    session = ctx.session
    conn = session.connection()
    crypto = ctx.crypto
    members: dict[int, str] = {}
    renderings: dict[int, x837p.RenderingProvider] = {}
    payer = session.get(Payer, f.payer_id)
    assert payer is not None  # the file's payer (a foreign key)
    # SBR05 goes with Medicare as a payer that is not primary
    medicare = payer.claim_filing in x837p.MEDICARE_FILING

    def member_of(cov_id: int, enc: str) -> str:
        member = members.get(cov_id)
        if member is None:
            member = members[cov_id] = crypto.decrypt(enc, "member_id")
        return member

    last = 0
    while True:
        rows = conn.execute(
            sa.select(
                col(Claim.id),
                Claim.control_number,
                Claim.total_cents,
                Claim.frequency,
                col(Claim.payer_claim_number),
                Claim.encounter_id,
                Claim.patient_id,
                col(Claim.coverage_id),
                col(Claim.primary_claim_id),
                Encounter.service_date,
                Encounter.place_of_service,
                Encounter.provider_id,
                Patient.first_name,
                Patient.last_name,
                Patient.dob,
                col(Patient.sex_at_birth),
                col(Patient.address_line1),
                col(Patient.address_line2),
                col(Patient.city),
                col(Patient.state),
                col(Patient.postal_code),
            )
            .join(Encounter, Encounter.id == Claim.encounter_id)
            .join(Patient, Patient.id == Claim.patient_id)
            .where(Claim.x12_file_id == f.id, col(Claim.id) > last)
            .order_by(Claim.id)
            .limit(FILE_CHUNK)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        cids = [r.id for r in rows]
        eids = [r.encounter_id for r in rows]
        # secondary claims: the primary payer's adjudication (COB loops)
        cob = adjudications(ctx, sorted({r.primary_claim_id for r in rows if r.primary_claim_id}), members)
        adjudicated = {r.id: cob[r.primary_claim_id][1] for r in rows if r.primary_claim_id in cob}
        # the two biggest reads (every line, every diagnosis) straight from the driver
        lines: dict[int, list] = {}
        for claim_id, seq, code, mods, units, ptrs, charge, dos in select_in(
            conn,
            "SELECT claim_id, seq, code, modifiers, units, pointers, charge_cents, service_date "
            "FROM claim_line WHERE claim_id IN ({}) ORDER BY claim_id, seq",
            cids,
        ):
            lines.setdefault(claim_id, []).append(
                x837p.Line(
                    code=code,
                    modifiers=modifiers_of(mods),
                    charge_cents=charge,
                    units=units,
                    pointers=pointers_of(ptrs),
                    service_date=service_day(dos),
                    adjudication=adjudicated.get(claim_id, {}).get(seq),
                )
            )
        dx: dict[int, list[str]] = {}
        for encounter_id, code in select_in(
            conn,
            "SELECT encounter_id, code FROM encounter_diagnosis WHERE encounter_id IN ({}) ORDER BY encounter_id, seq",
            eids,
        ):
            dx.setdefault(encounter_id, []).append(code)
        covs = {
            c.id: c
            for c in conn.execute(
                sa.select(
                    col(Coverage.id),
                    Coverage.member_id_enc,
                    Coverage.relationship,
                    col(Coverage.group_number),
                    col(Coverage.subscriber_first_name),
                    col(Coverage.subscriber_last_name),
                    col(Coverage.subscriber_dob),
                    Coverage.priority,
                    col(Coverage.medicare_secondary_type),
                ).where(col(Coverage.id).in_({r.coverage_id for r in rows if r.coverage_id}))
            )
        }
        seconds = secondary_coverages(conn, f.payer_id, {r.patient_id for r in rows if not r.primary_claim_id})
        need = {r.provider_id for r in rows} - renderings.keys()
        provs = (
            {
                p.id: p
                for p in conn.execute(
                    sa.select(
                        Provider.id, Provider.last_name, Provider.first_name, col(Provider.npi), col(Provider.taxonomy)
                    ).where(col(Provider.id).in_(need))
                )
            }
            if need
            else {}
        )
        for r in rows:
            cov = covs.get(r.coverage_id)
            sex = {"female": "F", "male": "M"}.get(r.sex_at_birth or "", "U")
            addr = dict(
                address1=r.address_line1 or "",
                address2=r.address_line2,
                city=r.city or "",
                state=r.state or "",
                zip="".join(ch for ch in (r.postal_code or "") if ch.isdigit()),
            )
            member = ""
            if cov is not None:
                known = members.get(cov.id)
                if known is None:
                    known = members[cov.id] = crypto.decrypt(cov.member_id_enc, "member_id")
                member = known
            responsibility = "S" if r.primary_claim_id else "P"
            insurance_type = (
                cov.medicare_secondary_type if medicare and cov is not None and r.primary_claim_id else None
            )
            if cov is None or cov.relationship == "self":
                subscriber = x837p.Subscriber(
                    last=r.last_name,
                    first=r.first_name,
                    member_id=member,
                    dob=r.dob,
                    sex=sex,
                    relationship="18",
                    group_number=cov.group_number if cov else None,
                    payer_responsibility=responsibility,
                    insurance_type=insurance_type,
                    **addr,
                )
                patient = None
            else:
                subscriber = x837p.Subscriber(
                    last=cov.subscriber_last_name or r.last_name,
                    first=cov.subscriber_first_name or "",
                    member_id=member,
                    dob=cov.subscriber_dob,
                    sex="U",
                    relationship="",
                    group_number=cov.group_number,
                    payer_responsibility=responsibility,
                    insurance_type=insurance_type,
                    **addr,
                )
                rel = {"spouse": "01", "child": "19"}.get(cov.relationship, "G8")
                patient = x837p.Patient(
                    last=r.last_name, first=r.first_name, dob=r.dob, sex=sex, relationship=rel, **addr
                )
            other = None
            if r.primary_claim_id:
                if r.primary_claim_id in cob:
                    other = cob[r.primary_claim_id][0]
            elif r.patient_id in seconds and (cov is None or cov.priority == "primary"):
                other = next_payer(seconds[r.patient_id], r, member_of)
            rendering = renderings.get(r.provider_id)
            if rendering is None:
                prov = provs[r.provider_id]
                rendering = renderings[r.provider_id] = x837p.RenderingProvider(
                    last=prov.last_name, first=prov.first_name, npi=prov.npi or "", taxonomy=prov.taxonomy
                )
            yield x837p.Claim(
                control_number=r.control_number,
                total_cents=r.total_cents,
                place_of_service=r.place_of_service,
                frequency=r.frequency,
                payer_claim_number=r.payer_claim_number,
                diagnoses=tuple(dx.get(r.encounter_id, ())),
                service_date=r.service_date,
                rendering=rendering,
                subscriber=subscriber,
                patient=patient,
                lines=tuple(lines.get(r.id, ())),
                other_payer=other,
            )
