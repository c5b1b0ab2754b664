"""The superbill: one encounter printed for the patient or the payer, as text or a PDF
(practice, location, provider with NPI, patient, coverage on the date of service, diagnoses
and charged lines)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.models import Coverage, Location, Organization, Patient, Payer
from hpms.models.billing import BillingProfile, Encounter
from hpms.models.billing_out import EncounterOut
from hpms.models.patients import PRIORITIES
from hpms.pdf import Document, latin1
from hpms.services.billing.encounters import encounter_out
from hpms.services.billing.rows import referenced
from hpms.services.lookups import load_encounter
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

FORMATS = ("text", "pdf")


def _coverages(ctx: Ctx, patient_id: int, day: dt.date) -> list[dict]:
    rows = ctx.session.execute(
        sa.select(Coverage, Payer)
        .join(Payer, Payer.id == Coverage.payer_id)
        .where(
            Coverage.patient_id == patient_id,
            Coverage.active.is_(True),
            sa.or_(col(Coverage.valid_from).is_(None), col(Coverage.valid_from) <= day),
            sa.or_(col(Coverage.valid_to).is_(None), col(Coverage.valid_to) >= day),
        )
    ).all()
    rows.sort(key=lambda r: (PRIORITIES.index(r[0].priority) if r[0].priority in PRIORITIES else 9, r[0].id))
    return [
        {
            "priority": c.priority,
            "payer": p.name,
            "payer_code": p.payer_id,
            "member_id": ctx.crypto.decrypt(c.member_id_enc, "member_id"),
            "group": c.group_number,
            "relationship": c.relationship,
        }
        for c, p in rows
    ]


def _address(obj) -> str:
    city = ", ".join(x for x in (obj.city, " ".join(y for y in (obj.state, obj.postal_code) if y)) if x)
    return ", ".join(x for x in (obj.address_line1, obj.address_line2, city) if x)


def _superbill_data(ctx: Ctx, enc: Encounter) -> dict:
    s = ctx.session
    out = encounter_out(ctx, enc)
    org = referenced(s, Organization, enc.org_id)
    profile = s.get(BillingProfile, enc.org_id)
    loc = referenced(s, Location, enc.location_id)
    pat = referenced(s, Patient, enc.patient_id)
    tax = profile.tax_id if profile and profile.tax_id else None
    return {
        "practice": org.name,
        "tax_id": f"{tax[:2]}-{tax[2:]}" if tax and len(tax) == 9 else tax,
        "location": loc.name,
        "location_address": _address(loc),
        "location_phone": loc.phone,
        "location_npi": loc.npi,
        "out": out,
        "patient_address": _address(pat),
        "patient_sex": pat.sex_at_birth,
        "coverage": _coverages(ctx, enc.patient_id, enc.service_date),
    }


def _money_text(value) -> str:
    return f"{value:,.2f}"


def _text_superbill(d: dict) -> str:
    e: EncounterOut = d["out"]
    w = []
    w.append("SUPERBILL")
    w.append("=" * 78)
    w.append(d["practice"] + (f"    Tax ID {d['tax_id']}" if d["tax_id"] else ""))
    loc = d["location"] + (f", {d['location_address']}" if d["location_address"] else "")
    w.append(loc + (f"    Phone {d['location_phone']}" if d["location_phone"] else ""))
    if d["location_npi"]:
        w.append(f"Group NPI {d['location_npi']}")
    w.append("")
    w.append(
        f"Date of service: {e.service_date.isoformat()}    Place of service: {e.place_of_service}    "
        f"Encounter {e.id} ({e.status})"
    )
    w.append(f"Provider: {e.provider}" + (f"    NPI {e.provider_npi}" if e.provider_npi else ""))
    w.append("")
    w.append(f"Patient: {e.patient}    DOB {e.dob.isoformat() if e.dob else '-'}    MRN {e.mrn}")
    if d["patient_address"]:
        w.append(f"Address: {d['patient_address']}")
    w.append("Insurance:" + ("" if d["coverage"] else " none on file (self-pay)"))
    for c in d["coverage"]:
        w.append(
            f"  {c['priority']:<10} {c['payer']} ({c['payer_code']})    member {c['member_id']}"
            + (f"    group {c['group']}" if c["group"] else "")
        )
    w.append("")
    w.append("Diagnoses (ICD-10-CM)")
    for dx in e.diagnoses:
        w.append(f"  {dx.seq:>2}  {dx.dotted:<8}  {dx.description or ''}")
    if not e.diagnoses:
        w.append("  (none)")
    w.append("")
    w.append("Services")
    w.append(f"  {'#':>2}  {'Code':<6} {'Modifiers':<12} {'Units':>5}  {'Dx':<8} {'Charge':>12}")
    for ln in e.lines:
        w.append(
            f"  {ln.seq:>2}  {ln.code:<6} {','.join(ln.modifiers):<12} {ln.units:>5}  "
            f"{','.join(str(p) for p in ln.pointers):<8} {_money_text(ln.charge):>12}"
        )
    if not e.lines:
        w.append("  (none)")
    w.append(f"  {'':>2}  {'':<6} {'':<12} {'':>5}  {'Total':<8} {_money_text(e.total):>12}")
    w.append("")
    if e.signed_at:
        w.append(f"Signed by {e.signed_by} on {e.signed_at:%Y-%m-%d %H:%M %Z}")
    else:
        w.append("Not signed (draft)")
    return "\n".join(w) + "\n"


_latin1 = latin1


def _pdf_superbill(d: dict, now: dt.datetime) -> bytes:
    e: EncounterOut = d["out"]
    doc = Document(f"Superbill {e.id}", now)
    line = doc.line
    line("SUPERBILL", size=16, bold=True, h=8)
    line(d["practice"], size=12, bold=True)
    if d["tax_id"]:
        line(f"Tax ID {d['tax_id']}")
    line(d["location"] + (f", {d['location_address']}" if d["location_address"] else ""))
    if d["location_phone"]:
        line(f"Phone {d['location_phone']}")
    if d["location_npi"]:
        line(f"Group NPI {d['location_npi']}")
    doc.gap()
    line(
        f"Date of service: {e.service_date.isoformat()}    Place of service: {e.place_of_service}    "
        f"Encounter {e.id} ({e.status})",
        bold=True,
    )
    line(f"Provider: {e.provider}" + (f"    NPI {e.provider_npi}" if e.provider_npi else ""))
    doc.gap()
    line(f"Patient: {e.patient}    DOB {e.dob.isoformat() if e.dob else '-'}    MRN {e.mrn}", bold=True)
    if d["patient_address"]:
        line(f"Address: {d['patient_address']}")
    line("Insurance:" + ("" if d["coverage"] else " none on file (self-pay)"))
    for c in d["coverage"]:
        line(
            f"    {c['priority']}: {c['payer']} ({c['payer_code']}), member {c['member_id']}"
            + (f", group {c['group']}" if c["group"] else "")
        )
    doc.gap()
    line("Diagnoses (ICD-10-CM)", size=11, bold=True)
    for dx in e.diagnoses:
        line(f"  {dx.seq}.  {dx.dotted}   {dx.description or ''}")
    if not e.diagnoses:
        line("  (none)")
    doc.gap()
    line("Services", size=11, bold=True)
    cols = [
        ("#", 10, "R"),
        ("Code", 22, "L"),
        ("Modifiers", 35, "L"),
        ("Units", 18, "R"),
        ("Dx", 30, "L"),
        ("Charge", 35, "R"),
    ]
    rows = [
        [
            str(ln.seq),
            ln.code,
            ",".join(ln.modifiers),
            str(ln.units),
            ",".join(str(p) for p in ln.pointers),
            _money_text(ln.charge),
        ]
        for ln in e.lines
    ]
    doc.table(cols, rows, total=("Total", _money_text(e.total)))
    doc.gap(3)
    if e.signed_at:
        line(f"Signed by {e.signed_by} on {e.signed_at:%Y-%m-%d %H:%M %Z}")
    else:
        line("Not signed (draft)")
    return doc.output()


def superbill(ctx: Ctx, encounter_id: int | str, fmt: str = "text") -> bytes:
    """The superbill of an encounter, as UTF-8 text or a PDF: practice, location, provider with
    NPI, patient with DOB and MRN, coverage on the date of service, diagnoses with their
    descriptions, lines with modifiers, units, pointers and charges, and the total."""
    require(ctx.actor, "encounter.read")
    kind = v.parse_choice("fmt", fmt, FORMATS) or "text"
    enc = load_encounter(ctx, encounter_id)
    data = _superbill_data(ctx, enc)
    audit.record(
        ctx,
        audit.Event(
            "read",
            "encounter",
            enc.id,
            patient_id=enc.patient_id,
            fields=["superbill", "dob", "address", "member_id"],
            detail=f"superbill {kind}",
        ),
    )
    if kind == "pdf":
        return _pdf_superbill(data, ctx.now())
    return _text_superbill(data).encode("utf-8")
