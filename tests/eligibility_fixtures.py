"""Shared set-up for the eligibility tests: a practice that can ask (location NPI, billing
profile), two payers, patients with visits on Tuesday 16 June 2026 (a subscriber, a dependent
child, one without coverage, one whose visit was cancelled) and 271 answers built for them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tests.services.conftest import fixed_clock
from tests.services.sched import book_one, clinic

DAY = dt.date(2026, 6, 16)  # the day after the fixed clock's "now"
NPI = "1234567893"


@dataclass
class Practice:
    pat: int  # patient ids: Pat Doe, self-insured on ACME1 (M123456)
    pat_mrn: str
    kid: int  # Kid Doe, child on BETA2 (member M999, subscriber Pat Doe)
    kid_mrn: str
    nora: int  # no coverage
    nora_mrn: str
    gone: int  # visit cancelled; has coverage on ACME1 (M555)
    acme: int  # payer row ids
    beta: int
    visits: list[int]


def setup_practice(ctx_for, register, *, profile: bool = True, npi: bool = True) -> Practice:
    from hpms.services.billing import runner as billing
    from hpms.services.people import coverage
    from hpms.services.platform import org
    from hpms.services.scheduling import appointments

    c = clinic(ctx_for, register)
    kid = register(first_name="Kid", last_name="Doe", dob="2015-05-05", sex_at_birth="female")
    nora = register(first_name="Nora", last_name="Cover", dob="1980-05-05")
    gone = register(first_name="Gina", last_name="Gone", dob="1990-02-02")
    with ctx_for(clock=fixed_clock) as ctx:
        if npi:
            org.update_location(ctx, "Main", npi=NPI)
        acme = coverage.add_payer(ctx, name="Acme Health", payer_id="ACME1")
        beta = coverage.add_payer(ctx, name="Beta Care", payer_id="BETA2")
        coverage.add_coverage(ctx, patient=c.mrn, payer="ACME1", member_id="M123456", group_number="G77")
        coverage.add_coverage(
            ctx,
            patient=kid.mrn,
            payer="BETA2",
            member_id="M999",
            relationship="child",
            subscriber="Doe, Pat",
            subscriber_dob="1980-01-01",
        )
        coverage.add_coverage(ctx, patient=gone.mrn, payer="ACME1", member_id="M555")
        if profile:
            billing.set_profile(ctx, tax_id="12-3456789", submitter_id="SUB01", receiver_id="CH01")
    visits = [
        book_one(ctx_for, c, "2026-06-16 09:00").id,
        book_one(ctx_for, c, "2026-06-16 10:00", patient=kid.mrn).id,
        book_one(ctx_for, c, "2026-06-16 11:00", patient=nora.mrn).id,
    ]
    cancelled = book_one(ctx_for, c, "2026-06-16 12:00", patient=gone.mrn).id
    with ctx_for(clock=fixed_clock) as ctx:
        appointments.cancel(ctx, cancelled, reason="rain")
    return Practice(
        pat=c.patient,
        pat_mrn=c.mrn,
        kid=kid.id,
        kid_mrn=kid.mrn,
        nora=nora.id,
        nora_mrn=nora.mrn,
        gone=gone.id,
        acme=acme.id,
        beta=beta.id,
        visits=visits,
    )


ISA = (
    "ISA*00*          *00*          *ZZ*CH01           *ZZ*SUB01          *260616*0800*^*00501*000000777*0*T*:~\n"
    "GS*HB*CH01*SUB01*20260616*0800*777*X*005010X279A1~\n"
)


@dataclass(frozen=True)
class Source:
    """One 2000A loop of a 271: the payer, its 2000C loops (as for `answer_271`) and an AAA
    segment at the payer (2100A) or receiver (2100B) level."""

    payer: str = "ACME1"
    payer_name: str = "ACME HEALTH"
    loops: tuple = ()
    payer_aaa: str | None = None
    receiver_aaa: str | None = None


def answer_271_sources(*sources: Source, reference: str = "777") -> str:
    """A 271 transaction set with one 2000A loop per source; BHT03 is `reference`."""
    segs = ["ST*271*0001*005010X279A1", f"BHT*0022*11*{reference}*20260616*0800"]
    hl = 0
    for src in sources:
        hl += 1
        payer_hl = hl
        segs.append(f"HL*{payer_hl}**20*{'0' if src.payer_aaa else '1'}")
        segs.append(f"NM1*PR*2*{src.payer_name}*****PI*{src.payer}")
        if src.payer_aaa:
            segs.append(src.payer_aaa)
            continue
        hl += 1
        receiver_hl = hl
        segs += [
            f"HL*{receiver_hl}*{payer_hl}*21*{'0' if src.receiver_aaa else '1'}",
            f"NM1*1P*2*TEST CLINIC*****XX*{NPI}",
        ]
        if src.receiver_aaa:
            segs.append(src.receiver_aaa)
        for loop in src.loops:
            if loop and loop[0] == "DEP":
                sub, dep = loop[1], loop[2:]
                hl += 1
                segs.append(f"HL*{hl}*{receiver_hl}*22*1")
                segs.extend(sub)
                hl += 1
                segs.append(f"HL*{hl}*{hl - 1}*23*0")
                segs.extend(dep)
            else:
                hl += 1
                segs.append(f"HL*{hl}*{receiver_hl}*22*0")
                segs.extend(loop)
    segs.append(f"SE*{len(segs) + 1}*0001")
    return ISA + "".join(s + "~\n" for s in segs) + "GE*1*777~\nIEA*1*000000777~\n"


def answer_271(
    *loops: list[str],
    payer: str = "ACME1",
    payer_name: str = "ACME HEALTH",
    receiver_aaa: str | None = None,
    payer_aaa: str | None = None,
    reference: str = "777",
) -> str:
    """A 271 with one payer and the given 2000C loops, each a list of segments without HL; a
    loop ["DEP", [subscriber segments], *dependent segments] is a 2000C with a 2000D under it."""
    return answer_271_sources(Source(payer, payer_name, loops, payer_aaa, receiver_aaa), reference=reference)


def answer_from_270(
    text: str,
    answers: dict[tuple[str, str], list[str]],
    *,
    traces: str = "echo",
    trace_map: dict[str, str] | None = None,
    payer_aaa: dict[str, str] | None = None,
    receiver_aaa: dict[str, str] | None = None,
    keep_members: bool = False,
) -> str:
    """The 271 a payer sends for one of hpms's own 270 files, loop for loop.

    `answers` maps (payer id, first name of the person asked about) to the segments that take
    the place of the EQ; `traces`: "echo" (TRN*2 where the 270 had TRN*1), "none" (no TRN) or
    "subscriber" (a dependent's TRN*2 in its 2000C loop); `trace_map` rewrites echoed traces.
    `payer_aaa` / `receiver_aaa` map a payer id to an AAA segment for its 2100A / 2100B loop;
    that payer's 2000C/D loops are then left out unless `keep_members`."""
    trace_map = trace_map or {}
    payer_aaa = payer_aaa or {}
    receiver_aaa = receiver_aaa or {}
    out: list[str] = []
    payer = first = None
    skipping = False
    subscriber_at = 0
    in_body = False
    body_start = 0
    for raw in text.split("~"):
        seg = raw.strip()
        if not seg:
            continue
        el = seg.split("*")
        sid = el[0]
        if sid in ("ISA", "GS", "GE", "IEA"):
            out.append(seg.replace("GS*HS*", "GS*HB*"))
            continue
        if sid == "ST":
            in_body = True
            body_start = len(out)
            out.append(seg.replace("ST*270*", "ST*271*"))
            continue
        if sid == "SE":
            out.append(f"SE*{len(out) - body_start + 1}*{el[2]}")
            in_body = False
            continue
        if not in_body:
            continue
        if sid == "BHT":
            out.append(seg.replace("BHT*0022*13*", "BHT*0022*11*"))
        elif sid == "HL" and el[3] == "20":
            skipping = False
            out.append(seg)
        elif sid == "NM1" and el[1] == "PR":
            payer = el[9]
            out.append(seg)
            if payer in payer_aaa:
                out.append(payer_aaa[payer])
                skipping = "all" if not keep_members else False
        elif sid == "NM1" and el[1] == "1P":
            if skipping == "all":
                continue
            out.append(seg)
            if payer in receiver_aaa:
                out.append(receiver_aaa[payer])
                skipping = "members" if not keep_members else False
        elif skipping == "all" or (skipping == "members" and not (sid == "HL" and el[3] == "21")):
            continue
        elif sid == "HL":
            if el[3] == "22":
                subscriber_at = len(out)
            out.append(seg)
        elif sid == "TRN":
            if traces == "none":
                continue
            trn = f"TRN*2*{trace_map.get(el[2], el[2])}*{el[3]}"
            if traces == "subscriber" and out[-1].startswith("HL*") and out[-1].split("*")[3] == "23":
                out.insert(subscriber_at + 1, trn)
            else:
                out.append(trn)
        elif sid == "NM1":
            first = el[4] if len(el) > 4 else None
            out.append(seg)
        elif sid == "EQ":
            out.extend(answers[(payer, first)])
        else:
            out.append(seg)
    return "".join(s + "~\n" for s in out)


def active_loop(trace: str | None, member: str, last: str, first: str, *, plan: str = "GOLD PLAN") -> list[str]:
    return ([f"TRN*2*{trace}*1123456789"] if trace else []) + [
        f"NM1*IL*1*{last}*{first}****MI*{member}",
        "DMG*D8*19800101",
        "DTP*346*D8*20260101",
        "DTP*347*D8*20261231",
        f"EB*1*IND*30**{plan}",
        "EB*B*IND*98***27*25*****Y",
        "EB*B*IND*98***27*50*****N",
        "EB*A*IND*30*****.2****Y",
        "EB*C*IND*30***23*1500*****Y",
        "EB*C*IND*30***29*750.50*****Y",
        "DTP*291*D8*20260616",
    ]
