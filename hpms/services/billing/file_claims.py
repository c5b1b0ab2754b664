"""The claims of a recorded 837P file as the writer reads them: read in bulk, FILE_CHUNK claims
at a time (memory stays flat), with their lines, diagnoses, subscriber, patient, rendering
provider and the other payer's loops."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa
from sqlmodel import col

from hpms.interop.x12 import x837p
from hpms.models import Payer, Provider, X12File
from hpms.services.billing.cob import adjudications, next_payer, secondary_coverages
from hpms.services.billing.rows import birth_day, modifiers_of, pointers_of, select_in, select_rows, service_day

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

FILE_CHUNK = 2000

_SEX = {"female": "F", "male": "M"}
_RELATIONSHIP = {"spouse": "01", "child": "19"}  # else G8 (other)


def _claims_sql(mark: str) -> str:
    return (
        "SELECT c.id, c.control_number, c.total_cents, c.frequency, c.payer_claim_number, c.encounter_id, "
        "c.patient_id, c.coverage_id, c.primary_claim_id, e.service_date, e.place_of_service, e.provider_id, "
        "p.first_name, p.last_name, p.dob, p.sex_at_birth, p.address_line1, p.address_line2, p.city, p.state, "
        "p.postal_code FROM claim c JOIN encounter e ON e.id = c.encounter_id JOIN patient p ON p.id = c.patient_id "
        f"WHERE c.x12_file_id = {mark} AND c.id > {mark} ORDER BY c.id LIMIT {mark}"
    )


# the claims of a file after a claim id, as the driver returns them: [pyformat, qmark]
_CLAIMS_OF_FILE = (_claims_sql("%s"), _claims_sql("?"))


class _Visit(NamedTuple):
    """What the next payer's loops read of a claim's visit."""

    service_date: dt.date
    last_name: str
    first_name: str


@functools.lru_cache(maxsize=4096)
def _digits(text: str) -> str:
    """A ZIP code as the 837P writes it: its digits."""
    return "".join(ch for ch in text if ch.isdigit())


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

    lines_seen: dict[tuple, x837p.Line] = {}
    last = 0
    while True:
        rows = select_rows(conn, _CLAIMS_OF_FILE[conn.dialect.paramstyle == "qmark"], [f.id, last, FILE_CHUNK])
        if not rows:
            return
        last = rows[-1][0]
        cids = [r[0] for r in rows]
        eids = [r[5] for r in rows]
        # secondary claims: the primary payer's adjudication (COB loops)
        cob = adjudications(ctx, sorted({r[8] for r in rows if r[8]}), members)
        adjudicated = {r[0]: cob[r[8]][1] for r in rows if r[8] in cob}
        # the two biggest reads (every line, every diagnosis) straight from the driver
        lines: dict[int, list] = {}
        if len(lines_seen) > 50_000:  # a line repeats across claims (same code, charge, date...)
            lines_seen.clear()
        for claim_id, seq, code, mods, units, ptrs, charge, dos in select_in(
            conn,
            "SELECT claim_id, seq, code, modifiers, units, pointers, charge_cents, service_date "
            "FROM claim_line WHERE claim_id IN ({}) ORDER BY claim_id, seq",
            cids,
        ):
            adj = adjudicated.get(claim_id, {}).get(seq) if adjudicated else None
            key = (code, mods, units, ptrs, charge, dos)
            line = lines_seen.get(key) if adj is None else None
            if line is None:
                line = x837p.Line(
                    code=code,
                    modifiers=modifiers_of(mods),
                    charge_cents=charge,
                    units=units,
                    pointers=pointers_of(ptrs),
                    service_date=service_day(dos),
                    adjudication=adj,
                )
                if adj is None:
                    lines_seen[key] = line
            lines.setdefault(claim_id, []).append(line)
        dx: dict[int, list[str]] = {}
        for encounter_id, code in select_in(
            conn,
            "SELECT encounter_id, code FROM encounter_diagnosis WHERE encounter_id IN ({}) ORDER BY encounter_id, seq",
            eids,
        ):
            dx.setdefault(encounter_id, []).append(code)
        covs = {
            c[0]: c
            for c in select_in(
                conn,
                "SELECT id, member_id_enc, relationship, group_number, subscriber_first_name, "
                "subscriber_last_name, subscriber_dob, priority, medicare_secondary_type FROM coverage "
                "WHERE id IN ({})",
                sorted({r[7] for r in rows if r[7]}),
            )
        }
        seconds = secondary_coverages(conn, f.payer_id, {r[6] for r in rows if not r[8]})
        need = {r[11] for r in rows} - renderings.keys()
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
        for (
            claim_id,
            control_number,
            total_cents,
            frequency,
            payer_claim_number,
            encounter_id,
            patient_id,
            coverage_id,
            primary_claim_id,
            service_date,
            place_of_service,
            provider_id,
            first_name,
            last_name,
            dob,
            sex_at_birth,
            address1,
            address2,
            city,
            state,
            postal_code,
        ) in rows:
            cov = covs.get(coverage_id)
            sex = _SEX.get(sex_at_birth, "U")
            address1 = address1 or ""
            city = city or ""
            state = state or ""
            zip_ = _digits(postal_code or "")
            dob = birth_day(dob)
            service_date = service_day(service_date)
            member = ""
            if cov is not None:
                known = members.get(coverage_id)
                if known is None:
                    known = members[coverage_id] = crypto.decrypt(cov[1], "member_id")
                member = known
            responsibility = "S" if primary_claim_id else "P"
            insurance_type = cov[8] if medicare and cov is not None and primary_claim_id else None
            if cov is None or cov[2] == "self":
                subscriber = x837p.Subscriber(
                    last=last_name,
                    first=first_name,
                    member_id=member,
                    dob=dob,
                    sex=sex,
                    relationship="18",
                    group_number=cov[3] if cov else None,
                    payer_responsibility=responsibility,
                    insurance_type=insurance_type,
                    address1=address1,
                    address2=address2,
                    city=city,
                    state=state,
                    zip=zip_,
                )
                patient = None
            else:
                sub_dob = cov[6]
                subscriber = x837p.Subscriber(
                    last=cov[5] or last_name,
                    first=cov[4] or "",
                    member_id=member,
                    dob=None if sub_dob is None else birth_day(sub_dob),
                    sex="U",
                    relationship="",
                    group_number=cov[3],
                    payer_responsibility=responsibility,
                    insurance_type=insurance_type,
                    address1=address1,
                    address2=address2,
                    city=city,
                    state=state,
                    zip=zip_,
                )
                patient = x837p.Patient(
                    last=last_name,
                    first=first_name,
                    dob=dob,
                    sex=sex,
                    relationship=_RELATIONSHIP.get(cov[2], "G8"),
                    address1=address1,
                    address2=address2,
                    city=city,
                    state=state,
                    zip=zip_,
                )
            other = None
            if primary_claim_id:
                if primary_claim_id in cob:
                    other = cob[primary_claim_id][0]
            elif patient_id in seconds and (cov is None or cov[7] == "primary"):
                other = next_payer(seconds[patient_id], _Visit(service_date, last_name, first_name), member_of)
            rendering = renderings.get(provider_id)
            if rendering is None:
                prov = provs[provider_id]
                rendering = renderings[provider_id] = x837p.RenderingProvider(
                    last=prov.last_name, first=prov.first_name, npi=prov.npi or "", taxonomy=prov.taxonomy
                )
            yield x837p.Claim(
                control_number=control_number,
                total_cents=total_cents,
                place_of_service=place_of_service,
                frequency=frequency,
                payer_claim_number=payer_claim_number,
                diagnoses=tuple(dx.get(encounter_id, ())),
                service_date=service_date,
                rendering=rendering,
                subscriber=subscriber,
                patient=patient,
                lines=tuple(lines.get(claim_id, ())),
                other_payer=other,
            )
