"""Write ASC X12 5010 835 text from the reader's dataclasses (hpms.interop.x12.x835).

hpms receives 835s, it does not send them: this writer is for the demo clinic's payers, the
tests and the benchmarks, which need remittances for claims hpms billed. What it writes reads
back to the same :class:`Remittance` values (for the fields it writes: BPR, TRN, DTM*405,
N1*PR + REF*2U, N1*PE, CLP with CAS/NM1*QC/DTM*232, SVC with DTM*472/CAS/LQ*HE, PLB).
Separators: ``*`` elements, ``:`` components, ``~`` + newline segments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from hpms.interop.x12.x835 import Adjustment, ClaimPayment, Remittance

__all__ = ["write_835"]


def _amt(value: Decimal) -> str:
    text = f"{Decimal(value):.2f}"
    return text[:-3] if text.endswith(".00") else text.rstrip("0")


def _d8(day: dt.date | None) -> str:
    return f"{day:%Y%m%d}" if day else ""


def _cas(adjustments: Iterable[Adjustment]) -> list[str]:
    groups: dict[str, list[Adjustment]] = {}
    for a in adjustments:
        groups.setdefault(a.group, []).append(a)
    out = []
    for group, items in groups.items():
        for i in range(0, len(items), 6):  # a CAS holds up to six reasons
            triples = "".join(
                f"*{a.reason}*{_amt(a.amount)}*{'' if a.quantity is None else _amt(a.quantity)}"
                for a in items[i : i + 6]
            )
            out.append(("CAS*" + group + triples).rstrip("*"))
    return out


def _claim(c: ClaimPayment) -> list[str]:
    segs = [
        f"CLP*{c.patient_control_number}*{c.status_code}*{_amt(c.charge_amount)}*{_amt(c.paid_amount)}*"
        f"{_amt(c.patient_responsibility) if c.patient_responsibility else ''}*{c.filing_indicator or ''}*"
        f"{c.payer_claim_control_number or ''}*{c.facility_code or ''}*{c.frequency_code or ''}".rstrip("*")
    ]
    segs += _cas(c.adjustments)
    if c.patient is not None:
        p = c.patient
        segs.append(
            f"NM1*QC*1*{p.name}*{p.first or ''}*{p.middle or ''}***{p.id_qualifier or ''}*{p.id or ''}".rstrip("*")
        )
    if c.remark_codes:
        segs.append("MOA***" + "*".join(c.remark_codes[:5]))
    if c.service_date_from:
        segs.append(f"DTM*232*{_d8(c.service_date_from)}")
    for ln in c.lines:
        proc = ":".join([ln.procedure.qualifier, ln.procedure.code, *ln.procedure.modifiers])
        units = "" if ln.units == 1 else _amt(ln.units)
        segs.append(f"SVC*{proc}*{_amt(ln.charge_amount)}*{_amt(ln.paid_amount)}**{units}".rstrip("*"))
        if ln.service_date_from:
            segs.append(f"DTM*472*{_d8(ln.service_date_from)}")
        segs += _cas(ln.adjustments)
        segs += [f"LQ*HE*{r}" for r in ln.remark_codes]
    return segs


def _transaction(r: Remittance, st: str) -> list[str]:
    body = [
        f"BPR*{r.handling_code}*{_amt(r.payment_amount)}*{r.credit_debit}*{r.payment_method or 'NON'}"
        f"************{_d8(r.payment_date)}",
        f"TRN*1*{r.trace_number}*{r.trace_originator or ''}".rstrip("*"),
    ]
    if r.production_date:
        body.append(f"DTM*405*{_d8(r.production_date)}")
    body.append(f"N1*PR*{r.payer_name}")
    if r.payer_id:
        body.append(f"REF*2U*{r.payer_id}")
    payee = f"N1*PE*{r.payee_name}"
    if r.payee_npi:
        payee += f"*XX*{r.payee_npi}"
    elif r.payee_tin:
        payee += f"*FI*{r.payee_tin}"
    body.append(payee)
    if r.claims:
        body.append("LX*1")
    for c in r.claims:
        body += _claim(c)
    for p in r.provider_adjustments:
        ref = f":{p.reference}" if p.reference else ""
        body.append(f"PLB*{p.provider_id}*{_d8(p.fiscal_period_date)}*{p.reason}{ref}*{_amt(p.amount)}")
    return [f"ST*835*{st}", *body, f"SE*{len(body) + 2}*{st}"]


def write_835(
    remittances: Iterable[Remittance],
    *,
    sender_id: str,
    receiver_id: str,
    isa_control: int,
    created: dt.datetime,
    production: bool = True,
) -> str:
    """One interchange with one functional group holding a transaction set per remittance."""
    if not 0 < isa_control < 10**9:
        raise ValueError(f"isa_control {isa_control} is not a 9-digit control number")
    control = f"{isa_control:09d}"
    segs = [
        f"ISA*00*          *00*          *ZZ*{sender_id[:15]:<15}*ZZ*{receiver_id[:15]:<15}*"
        f"{created:%y%m%d}*{created:%H%M}*^*00501*{control}*0*{'P' if production else 'T'}*:",
        f"GS*HP*{sender_id}*{receiver_id}*{created:%Y%m%d}*{created:%H%M}*{isa_control}*X*005010X221A1",
    ]
    n = 0
    for n, r in enumerate(remittances, 1):
        segs += _transaction(r, f"{n:04d}")
    segs += [f"GE*{n}*{isa_control}", f"IEA*1*{control}"]
    return "~\n".join(segs) + "~\n"
