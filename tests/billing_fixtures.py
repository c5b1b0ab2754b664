"""Shared set-up for the billing and claims tests: a practice ready to bill (location NPI and
ZIP+4, a provider with an NPI, two payers, coverage including a dependent child, fees and a
billing profile), signed encounters, bulk copies of an encounter, a secondary claim queued
after a primary payer's 835, 837P parsing and pyx12 validation with the validator's messages
kept for the assertion."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

# Dates of service a few days back: the services run on the system clock here, and a date of
# service must not be in the future in the location's time zone.
DOS = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).date()
DOS_EARLY = DOS - dt.timedelta(days=5)

GROUP_NPI = "1234567893"
PROVIDER_NPI = "1245319599"


@dataclass
class Practice:
    bob: str  # MRN, self-insured on ACME1
    kid: str  # MRN, dependent child on BETA2 (subscriber Bob)
    nora: str  # MRN, no coverage
    acme: int  # payer row ids
    beta: int


def setup_practice(ctx_for, *, profile: bool = True) -> Practice:
    from hpms.services import lookups
    from hpms.services.billing import fees
    from hpms.services.billing import runner as billing
    from hpms.services.people import coverage, patients
    from hpms.services.platform import org
    from hpms.services.scheduling import resources as r

    with ctx_for() as ctx:
        org.update_location(
            ctx,
            "Main",
            npi=GROUP_NPI,
            address_line1="1 Main St",
            city="Springfield",
            state="NY",
            postal_code="12345-6789",
            phone="212-555-0100",
        )
        r.add_provider(ctx, first_name="Ann", last_name="Smith", credentials="MD", npi=PROVIDER_NPI)
        coverage.add_payer(ctx, name="Acme Health", payer_id="ACME1")
        coverage.add_payer(ctx, name="Beta Care", payer_id="BETA2")
        bob = patients.register(
            ctx,
            first_name="Bob",
            last_name="Jones",
            dob="1970-01-01",
            sex_at_birth="male",
            address_line1="5 Elm",
            city="Springfield",
            state="NY",
            postal_code="12345",
        )
        kid = patients.register(
            ctx,
            first_name="Kid",
            last_name="Jones",
            dob="2015-05-05",
            sex_at_birth="female",
            address_line1="5 Elm",
            city="Springfield",
            state="NY",
            postal_code="12345",
        )
        nora = patients.register(
            ctx,
            first_name="Nora",
            last_name="Cover",
            dob="1980-05-05",
            sex_at_birth="female",
            address_line1="7 Oak",
            city="Springfield",
            state="NY",
            postal_code="12345",
        )
        coverage.add_coverage(ctx, patient=bob.mrn, payer="ACME1", member_id="M123456")
        coverage.add_coverage(
            ctx,
            patient=kid.mrn,
            payer="BETA2",
            member_id="M999",
            relationship="child",
            subscriber="Jones, Bob",
            subscriber_dob="1970-01-01",
        )
        fees.set_fee(ctx, "99213", "120.00")
        fees.set_fee(ctx, "99214", "180.00")
        fees.set_fee(ctx, "36415", "15.00")
        fees.set_fee(ctx, "93000", "45.50")
        fees.set_fee(ctx, "99213", "100.00", payer="ACME1")
        if profile:
            billing.set_profile(
                ctx,
                tax_id="12-3456789",
                submitter_id="SUB01",
                receiver_id="CH01",
                receiver_name="Clearing",
                contact_name="Billing Office",
                contact_phone="212-555-0100",
            )
        acme_id = lookups.find_payer(ctx, "ACME1").id
        beta_id = lookups.find_payer(ctx, "BETA2").id
    return Practice(bob=bob.mrn, kid=kid.mrn, nora=nora.mrn, acme=acme_id, beta=beta_id)


def signed(ctx_for, mrn: str, dx: str, *proc: str, date: dt.date = DOS, sign: bool = True) -> int:
    """A (signed) encounter by Dr Smith; returns its id."""
    from hpms.services.billing import encounters

    with ctx_for() as ctx:
        e = encounters.create(ctx, patient=mrn, provider="Smith", date=date.isoformat(), dx=dx, proc=list(proc))
        if sign:
            encounters.sign(ctx, e.id)
    return e.id


def bulk_copies(settings, template_id: int, n: int) -> list[int]:
    """`n` signed copies of encounter `template_id` (with its diagnoses and lines), inserted in
    bulk; returns their ids."""
    from hpms.db import bulk_insert, get_engine, session_scope
    from hpms.models import Encounter, EncounterDiagnosis, EncounterLine

    enc_t, dx_t, line_t = Encounter.__table__, EncounterDiagnosis.__table__, EncounterLine.__table__
    with session_scope(get_engine(settings)) as session:
        conn = session.connection()
        tpl = conn.execute(sa.select(enc_t).where(enc_t.c.id == template_id)).mappings().one()
        dxs = [dict(r) for r in conn.execute(sa.select(dx_t).where(dx_t.c.encounter_id == template_id)).mappings()]
        lines = [
            dict(r) for r in conn.execute(sa.select(line_t).where(line_t.c.encounter_id == template_id)).mappings()
        ]
        row = {k: v for k, v in tpl.items() if k != "id"}
        row.update(status="signed", appointment_id=None, billed_at=None)
        ids = [
            r[0]
            for r in conn.execute(
                enc_t.insert().returning(enc_t.c.id, sort_by_parameter_order=True), [dict(row) for _ in range(n)]
            )
        ]
        bulk_insert(session, dx_t, [dict(d, encounter_id=i) for i in ids for d in dxs])
        bulk_insert(
            session,
            line_t,
            [{k: v for k, v in dict(ln, encounter_id=i).items() if k != "id"} for i in ids for ln in lines],
        )
    return ids


# ---- 837P files ----------------------------------------------------------------------------


def segments(text: str) -> list[list[str]]:
    return [s.strip().split("*") for s in text.split("~") if s.strip()]


def claim_numbers(text: str) -> list[str]:
    """CLM01 of every claim in a file, in order."""
    return [s[1] for s in segments(text) if s[0] == "CLM"]


def pyx12_check(text: str) -> tuple[bool, str]:
    """(valid, what pyx12 logged at WARNING and above)."""
    import pyx12.params
    import pyx12.x12n_document

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("pyx12")
    logger.addHandler(handler)
    try:
        ok = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(),
            src_file=io.StringIO(text),
            fd_997=None,
            fd_html=None,
            fd_xmldoc=None,
            fd_json=io.StringIO(),
        )
    finally:
        logger.removeHandler(handler)
    return bool(ok), buf.getvalue()


def assert_valid_837(path: Path | str) -> str:
    """The file's text, after asserting pyx12 finds no error in it."""
    text = Path(path).read_text(encoding="ascii")
    ok, log = pyx12_check(text)
    assert ok, f"pyx12 rejects {path}:\n{log}\n{text[:3000]}"
    return text


