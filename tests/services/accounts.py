"""Patient accounts for the payment and statement tests: patients, a payer, and billed visits
(encounter, claim and claim line written directly) whose ledger is posted with given dates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from tests.services.conftest import fixed_clock


def setup(ctx_for) -> int:
    """A payer 'Acme Health' and a provider; returns the payer's id."""
    from hpms.models import Payer, Provider

    with ctx_for(clock=fixed_clock) as ctx:
        payer = Payer(org_id=ctx.org_id, name="Acme Health", payer_id="ACME1")
        ctx.session.add_all([payer, Provider(org_id=ctx.org_id, first_name="Ann", last_name="Smith")])
        ctx.session.flush()
        return payer.id


def patient(ctx_for, first: str, last: str, **extra) -> str:
    """Registers a patient with an address; returns the MRN."""
    from hpms.services.people import patients

    extra.setdefault("address_line1", "5 Elm St")
    with ctx_for(clock=fixed_clock) as ctx:
        return patients.register(
            ctx,
            first_name=first,
            last_name=last,
            dob="1980-01-01",
            city="Springfield",
            state="NY",
            postal_code="12345",
            allow_duplicate=True,  # the accounts share a birth date
            **extra,
        ).mrn


def visit(
    ctx_for,
    mrn: str,
    payer_id: int,
    dos: dt.date,
    *,
    charge: str = "100.00",
    code: str = "99213",
    paid: str | None = None,
    adjusted: str | None = None,
    to_patient: str | None = None,
    posted: dt.date | None = None,
) -> int:
    """A billed visit on `dos`: one claim line charged `charge`; insurance pays `paid`, adjusts
    `adjusted` and moves `to_patient` to the patient, all effective `posted` (default: the
    day of service). Returns the encounter id."""
    from hpms.models import Claim, ClaimLine, Encounter, Provider
    from hpms.services.lookups import find_patient as find
    from hpms.services.payments import ledger

    with ctx_for(clock=fixed_clock) as ctx:
        s = ctx.session
        pat = find(ctx, mrn)
        prov = s.execute(sa.select(Provider.id)).scalars().first()
        loc = s.execute(sa.text("SELECT id FROM location ORDER BY id")).scalar()
        cents = int(Decimal(charge) * 100)
        enc = Encounter(
            org_id=ctx.org_id,
            patient_id=pat.id,
            provider_id=prov,
            location_id=loc,
            service_date=dos,
            status="billed",
            total_cents=cents,
        )
        s.add(enc)
        s.flush()
        claim = Claim(
            org_id=ctx.org_id,
            encounter_id=enc.id,
            patient_id=pat.id,
            payer_id=payer_id,
            control_number=f"C{enc.id:05d}",
            status="submitted",
            total_cents=cents,
        )
        s.add(claim)
        s.flush()
        line = ClaimLine(claim_id=claim.id, seq=1, code=code, pointers="1", charge_cents=cents, service_date=dos)
        s.add(line)
        s.flush()
        ledger.post(ctx, "charge", charge, patient=mrn, claim_line=line.id, effective_date=dos)
        when = posted or dos
        if paid:
            ledger.post(ctx, "insurance_payment", f"-{paid}", patient=mrn, claim_line=line.id, effective_date=when)
        if adjusted:
            ledger.post(
                ctx, "contractual_adjustment", f"-{adjusted}", patient=mrn, claim_line=line.id, effective_date=when
            )
        if to_patient:
            ledger.post(ctx, "transfer_to_patient", to_patient, patient=mrn, claim_line=line.id, effective_date=when)
        return enc.id


def transfer(ctx_for, mrn: str, encounter_id: int, amount: str, when: dt.date) -> None:
    """Move `amount` of a visit's claim to the patient (as an 835 posting does)."""
    from hpms.models import Claim
    from hpms.services.payments import ledger

    with ctx_for(clock=fixed_clock) as ctx:
        claim = ctx.session.execute(sa.select(Claim.id).where(Claim.encounter_id == encounter_id)).scalar_one()
        ledger.post(ctx, "transfer_to_patient", amount, patient=mrn, claim=claim, effective_date=when)
