"""The demo clinic's billing: the billing profile and fee schedules, an encounter for every
completed visit, and the revenue cycle since the demo's first day (billing runs, the payers'
835 answers posted, patients paying their share). Part of `hpms.services.demo.build`."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.config import Settings
from hpms.db import bulk_insert, new_ids
from hpms.fileio import write_atomically
from hpms.models import Appointment, AppointmentType, Encounter, EncounterDiagnosis, EncounterLine, Location
from hpms.services.billing import claims, fees
from hpms.services.billing import runner as billing
from hpms.services.payments import payments, remits
from hpms.services.platform import audit, org
from hpms.services.platform import localtime as lt
from hpms.services.platform.context import open_context

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

# ---- charges ---------------------------------------------------------------------------------

CLAIMS_DIR = "claims"  # under HPMS_HOME: where the demo's billing run writes its 837P files
FEES = {  # the default schedule (USD)
    "99202": "95.00",
    "99203": "140.00",
    "99204": "210.00",
    "99205": "275.00",
    "99211": "30.00",
    "99212": "65.00",
    "99213": "110.00",
    "99214": "165.00",
    "99215": "225.00",
    "99396": "220.00",
    "11102": "145.00",
    "17110": "120.00",
    "36415": "12.00",
    "80053": "24.00",
    "85025": "15.00",
    "83036": "20.00",
    "93000": "38.00",
    "90471": "28.00",
    "90686": "42.00",
    "81002": "9.50",
}
PAYER_FEES = (
    "60054",
    {"99213": "98.00", "99214": "148.00", "99215": "201.00", "99396": "195.00", "36415": "10.00"},
)  # Acme Health Plan pays less for these
# appointment type -> E/M codes drawn from, and diagnoses (ICD-10-CM) drawn from
VISITS = {
    "New patient": (
        ["99202", "99203", "99203", "99204", "99204", "99205"],
        ["E11.9", "I10", "E78.5", "K21.9", "F41.9", "E03.9", "R73.03", "J30.9"],
    ),
    "Follow-up": (
        ["99212", "99213", "99213", "99213", "99214", "99214", "99215"],
        ["E11.9", "I10", "E78.5", "M54.50", "K21.9", "F41.9", "E03.9", "R73.03"],
    ),
    "Annual physical": (["99396"], ["Z00.00"]),
    "Telehealth": (["99212", "99213", "99213"], ["J06.9", "J02.9", "R05.9", "J30.9", "F41.9"]),
    "Procedure": (["11102", "17110"], ["L82.1", "D48.5", "L57.0", "B07.9"]),
}


def setup(ctx: Ctx, practice: str) -> None:
    """The practice's X12 identities and its fee schedules (default and one payer's)."""
    billing.set_profile(
        ctx,
        tax_id="06-1234567",
        submitter_id="RIVERSIDE01",
        submitter_name=practice,
        receiver_id="DEMOCLEAR",
        receiver_name="Demo Clearinghouse",
        contact_name="Priya Nair",
        contact_phone="860-555-0100",
    )
    for code, amount in FEES.items():
        fees.set_fee(ctx, code, amount)
    payer, prices = PAYER_FEES
    for code, amount in prices.items():
        fees.set_fee(ctx, code, amount, payer=payer)


def _encounter_lines(rng: random.Random, type_name: str) -> tuple[list[str], list[tuple], str]:
    """(diagnoses, lines as (code, modifiers, units, pointers), place of service) of one visit."""
    em, pool = VISITS[type_name]
    dx = rng.sample(pool, min(len(pool), rng.choice((1, 1, 2, 2, 3))))
    pos = "11"
    lines: list[tuple] = []
    n = len(dx)
    all_dx = ",".join(str(i) for i in range(1, min(n, 4) + 1))
    if type_name == "Annual physical":
        lines.append(("99396", "", 1, "1"))
        if rng.random() < 0.5:  # a flu shot with the physical
            dx.append("Z23")
            lines += [("90686", "", 1, str(len(dx))), ("90471", "", 1, str(len(dx)))]
        if rng.random() < 0.4:
            lines.append(("36415", "", 1, "1"))
    elif type_name == "Procedure":
        code = rng.choice(em)
        if rng.random() < 0.3:  # a separate problem seen the same day: E/M with modifier 25
            dx.append(rng.choice(["I10", "E11.9", "M54.50"]))
            lines.append(("99213", "25", 1, str(len(dx))))
        lines.append((code, "", 1, "1"))
    elif type_name == "Telehealth":
        pos = "10"  # telehealth in the patient's home
        lines.append((rng.choice(em), "95", 1, all_dx))
    else:
        code = rng.choice(em)
        extra = []
        if "E11.9" in dx and rng.random() < 0.6:
            extra.append(("83036", "", 1, str(dx.index("E11.9") + 1)))  # HbA1c
        if rng.random() < 0.25:
            extra.append(("93000", "", 1, "1"))  # ECG: the E/M is a separate service
        if extra or rng.random() < 0.2:
            extra.append(("36415", "", 1, "1"))
        lines.append((code, "25" if any(c == "93000" for c, *_ in extra) else "", 1, all_dx))
        lines += extra
    return dx, lines, pos


def encounters(ctx: Ctx, rng: random.Random, now: dt.datetime) -> None:
    """An encounter for every completed visit, in bulk: signed by its provider the same
    evening, except today's, which wait as drafts for the provider to sign."""
    session = ctx.session
    tz: dict[int, str] = dict(
        session.execute(sa.select(Location.id, Location.tz).where(Location.org_id == ctx.org_id)).all()
    )
    signer: dict[int, int] = dict(session.execute(sa.text("SELECT id, user_id FROM provider")).all())
    visits = session.execute(
        sa.select(
            Appointment.id,
            Appointment.patient_id,
            Appointment.provider_id,
            Appointment.location_id,
            Appointment.start_utc,
            Appointment.completed_at,
            AppointmentType.name,
        )
        .join(AppointmentType, AppointmentType.id == Appointment.type_id)
        .where(Appointment.org_id == ctx.org_id, Appointment.status == "completed")
        .order_by(Appointment.start_utc, Appointment.id)
    ).all()
    if not visits:
        return
    t = Encounter.__table__
    ids = new_ids(session, t, len(visits))
    encs: list[dict] = []
    dxs: list[dict] = []
    lines: list[dict] = []
    today: dict[int, dt.date] = {}
    for (appt, pid, prov, loc, start, completed, type_name), eid in zip(visits, ids, strict=True):
        completed = completed or start
        day = lt.to_local(start, tz[loc]).date()
        if loc not in today:
            today[loc] = lt.local_now(now, tz[loc]).date()
        dx, procs, pos = _encounter_lines(rng, type_name)
        codes = [c.replace(".", "") for c in dx]
        total = 0
        for seq, (code, mods, units, pointers) in enumerate(procs, 1):
            charge = int(FEES[code].replace(".", "")) * units
            total += charge
            lines.append(
                {
                    "encounter_id": eid,
                    "seq": seq,
                    "code": code,
                    "modifiers": mods,
                    "units": units,
                    "pointers": pointers,
                    "charge_cents": charge,
                    "service_date": day,
                }
            )
        dxs += [{"encounter_id": eid, "seq": seq, "code": code} for seq, code in enumerate(codes, 1)]
        signed = day < today[loc]
        signed_at = min(completed + dt.timedelta(hours=rng.uniform(1, 6)), now) if signed else None
        encs.append(
            {
                "id": eid,
                "org_id": ctx.org_id,
                "patient_id": pid,
                "provider_id": prov,
                "location_id": loc,
                "appointment_id": appt,
                "service_date": day,
                "place_of_service": pos,
                "status": "signed" if signed else "draft",
                "total_cents": total,
                "signed_at": signed_at,
                "signed_by": signer.get(prov) if signed else None,
                "billed_at": None,
                "version": 2 if signed else 1,
                "created_by": signer.get(prov),
                "created_at": completed,
                "updated_at": signed_at or completed,
            }
        )
    bulk_insert(session, t, encs)
    bulk_insert(session, EncounterDiagnosis.__table__, dxs)
    bulk_insert(session, EncounterLine.__table__, lines)
    audit.record(
        ctx,
        audit.Event(
            "create",
            "encounter",
            patient_ids=sorted({e["patient_id"] for e in encs}),
            fields=["diagnoses", "lines", "status"],
            detail=f"demo charge capture: encounters {ids[0]}-{ids[-1]}",
        ),
    )