def x12_files(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).iterdir() if p.suffix == ".x12" and not p.name.startswith("."))


def leftovers(directory: Path) -> list[str]:
    """Temp or probe files a run left in its output directory."""
    return sorted(p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp") or p.name.startswith(".hpms"))


CLM_RE = re.compile(r"^CLM\*([^*]+)\*", re.M)


def queue_secondary(
    settings, ctx_for, practice: Practice, directory: Path, *, payer: str = "BETA2", **coverage: object
) -> int:
    """Bob's visit (99213-25 100.00, 36415 15.00) billed to ACME1 into `directory`, then a
    secondary coverage on `payer` (self, member S555, group GB7, `coverage` for the rest) and
    ACME's 835 leaving 10.00 to Bob: returns the id of the secondary claim it queues, ready for
    the next billing run."""
    from hpms.services.billing import runner as billing
    from hpms.services.payments import remits
    from hpms.services.people import coverage as coverages
    from tests.remit_fixtures import claim, interchange, line, payment

    signed(ctx_for, practice.bob, "E11.9,I10", "99213:25:1,2", "36415::2")
    assert billing.run(settings, out_dir=str(directory)).claims == 1
    with ctx_for() as ctx:
        coverages.add_coverage(
            ctx,
            patient=practice.bob,
            payer=payer,
            member_id="S555",
            priority="secondary",
            group_number="GB7",
            **coverage,
        )
    from hpms.db import get_engine

    with get_engine(settings).connect() as conn:
        control = (
            conn.execute(sa.text("SELECT control_number FROM claim WHERE primary_claim_id IS NULL ORDER BY id DESC"))
            .scalars()
            .first()
        )
    era = claim(
        control,
        [
            line("99213", "100", "72", ("CO", "45", "18"), ("PR", "2", "10"), mods=["25"], date=DOS),
            line("36415", "15", "10", ("CO", "45", "5"), date=DOS),
        ],
    )
    path = directory.parent / f"era-{control}.835"
    path.write_text(interchange(payment([era], paid_on=dt.date(2026, 11, 20))))
    with ctx_for() as ctx:
        assert remits.import_file(ctx, path).secondary == 1
    with get_engine(settings).connect() as conn:
        return (
            conn.execute(sa.text("SELECT id FROM claim WHERE primary_claim_id IS NOT NULL ORDER BY id DESC"))
            .scalars()
            .first()
        )
