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
    pat: int      # patient ids: Pat Doe, self-insured on ACME1 (M123456)
    pat_mrn: str
    kid: int      # Kid Doe, child on BETA2 (member M999, subscriber Pat Doe)
    kid_mrn: str
    nora: int     # no coverage
    nora_mrn: str
    gone: int     # visit cancelled; has coverage on ACME1 (M555)
    acme: int     # payer row ids
    beta: int
    visits: list[int]


def setup_practice(ctx_for, register, *, profile: bool = True, npi: bool = True) -> Practice:
    from hpms.services import appointments, billing, coverage, org

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
        coverage.add_coverage(ctx, patient=kid.mrn, payer="BETA2", member_id="M999", relationship="child",
                              subscriber="Doe, Pat", subscriber_dob="1980-01-01")
        coverage.add_coverage(ctx, patient=gone.mrn, payer="ACME1", member_id="M555")
        if profile:
            billing.set_profile(ctx, tax_id="12-3456789", submitter_id="SUB01", receiver_id="CH01")
    visits = [book_one(ctx_for, c, "2026-06-16 09:00").id,
              book_one(ctx_for, c, "2026-06-16 10:00", patient=kid.mrn).id,
              book_one(ctx_for, c, "2026-06-16 11:00", patient=nora.mrn).id]
    cancelled = book_one(ctx_for, c, "2026-06-16 12:00", patient=gone.mrn).id
    with ctx_for(clock=fixed_clock) as ctx:
        appointments.cancel(ctx, cancelled, reason="rain")
    return Practice(pat=c.patient, pat_mrn=c.mrn, kid=kid.id, kid_mrn=kid.mrn, nora=nora.id, nora_mrn=nora.mrn,
                    gone=gone.id, acme=acme.id, beta=beta.id, visits=visits)


ISA = ("ISA*00*          *00*          *ZZ*CH01           *ZZ*SUB01          *260616*0800*^*00501*000000777*0*T*:~\n"
       "GS*HB*CH01*SUB01*20260616*0800*777*X*005010X279A1~\n")


def answer_271(*loops: list[str], payer: str = "ACME1", payer_name: str = "ACME HEALTH",
               receiver_aaa: str | None = None) -> str:
    """A 271 with one payer and the given 2000C loops, each a list of segments without HL; a
    loop ["DEP", [subscriber segments], *dependent segments] is a 2000C with a 2000D under it."""
    segs = ["ST*271*0001*005010X279A1", "BHT*0022*11*777*20260616*0800", "HL*1**20*1",
            f"NM1*PR*2*{payer_name}*****PI*{payer}", f"HL*2*1*21*{'0' if receiver_aaa else '1'}",
            f"NM1*1P*2*TEST CLINIC*****XX*{NPI}"]
    if receiver_aaa:
        segs.append(receiver_aaa)
    hl = 2
    for loop in loops:
        if loop and loop[0] == "DEP":
            sub, dep = loop[1], loop[2:]
            hl += 1
            segs.append(f"HL*{hl}*2*22*1")
            segs.extend(sub)
            hl += 1
            segs.append(f"HL*{hl}*{hl - 1}*23*0")
            segs.extend(dep)
        else:
            hl += 1
            segs.append(f"HL*{hl}*2*22*0")
            segs.extend(loop)
    segs.append(f"SE*{len(segs) + 1}*0001")
    return ISA + "".join(s + "~\n" for s in segs) + "GE*1*777~\nIEA*1*000000777~\n"


def active_loop(trace: str | None, member: str, last: str, first: str, *, plan: str = "GOLD PLAN") -> list[str]:
    return ([f"TRN*2*{trace}*1123456789"] if trace else []) + [
        f"NM1*IL*1*{last}*{first}****MI*{member}", "DMG*D8*19800101", "DTP*346*D8*20260101", "DTP*347*D8*20261231",
        f"EB*1*IND*30**{plan}", "EB*B*IND*98***27*25*****Y", "EB*B*IND*98***27*50*****N",
        "EB*A*IND*30*****.2****Y", "EB*C*IND*30***23*1500*****Y", "EB*C*IND*30***29*750.50*****Y",
        "DTP*291*D8*20260616"]