# ---- the revenue cycle -----------------------------------------------------------------------

ERA_DIR = "era"  # under HPMS_HOME: the demo payers' remittance files
PAID_AFTER = 14  # days from submission to the payer's answer (835)
DENIALS = (("CO", "50"), ("CO", "197"), ("CO", "16"), ("CO", "97"))
RUN_HOUR = 2  # the nightly billing run, UTC; the files go to the clearinghouse at 09:00, 835s post at 11:00


def _at(day: dt.date, hour: int) -> Callable[[], dt.datetime]:
    """A clock stopped at `hour` UTC on `day`: each step of the demo's history runs on the day
    it would have happened, so claims, remittances, ledger entries and audit events carry it
    (never later than now)."""
    moment = min(dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC), dt.datetime.now(dt.UTC))
    return lambda: moment


def history(settings: Settings, rng: random.Random, *, first_day: dt.date, payee: tuple[str, str]) -> None:
    """The revenue cycle since the demo's first day, week by week, as the practice would have
    lived it: every Monday the payers' 835s for what was submitted two weeks before are posted
    (as a biller imports them), the nightly billing run bills the signed visits up to Sunday
    (secondary claims included) and the files are marked submitted; in the days after an 835,
    some patients pay what it left to them. This week's visits wait for tonight's run. `payee`:
    the (name, NPI) the 835s pay."""
    out = Path(settings.home) / CLAIMS_DIR
    out.mkdir(parents=True, exist_ok=True)
    era = Path(settings.home) / ERA_DIR
    era.mkdir(parents=True, exist_ok=True)
    with open_context(settings) as ctx:
        today = lt.local_now(ctx.now(), org.list_locations(ctx)[0].tz).date()
    first = first_day + dt.timedelta(days=7)
    monday = first + dt.timedelta(days=-first.weekday() % 7)
    files = 0
    while monday <= today:
        files = _answers(settings, rng, monday, today, era, files, payee)
        billing.run(
            settings, out_dir=out, through=(monday - dt.timedelta(days=1)).isoformat(), clock=_at(monday, RUN_HOUR)
        )
        with open_context(settings, clock=_at(monday, 9)) as ctx:
            for file_id in (
                ctx.session.execute(sa.text("SELECT id FROM x12_file WHERE status = 'written' ORDER BY id"))
                .scalars()
                .all()
            ):
                claims.mark_submitted(ctx, file_id)
        monday += dt.timedelta(days=7)


