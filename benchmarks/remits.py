"""Posting a large 835: N claims with three service lines each (default 10,000 claims, 30,000
lines), paid with contractual adjustments and patient responsibility, a tenth denied.

The script builds a practice in a scratch HPMS_HOME (or a scratch PostgreSQL database):
`hpms init`, a location with a group NPI, a provider, a payer, through the services; N/3
patients through the CSV import service; then N billed encounters, their claims (3 lines:
99213-25, 36415, 93000) and the lines' charges in the ledger, written in bulk. It writes the
payer's 835 for those claims (one interchange, four transaction sets), then runs
`hpms.services.payments.remits.import_file` in a fresh child process -- parse, match, post to the
ledger, claim statuses, denial work list, audit -- timing it and reading that process's peak
RSS (VmHWM). The import runs a second time to show it posts nothing (idempotency), timed too.

Target (SQLite): under 10 s for 10,000 claims / 30,000 lines.

    python benchmarks/remits.py [--backend sqlite|postgresql|both] [--claims 10000]
                                [--postgres URL] [--keep] [--profile]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from billing import _npi, pg_create, pg_drop, rss_mb, set_env  # noqa: E402

TARGET_S = 10.0
LINES = (("99213", "25", 12000), ("36415", "", 1500), ("93000", "", 4550))
FIRST = ["Ana", "José", "Emma", "Liam", "Olivia", "Noah", "Zoë", "Mateo", "Aisha", "Yuki", "Omar", "Grace"]
LAST = ["García", "Smith", "Nguyen", "Müller", "O'Brien", "Kowalski", "Johnson", "Okafor", "Rossi", "Dubois"]


def build(home: Path, url: str | None, n: int, seed: int) -> dict:
    set_env(home, url)
    import sqlalchemy as sa

    from hpms.config import load_settings
    from hpms.db import bulk_insert, dispose_engines, get_engine, new_ids, session_scope
    from hpms.models import Claim, ClaimLine, Encounter, EncounterDiagnosis, EncounterLine, LedgerEntry
    from hpms.services import lookups
    from hpms.services.people import coverage, patient_import
    from hpms.services.platform import admin, org
    from hpms.services.platform.context import open_context
    from hpms.services.scheduling import resources

    rng = random.Random(seed)
    settings = load_settings()
    t0 = time.perf_counter()
    admin.init(settings, practice="Remittance Benchmark Clinic", tz="America/New_York", location="Main")
    with open_context(settings) as ctx:
        org.update_location(
            ctx,
            "Main",
            npi=_npi("123456789"),
            address_line1="100 River Rd",
            city="Hartford",
            state="CT",
            postal_code="06103-1234",
            phone="860-555-0100",
        )
        loc = lookups.find_location(ctx, "Main").id
        prov = resources.add_provider(
            ctx, first_name="Ann", last_name="Smith", credentials="MD", npi=_npi("124531959")
        ).id
        payer = coverage.add_payer(ctx, name="Acme Health", payer_id="ACME1").id
        user_id, org_id = ctx.actor.user_id, ctx.org_id
    path = home / "patients.csv"
    n_patients = max(100, n // 3)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["first_name", "last_name", "dob", "sex_at_birth", "address_line1", "city", "state", "postal_code"])
        for _ in range(n_patients):
            w.writerow(
                [
                    rng.choice(FIRST),
                    rng.choice(LAST),
                    (dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(25000))).isoformat(),
                    rng.choice(["female", "male"]),
                    f"{rng.randint(1, 999)} Main St",
                    "Hartford",
                    "CT",
                    "06103",
                ]
            )
    with open_context(settings) as ctx:
        patient_import.import_csv(ctx, path)
        patients = list(ctx.session.execute(sa.text("SELECT id FROM patient ORDER BY id")).scalars())
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    claims = []  # (control, patient name, service date)
    with session_scope(get_engine(settings)) as s:
        enc_ids = new_ids(s, Encounter.__table__, n)
        claim_ids = new_ids(s, Claim.__table__, n)
        line_ids = new_ids(s, ClaimLine.__table__, 3 * n)
        encs, dxs, elines, crows, clines, charges = [], [], [], [], [], []
        for i, (eid, cid) in enumerate(zip(enc_ids, claim_ids)):
            day = today - dt.timedelta(days=rng.randint(20, 60))
            pid = rng.choice(patients)
            total = sum(c for _, _, c in LINES)
            encs.append(
                dict(
                    id=eid,
                    org_id=org_id,
                    patient_id=pid,
                    provider_id=prov,
                    location_id=loc,
                    appointment_id=None,
                    service_date=day,
                    place_of_service="11",
                    status="billed",
                    total_cents=total,
                    signed_at=now,
                    signed_by=user_id,
                    billed_at=now,
                    version=3,
                    created_by=user_id,
                    created_at=now,
                    updated_at=now,
                )
            )
            dxs.append(dict(encounter_id=eid, seq=1, code="I10"))
            control = f"{i + 1:09d}"
            crows.append(
                dict(
                    id=cid,
                    org_id=org_id,
                    encounter_id=eid,
                    patient_id=pid,
                    payer_id=payer,
                    coverage_id=None,
                    control_number=control,
                    frequency="1",
                    original_claim_id=None,
                    payer_claim_number=None,
                    status="submitted",
                    total_cents=total,
                    billing_run_id=None,
                    x12_file_id=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            for seq, (code, mod, cents) in enumerate(LINES, 1):
                lid = line_ids[3 * i + seq - 1]
                elines.append(
                    dict(
                        encounter_id=eid,
                        seq=seq,
                        code=code,
                        modifiers=mod,
                        units=1,
                        pointers="1",
                        charge_cents=cents,
                        service_date=day,
                    )
                )
                clines.append(
                    dict(
                        id=lid,
                        claim_id=cid,
                        seq=seq,
                        code=code,
                        modifiers=mod,
                        units=1,
                        pointers="1",
                        charge_cents=cents,
                        service_date=day,
                    )
                )
                charges.append(
                    dict(
                        org_id=org_id,
                        kind="charge",
                        amount_cents=cents,
                        responsibility="insurance",
                        patient_id=pid,
                        encounter_id=eid,
                        claim_id=cid,
                        claim_line_id=lid,
                        payer_id=payer,
                        posted_at=now,
                        effective_date=day,
                        reverses_id=None,
                        pair_id=None,
                        reference=None,
                        batch="benchmark",
                        created_by=user_id,
                        method=None,
                    )
                )
            claims.append((control, day))
        bulk_insert(s, Encounter.__table__, encs)
        bulk_insert(s, EncounterDiagnosis.__table__, dxs)
        bulk_insert(s, EncounterLine.__table__, elines)
        bulk_insert(s, Claim.__table__, crows)
        bulk_insert(s, ClaimLine.__table__, clines)
        bulk_insert(s, LedgerEntry.__table__, charges)
    engine = get_engine(settings)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    dispose_engines()
    era = home / "acme.835"
    era.write_text(write_835(claims, rng))
    return {
        "patients": n_patients,
        "claims": n,
        "lines": 3 * n,
        "file": str(era),
        "bytes": era.stat().st_size,
        "build_s": time.perf_counter() - t0,
    }


def _amt(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}" if cents % 100 else str(cents // 100)


def write_835(claims: list[tuple[str, dt.date]], rng: random.Random, sets: int = 4) -> str:
    """The payer's 835: 90% paid (CO-45 on every line, PR-2 coinsurance on the visit), 10%
    denied (CO-50)."""
    out = [
        "ISA*00*          *00*          *ZZ*ACME1          *ZZ*CLINIC         *261120*1200*^*00501*000004242*0*P*:",
        "GS*HP*ACME1*CLINIC*20261120*1200*42*X*005010X221A1",
    ]
    per = -(-len(claims) // sets)
    for n in range(sets):
        part = claims[n * per : (n + 1) * per]
        body, total = [], 0
        for control, day in part:
            denied = rng.random() < 0.10
            segs = []
            paid_claim = pr_claim = 0
            for code, mod, cents in LINES:
                if denied:
                    paid, co, pr = 0, cents, 0
                else:
                    co = cents * 20 // 100
                    pr = (cents - co) // 5 if code == "99213" else 0
                    paid = cents - co - pr
                proc = f"HC:{code}" + (f":{mod}" if mod else "")
                segs += [
                    f"SVC*{proc}*{_amt(cents)}*{_amt(paid)}**1",
                    f"DTM*472*{day:%Y%m%d}",
                    f"CAS*CO*{'50' if denied else '45'}*{_amt(co)}",
                ]
                if pr:
                    segs.append(f"CAS*PR*2*{_amt(pr)}")
                paid_claim += paid
                pr_claim += pr
            charge = sum(c for _, _, c in LINES)
            body.append(
                f"CLP*{control}*{'4' if denied else '1'}*{_amt(charge)}*{_amt(paid_claim)}*{_amt(pr_claim)}*"
                f"12*ACME{control}*11*1"
            )
            body.append(f"NM1*QC*1*DOE*JANE****MI*M{control}")
            body += segs
            total += paid_claim
        head = [
            f"ST*835*{n + 1:04d}",
            f"BPR*I*{_amt(total)}*C*ACH*CCP*01*011900445*DA*0001234567*1512345678**01*031100649*DA*0009876543*20261120",
            f"TRN*1*EFT{n + 1:06d}*1512345678",
            "DTM*405*20261120",
            "N1*PR*ACME HEALTH",
            "REF*2U*ACME1",
            "N1*PE*REMITTANCE BENCHMARK CLINIC*XX*1234567893",
            "LX*1",
        ]
        seg_list = head + body
        out += seg_list + [f"SE*{len(seg_list) + 1}*{n + 1:04d}"]
    out += [f"GE*{sets}*42", "IEA*1*000004242"]
    return "~\n".join(out) + "~\n"


def child(args) -> None:
    set_env(Path(args.home), args.url)
    import hpms.interop.x12.x835  # noqa: F401 - imports are not part of the run
    from hpms.config import load_settings
    from hpms.services.payments import remits
    from hpms.services.platform.context import open_context

    settings = load_settings()
    with open_context(settings, readonly=True):
        pass
    rss0 = rss_mb()[0]
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    with open_context(settings) as ctx:
        out = remits.import_file(ctx, args.file)
    wall = time.perf_counter() - t0
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    t1 = time.perf_counter()
    with open_context(settings) as ctx:
        again = remits.import_file(ctx, args.file)
    again_s = time.perf_counter() - t1
    with open_context(settings, readonly=True) as ctx:
        import sqlalchemy as sa

        entries = ctx.session.execute(sa.text("SELECT count(*) FROM ledger_entry WHERE kind <> 'charge'")).scalar()
    print(
        json.dumps(
            {
                "wall": wall,
                "posted": out.posted,
                "denied": out.denied,
                "unmatched": len(out.unmatched),
                "paid": str(out.paid),
                "entries": entries,
                "rss_before": rss0,
                "rss_peak": rss_mb()[1],
                "again_s": again_s,
                "again_duplicate": again.duplicate,
            }
        )
    )


def measure(args, backend: str) -> dict:
    home = Path(tempfile.mkdtemp(prefix="hpms-remits-bench-"))
    url = db = None
    try:
        if backend == "postgresql":
            db = f"hpms_bench_remits_{os.getpid()}"
            url = pg_create(args.postgres, db)
        built = build(home, url, args.claims, args.seed)
        cmd = [sys.executable, __file__, "--child", "--home", str(home), "--file", built["file"]]
        cmd += ["--profile"] if args.profile else []
        if url:
            cmd += ["--url", url]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode or args.profile:
            sys.stderr.write(proc.stderr)
        if proc.returncode:
            raise SystemExit(f"the import failed (exit {proc.returncode})")
        return {**built, **json.loads(proc.stdout.strip().splitlines()[-1])}
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
            if db:
                pg_drop(args.postgres, db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--postgres", metavar="URL", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help="keep the scratch HPMS_HOME / PostgreSQL database")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the import")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    print(
        f"835 posting benchmark: {args.claims:,} claims x 3 lines; python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    for backend in backends:
        r = measure(args, backend)
        print(
            f"  {backend:10} file {r['bytes'] / 1e6:.1f} MB: posted {r['posted']:,} claims ({r['lines']:,} lines, "
            f"{r['denied']:,} denied, {r['entries']:,} ledger entries) in {r['wall']:.2f} s "
            f"({r['posted'] / r['wall']:,.0f} claims/s), peak RSS {r['rss_peak']:.0f} MB "
            f"(+{r['rss_peak'] - r['rss_before']:.0f} MB over {r['rss_before']:.0f}); again: "
            f"{'nothing posted' if r['again_duplicate'] else 'POSTED AGAIN'} in {r['again_s'] * 1000:.0f} ms",
        )
        print(
            f"  {backend:10} posting {r['posted']:,} claims  {r['wall']:6.2f} s   target < {TARGET_S:.0f} s   "
            f"{'PASS' if r['wall'] < TARGET_S else 'MISS'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
