"""835 files for the remittance tests, written from plain dicts: the envelope, one BPR/TRN per
payment, CLP/CAS/SVC loops and PLB, with BPR02 and the SE segment count computed (unless a
test wants them wrong)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal


def _amt(value) -> str:
    d = Decimal(str(value))
    return f"{d:.2f}".rstrip("0").rstrip(".") if d != d.to_integral_value() else str(int(d))


def _cas(group_adjustments) -> list[str]:
    """[(group, reason, amount), ...] -> one CAS per group."""
    by_group: dict[str, list] = {}
    for group, reason, amount in group_adjustments:
        by_group.setdefault(group, []).append((reason, amount))
    # reason*amount*quantity triples: an empty quantity between two reasons of one group
    return ["CAS*" + group + "*" + "**".join(f"{r}*{_amt(a)}" for r, a in items) for group, items in by_group.items()]


def claim(
    control: str,
    lines: list[dict],
    *,
    status: str = "1",
    pr=None,
    pcn: str | None = "PCN1",
    adj=(),
    patient=("JONES", "BOB", "M123456"),
    remarks=(),
) -> dict:
    """A claim payment; charge and paid are the sums of the lines (plus claim-level extras)."""
    charge = sum(Decimal(str(ln["charge"])) for ln in lines)
    paid = sum(Decimal(str(ln["paid"])) for ln in lines)
    if pr is None:
        pr = sum(Decimal(str(a[2])) for ln in lines for a in ln.get("adj", ()) if a[0] == "PR")
        pr += sum(Decimal(str(a[2])) for a in adj if a[0] == "PR")
    return dict(
        control=control,
        lines=lines,
        status=status,
        pr=pr,
        pcn=pcn,
        adj=list(adj),
        charge=charge,
        paid=paid,
        patient=patient,
        remarks=list(remarks),
    )


def line(code: str, charge, paid, *adj, mods=(), date: dt.date | None = None, remarks=()) -> dict:
    return dict(code=code, charge=charge, paid=paid, adj=list(adj), mods=list(mods), date=date, remarks=list(remarks))


PAYEE = "N1*PE*SPRINGFIELD CLINIC*XX*1234567893"  # the test practice's group NPI (billing_fixtures)


def payment(
    claims: list[dict],
    *,
    trace: str = "TRACE1",
    payer=("ACME HEALTH", "ACME1"),
    plb=(),
    bpr=None,
    paid_on: dt.date = dt.date(2026, 11, 20),
    st: str = "0001",
    payee: list[str] | None = None,
) -> list[str]:
    """The segments of one ST/SE transaction set; `payee` replaces the N1*PE loop."""
    total = sum(c["paid"] for c in claims) - sum(Decimal(str(a)) for _, a in plb)
    body = [
        f"BPR*I*{_amt(total if bpr is None else bpr)}*C*ACH*CCP*01*011900445*DA*0001234567*1512345678**01*"
        f"031100649*DA*0009876543*{paid_on:%Y%m%d}",
        f"TRN*1*{trace}*1512345678",
        f"DTM*405*{paid_on:%Y%m%d}",
        f"N1*PR*{payer[0]}",
        f"REF*2U*{payer[1]}",
        *([PAYEE] if payee is None else payee),
        "LX*1",
    ]
    for c in claims:
        body.append(
            f"CLP*{c['control']}*{c['status']}*{_amt(c['charge'])}*{_amt(c['paid'])}*{_amt(c['pr'])}*12*"
            f"{c['pcn'] or ''}*11*1"
        )
        body.extend(_cas(c["adj"]))
        last, first, member = c["patient"]
        body.append(f"NM1*QC*1*{last}*{first}****MI*{member}")
        if c["remarks"]:
            body.append("MOA***" + "*".join(c["remarks"]))
        for ln in c["lines"]:
            code = ":".join(["HC", ln["code"], *ln["mods"]])
            body.append(f"SVC*{code}*{_amt(ln['charge'])}*{_amt(ln['paid'])}**1")
            if ln["date"]:
                body.append(f"DTM*472*{ln['date']:%Y%m%d}")
            body.extend(_cas(ln["adj"]))
            body.extend(f"LQ*HE*{r}" for r in ln["remarks"])
    for reason, amount in plb:
        body.append(f"PLB*1234567893*20261231*{reason}*{_amt(amount)}")
    st_seg = f"ST*835*{st}"
    se = f"SE*{len(body) + 2}*{st}"
    return [st_seg, *body, se]


def interchange(*payments: list[str], isa: str = "000000123", gs: str = "1") -> str:
    """An interchange holding the transaction sets (one functional group)."""
    segs = [
        f"ISA*00*          *00*          *ZZ*PAYER          *ZZ*CLINIC         *261120*1200*^*00501*{isa}*0*P*:",
        f"GS*HP*PAYER*CLINIC*20261120*1200*{gs}*X*005010X221A1",
    ]
    for p in payments:
        segs.extend(p)
    segs += [f"GE*{len(payments)}*{gs}", f"IEA*1*{isa}"]
    return "~\n".join(segs) + "~\n"