def _answers(
    settings: Settings, rng: random.Random, day: dt.date, today: dt.date, era: Path, files: int, payee: tuple[str, str]
) -> int:
    """Each payer's 835 of `day` for the claims submitted PAID_AFTER days before or earlier: 80 %
    of the charge allowed, a coinsurance, copay or (now and then) the whole allowed amount to
    the deductible, one claim in twelve denied; a secondary claim is paid what the primary left
    to the patient. Posted as a biller would; then some of the patients pay. Returns the number
    of 835 files written so far."""
    # deferred: the X12 835 model and writer load only while the history is built
    from hpms.interop.x12.x835 import Adjustment, ClaimPayment, NamedEntity, Procedure, Remittance, ServicePayment
    from hpms.interop.x12.x835_writer import write_835

    cent = Decimal("0.01")
    with open_context(settings) as ctx:
        s = ctx.session
        rows = s.execute(
            sa.text(
                "SELECT c.id, c.control_number, c.primary_claim_id, p.first_name, p.last_name, py.name, py.payer_id "
                "FROM claim c JOIN x12_file f ON f.id = c.x12_file_id JOIN patient p ON p.id = c.patient_id "
                "JOIN payer py ON py.id = c.payer_id WHERE c.status = 'submitted' AND f.submitted_at <= :cutoff "
                "ORDER BY c.id"
            ),
            {"cutoff": dt.datetime.combine(day - dt.timedelta(days=PAID_AFTER), dt.time(23, 59), tzinfo=dt.UTC)},
        ).all()
        if not rows:
            return files
        ids = [r.id for r in rows]
        lines: dict[int, list] = {}
        for ln in s.execute(
            sa.text(
                "SELECT claim_id, seq, code, modifiers, units, charge_cents, service_date "
                "FROM claim_line WHERE claim_id IN :ids ORDER BY claim_id, seq"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": ids},
        ):
            lines.setdefault(ln.claim_id, []).append(ln)
        primaries = [r.primary_claim_id for r in rows if r.primary_claim_id]
        left: dict[tuple[int, int], int] = {}  # (primary claim, line seq) -> what it left to the patient
        if primaries:
            for cid, seq, cents in s.execute(
                sa.text(
                    "SELECT l.claim_id, l.seq, sum(a.amount_cents) FROM remit_adjustment a "
                    "JOIN claim_line l ON l.id = a.claim_line_id WHERE a.group_code = 'PR' AND l.claim_id IN :ids "
                    "GROUP BY l.claim_id, l.seq"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": primaries},
            ):
                left[(cid, seq)] = int(cents)
    by_payer: dict[tuple[str, str], list] = {}
    for cid, control, primary, first, last, payer_name, payer_code in rows:
        paid_lines = []
        denied = primary is None and rng.random() < 1 / 12
        reason = rng.choice(DENIALS)
        share = rng.choice(("coinsurance", "copay", "none", "coinsurance", "coinsurance", "copay", "deductible"))
        for i, ln in enumerate(lines.get(cid, [])):
            charge = Decimal(ln.charge_cents).scaleb(-2)
            if primary is not None:  # the secondary pays what the primary left; the rest is the primary's (23)
                paid = Decimal(left.get((primary, ln.seq), 0)).scaleb(-2)
                adj = [Adjustment("OA", "23", charge - paid)] if charge != paid else []
            elif denied:
                adj, paid = [Adjustment(*reason, charge)], Decimal("0")
            else:
                allowed = (charge * Decimal("0.8")).quantize(cent)
                patient = Decimal("0")
                if share == "deductible":
                    patient = allowed
                elif i == 0 and share == "coinsurance":
                    patient = (allowed * Decimal("0.2")).quantize(cent)
                elif i == 0 and share == "copay":
                    patient = min(allowed, Decimal("25.00"))
                adj = [Adjustment("CO", "45", charge - allowed)]
                if patient:
                    code = {"coinsurance": "2", "copay": "3", "deductible": "1"}[share]
                    adj.append(Adjustment("PR", code, patient))
                paid = allowed - patient
            mods = tuple(m for m in ln.modifiers.split(",") if m)
            paid_lines.append(
                ServicePayment(
                    procedure=Procedure("HC", ln.code, mods),
                    charge_amount=charge,
                    paid_amount=paid,
                    units=Decimal(ln.units),
                    service_date_from=dt.date.fromisoformat(str(ln.service_date)),
                    adjustments=tuple(adj),
                )
            )
        total = sum((ln.charge_amount for ln in paid_lines), Decimal("0"))
        paid = sum((ln.paid_amount for ln in paid_lines), Decimal("0"))
        owed = sum((a.amount for ln in paid_lines for a in ln.adjustments if a.group == "PR"), Decimal("0"))
        by_payer.setdefault((payer_name, payer_code), []).append(
            ClaimPayment(
                patient_control_number=control,
                status_code="4" if denied else "2" if primary else "1",
                charge_amount=total,
                paid_amount=paid,
                patient_responsibility=owed,
                filing_indicator="12",
                payer_claim_control_number=f"{payer_code}{cid:08d}",
                patient=NamedEntity("QC", last.upper(), first.upper()),
                lines=tuple(paid_lines),
            )
        )
    created = _at(day, 6)()
    for (payer_name, payer_code), paid_claims in sorted(by_payer.items()):
        files += 1
        remittance = Remittance(
            isa_control=f"{files:09d}",
            gs_control=str(files),
            st_control="0001",
            handling_code="I",
            payment_amount=sum((c.paid_amount for c in paid_claims), Decimal("0")),
            credit_debit="C",
            payment_method="ACH",
            payment_date=day,
            trace_number=f"EFT{day:%y%m%d}{files:04d}",
            trace_originator="1512345678",
            payer_name=payer_name.upper(),
            payer_id=payer_code,
            payee_name=payee[0].upper(),
            payee_npi=payee[1],
            claims=tuple(paid_claims),
        )
        path = era / f"{payer_code}-{day:%Y%m%d}.835"
        write_atomically(
            path,
            write_835(
                [remittance], sender_id=payer_code, receiver_id="RIVERSIDE01", isa_control=files, created=created
            ).encode(),
        )
        with open_context(settings, clock=_at(day, 11)) as ctx:
            remits.import_file(ctx, path)
    _patients_pay(settings, rng, day, today, ids)
    return files


def _patients_pay(settings: Settings, rng: random.Random, day: dt.date, today: dt.date, claim_ids: list[int]) -> None:
    """About half the patients an 835 of `day` left something to pay it (most in full) in the
    week after, by card, cash or check."""
    with open_context(settings) as ctx:
        owing = ctx.session.execute(
            sa.text(
                "SELECT patient_id, sum(amount_cents) FROM ledger_entry WHERE responsibility = 'patient' "
                "AND patient_id IN (SELECT patient_id FROM claim WHERE id IN :ids) "
                "GROUP BY patient_id HAVING sum(amount_cents) > 0 ORDER BY patient_id"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": claim_ids},
        ).all()
    for pid, cents in owing:
        if rng.random() >= 0.5:
            continue
        when = min(day + dt.timedelta(days=rng.randint(1, 7)), today)
        amount = Decimal(cents).scaleb(-2) if rng.random() < 0.7 else Decimal(min(cents, 2000)).scaleb(-2)
        with open_context(settings, clock=_at(when, 15)) as ctx:
            payments.record(
                ctx,
                patient=pid,
                amount=amount,
                method=rng.choice(("card", "card", "cash", "check")),
                reference="demo",
                date=when,
            )
