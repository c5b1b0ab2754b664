"""The billing run on a large synthetic practice: signed encounters -> scrubbed claims -> 837P files.

For each size N (default 20,000, 50,000 and 100,000 signed encounters) the script builds a
practice in a scratch HPMS_HOME (or a scratch PostgreSQL database): `hpms init`, a second
location, both with a group NPI and a ZIP+4, 6 providers with NPIs, 4 payers, a billing profile,
a default fee schedule and one payer's own, all through the services; N/5 patients through the
CSV import service; a primary coverage for 99% of them (10% dependents of a subscriber) written
with `hpms.db.bulk_insert`, member ids encrypted with `ctx.crypto.encrypt` plus the blind index
as `coverage.add_coverage` does; then N encounters dated in the last 60 days, each with 1-4
diagnoses (ICD-10-CM) and 1-4 lines (an E/M code 99202-99215, with modifier 25 when other
services follow, and tests, injections, an ECG...), status 'signed', in bulk.

Then `hpms.services.billing.runner.run(settings, out_dir=...)` runs end to end -- claims and lines
written to the database, the work list, one 837P file per payer and location written, fsynced
and renamed -- in a fresh child process, so that its peak RSS (`resource.getrusage`) is the
billing run's own and not the build's. The database is copied before that run and restored for
a second run under `tracemalloc` (peak of Python allocations; slower, so it is not timed) and,
with --profile, a third under cProfile.

The "bare loop" writes the same segments (the ones found in the run's files) for the same
claims with f-strings over tuples read beforehand, to a file in the same directory: the run's
claims/s over the bare loop's is the ratio the target asks for. The raw read of those tuples
(one SQL statement per table, plus decrypting the member ids) is timed on its own.

Target (SQLite): at least 5,000 claims/s end to end, on the reference machine of
../shared/PERFORMANCE.md; the figure here is also printed scaled by the `import typer`
yardstick of benchmarks/patients.py. Memory must not grow with N. PostgreSQL is measured
against the same figures.

    python benchmarks/billing.py [--backend sqlite|postgresql|both] [--sizes 20000,50000,100000]
                                 [--postgres URL] [--no-tracemalloc] [--profile] [--keep]
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import datetime as dt
import io
import json
import os
import platform
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from patients import REFERENCE_IMPORT_TYPER_MS, machine_factor  # noqa: E402

TARGET_CLAIMS_S = 5_000.0

FIRST = [
    "Ana",
    "José",
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Zoë",
    "Chloé",
    "Mateo",
    "Aisha",
    "Yuki",
    "Omar",
    "Hannah",
    "Jonas",
    "Léa",
    "Björn",
    "Fatima",
    "Daniel",
    "Grace",
    "Samuel",
    "Ravi",
    "Amélie",
    "Kofi",
]
LAST = [
    "Müller",
    "García",
    "Smith",
    "Johnson",
    "Nguyễn",
    "O'Brien",
    "Kowalski",
    "Rossi",
    "Schmidt",
    "Brown",
    "Martínez",
    "Dubois",
    "Andersson",
    "Khan",
    "Okafor",
    "Tanaka",
    "Silva",
    "Cohen",
    "Novak",
    "Jensen",
]
STREETS = ["Oak St", "Maple Ave", "Elm St", "Park Pl", "Cedar Ln", "Main St", "Washington Ave", "Lake St"]
CITIES = [
    ("Hartford", "CT", "06103"),
    ("New Haven", "CT", "06510"),
    ("Chicago", "IL", "60611"),
    ("Evanston", "IL", "60201"),
]
LOCATIONS = [  # name, tz, NPI, ZIP+4
    ("Main", "America/New_York", "1234567893", "06103-1234"),
    ("North", "America/New_York", "1245319599", "06510-4321"),
]
PROVIDERS = [
    ("Alan", "Smith", "174839201"),
    ("Meera", "Patel", "158203947"),
    ("Linh", "Nguyen", "190672534"),
    ("Sara", "Cohen", "163847290"),
    ("Omar", "Khan", "147382956"),
    ("Ruth", "Baker", "182736450"),
]
PAYERS = [
    ("Acme Health Plan", "60054"),
    ("Blue Harbor Insurance", "BHI01"),
    ("Medicare Part B", "MCRB1"),
    ("Lakeshore Medicaid", "LKMCD"),
]
EM = ["99202", "99203", "99204", "99212", "99213", "99213", "99213", "99214", "99214", "99215"]
EXTRA = ["36415", "81002", "93000", "90471", "90686", "87880", "85025", "80053", "96127", "99406"]
MORE_FEES = {"87880": "22.00", "96127": "8.00", "99406": "19.00"}  # beside the demo clinic's schedule


def fee_schedule() -> dict[str, str]:
    """The demo clinic's fees and a few more (the services load on first use, as measured)."""
    from hpms.services.demo_billing import FEES

    return FEES | MORE_FEES


PAYER_FEES = {"99213": "98.00", "99214": "148.00", "99215": "201.00", "36415": "10.00"}  # the first payer's
DIAGNOSES = [
    "E119",
    "I10",
    "J069",
    "M5450",
    "Z0000",
    "E785",
    "E669",
    "F419",
    "J45909",
    "K219",
    "N390",
    "R0602",
    "R519",
    "Z23",
    "E039",
    "G4700",
    "M25561",
    "R109",
    "Z1231",
    "E559",
]


# ---- scratch databases ----------------------------------------------------------------------


def _admin_engine(url: str):
    import sqlalchemy as sa

    return sa.make_url(url), sa.create_engine(sa.make_url(url), isolation_level="AUTOCOMMIT")


def pg_create(url: str, name: str, template: str | None = None) -> str:
    base, admin = _admin_engine(url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def pg_drop(url: str, *names: str) -> None:
    _, admin = _admin_engine(url)
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


def set_env(home: Path, url: str | None) -> None:
    for var in [k for k in os.environ if k.startswith("HPMS_") and k != "HPMS_CACHE_DIR"]:
        del os.environ[var]
    os.environ["HPMS_HOME"] = str(home)
    if url:
        os.environ["HPMS_DATABASE_URL"] = url


# ---- the synthetic practice -----------------------------------------------------------------


def _npi(base: str) -> str:
    from hpms.codes.npi import is_valid_npi

    return next(base + d for d in "0123456789" if is_valid_npi(base + d))


def _new_ids(session, table: str, count: int) -> list[int]:
    import sqlalchemy as sa

    if session.get_bind().dialect.name == "postgresql":
        return list(
            session.execute(
                sa.text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, :n)"),
                {"n": count},
            ).scalars()
        )
    top = session.execute(sa.text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()
    return list(range(top + 1, top + 1 + count))


def build(home: Path, url: str | None, n: int, seed: int) -> dict:
    """The practice and N signed encounters; returns what the report needs."""
    set_env(home, url)
    import sqlalchemy as sa

    from hpms.codes import icd10
    from hpms.config import load_settings
    from hpms.db import bulk_insert, dispose_engines, get_engine, session_scope
    from hpms.models import Coverage, Encounter, EncounterDiagnosis, EncounterLine
    from hpms.services import lookups
    from hpms.services.billing import fees
    from hpms.services.billing import runner as billing
    from hpms.services.people import coverage, patient_import
    from hpms.services.platform import admin, org
    from hpms.services.platform.context import open_context
    from hpms.services.scheduling import resources

    rng = random.Random(seed)
    settings = load_settings()
    times = {}
    t0 = time.perf_counter()
    admin.init(settings, practice="Billing Benchmark Clinic", tz="America/New_York", location="Main")
    with open_context(settings) as ctx:
        name, tz, npi, zip9 = LOCATIONS[0]
        org.update_location(
            ctx,
            name,
            npi=npi,
            address_line1="100 River Rd",
            city="Hartford",
            state="CT",
            postal_code=zip9,
            phone="860-555-0100",
        )
        for name, tz, npi, zip9 in LOCATIONS[1:]:
            org.add_location(
                ctx,
                name=name,
                tz=tz,
                npi=npi,
                address_line1="5 College St",
                city="New Haven",
                state="CT",
                postal_code=zip9,
                phone="203-555-0100",
            )
        locs = [lookups.find_location(ctx, name).id for name, *_ in LOCATIONS]
        provs = [
            resources.add_provider(
                ctx,
                first_name=f,
                last_name=la,
                credentials="MD",
                npi=_npi(base),
                taxonomy="207Q00000X",
                locations=[locs[i % len(locs)]],
            ).id
            for i, (f, la, base) in enumerate(PROVIDERS)
        ]
        payers = [
            coverage.add_payer(ctx, name=pn, payer_id=code, city="Hartford", state="CT").id for pn, code in PAYERS
        ]
        for code, amount in fee_schedule().items():
            fees.set_fee(ctx, code, amount)
        for code, amount in PAYER_FEES.items():
            fees.set_fee(ctx, code, amount, payer=PAYERS[0][1])
        billing.set_profile(
            ctx,
            tax_id="06-1234567",
            submitter_id="BENCH01",
            submitter_name="Billing Benchmark",
            receiver_id="CLEARHOUSE",
            receiver_name="Demo Clearinghouse",
            contact_name="Billing Office",
            contact_phone="860-555-0100",
        )
        user_id = ctx.actor.user_id
        org_id = ctx.org_id
    for code in DIAGNOSES:  # builds the ICD-10-CM cache on first use; every code must be billable
        found = icd10.lookup(code)
        assert found is not None and found.billable, code
    times["services"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_patients = max(500, n // 5)
    path = home / "patients.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["first_name", "last_name", "dob", "sex_at_birth", "address_line1", "city", "state", "postal_code"])
        for _ in range(n_patients):
            city, state, zip5 = rng.choice(CITIES)
            w.writerow(
                [
                    rng.choice(FIRST),
                    rng.choice(LAST),
                    (dt.date(1935, 1, 1) + dt.timedelta(days=rng.randrange(32000))).isoformat(),
                    rng.choice(["female", "male"]),
                    f"{rng.randint(1, 999)} {rng.choice(STREETS)}",
                    city,
                    state,
                    zip5,
                ]
            )
    with open_context(settings) as ctx:
        patient_import.import_csv(ctx, path)
        patient_ids = list(ctx.session.execute(sa.text("SELECT id FROM patient ORDER BY id")).scalars())
    times["patients"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    with open_context(settings) as ctx:
        crypto = ctx.crypto
        rows = []
        for i, pid in enumerate(patient_ids):
            if rng.random() < 0.01:  # no coverage: the work list gets these
                continue
            member = f"M{rng.randint(10**8, 10**9 - 1)}"
            dependent = rng.random() < 0.10
            rows.append(
                dict(
                    org_id=org_id,
                    patient_id=pid,
                    payer_id=payers[i % len(payers)],
                    member_id_enc=crypto.encrypt(member, "member_id"),
                    member_id_bidx=crypto.blind_index(member, "member_id"),
                    group_number=f"G{rng.randint(100, 999)}",
                    relationship="child" if dependent else "self",
                    subscriber_first_name=rng.choice(FIRST) if dependent else None,
                    subscriber_last_name=rng.choice(LAST) if dependent else None,
                    subscriber_dob=dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(9000)) if dependent else None,
                    priority="primary",
                    valid_from=None,
                    valid_to=None,
                    active=True,
                    created_at=now,
                )
            )
        bulk_insert(ctx.session, Coverage.__table__, rows)
    times["coverage"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    engine = get_engine(settings)
    today = now.date()
    lines_total = dx_total = 0
    schedule = fee_schedule()
    chunk = 20_000
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        with session_scope(engine) as session:
            ids = _new_ids(session, "encounter", size)
            encs, dxs, lines = [], [], []
            for eid in ids:
                day = today - dt.timedelta(days=rng.randint(1, 60))
                prov = rng.randrange(len(provs))
                n_lines = rng.choice((1, 1, 2, 2, 3, 4))
                codes = [rng.choice(EM)] + rng.sample(EXTRA, n_lines - 1)
                n_dx = rng.choice((1, 2, 2, 3, 4))
                dx = rng.sample(DIAGNOSES, n_dx)
                total = 0
                for seq, code in enumerate(codes, 1):
                    units = 2 if code == "90471" and rng.random() < 0.3 else 1
                    charge = int(round(float(schedule[code]) * 100)) * units
                    total += charge
                    mods = (
                        "25" if seq == 1 and n_lines > 1 else ("59" if code == "93000" and rng.random() < 0.2 else "")
                    )
                    pointers = ",".join(
                        str(p) for p in sorted(rng.sample(range(1, n_dx + 1), min(n_dx, rng.randint(1, 2))))
                    )
                    lines.append(
                        dict(
                            encounter_id=eid,
                            seq=seq,
                            code=code,
                            modifiers=mods,
                            units=units,
                            pointers=pointers,
                            charge_cents=charge,
                            service_date=day,
                        )
                    )
                for seq, code in enumerate(dx, 1):
                    dxs.append(dict(encounter_id=eid, seq=seq, code=code))
                signed = dt.datetime.combine(day, dt.time(21, 0), tzinfo=dt.UTC)
                encs.append(
                    dict(
                        id=eid,
                        org_id=org_id,
                        patient_id=rng.choice(patient_ids),
                        provider_id=provs[prov],
                        location_id=locs[prov % len(locs)],
                        appointment_id=None,
                        service_date=day,
                        place_of_service="11",
                        status="signed",
                        total_cents=total,
                        signed_at=signed,
                        signed_by=user_id,
                        billed_at=None,
                        version=2,
                        created_by=user_id,
                        created_at=signed,
                        updated_at=signed,
                    )
                )
            bulk_insert(session, Encounter.__table__, encs)
            bulk_insert(session, EncounterDiagnosis.__table__, dxs)
            bulk_insert(session, EncounterLine.__table__, lines)
            lines_total += len(lines)
            dx_total += len(dxs)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    times["encounters"] = time.perf_counter() - t0
    dispose_engines()
    return {"patients": n_patients, "coverages": len(rows), "lines": lines_total, "diagnoses": dx_total, "times": times}


# ---- the measured run: a child process ------------------------------------------------------


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB. /proc's VmHWM, not getrusage: after
    fork + exec Linux keeps the parent's high-water mark in ru_maxrss, which would hide the
    child's own (the builder that spawns it holds the synthetic rows)."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak


def child(args) -> None:
    """Runs in a fresh process: import, then one billing run; prints one JSON line."""
    set_env(Path(args.home), args.url)
    import hpms.interop.x12.x837p  # noqa: F401 - imports are not part of the run
    from hpms.config import load_settings
    from hpms.services.billing import runner as billing
    from hpms.services.platform.context import open_context

    settings = load_settings()
    with open_context(settings, readonly=True):
        pass  # connect, check the schema: the run proper starts warm like a cron job's second second
    rss0 = rss_mb()[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    profiler = None
    if args.mode == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
    elif args.mode == "profile":
        profiler = cProfile.Profile()
        profiler.enable()
    samples = []

    def progress(done, todo):
        samples.append((done, rss_mb()[1]))

    t0, c0 = time.perf_counter(), time.process_time()
    summary = billing.run(settings, out_dir=out, progress=progress)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    result = {
        "wall": wall,
        "cpu": cpu,
        "claims": summary.claims,
        "failed": summary.failed,
        "encounters": summary.encounters,
        "files": len(summary.files),
        "bytes": sum(Path(f["path"]).stat().st_size for f in summary.files),
        "rss_before": rss0,
        "rss_peak": rss_mb()[1],
        "rss_after_claims": samples[-1][1] if samples else None,
        "rss_first_chunk": samples[0][1] if samples else None,
    }
    if args.mode == "tracemalloc":
        import tracemalloc

        result["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    if profiler is not None:
        profiler.disable()
        for order, count in (("cumulative", 40), ("tottime", 30)):
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).sort_stats(order).print_stats(count)
            text = buf.getvalue().splitlines()
            first = next((i for i, ln in enumerate(text) if ln.strip().startswith("ncalls")), 0)
            print(f"\ncProfile of billing.run ({order}):", file=sys.stderr)
            print("\n".join(text[first - 1 :]), file=sys.stderr)
    print(json.dumps(result))


def run_child(home: Path, url: str | None, out: Path, mode: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "--home", str(home), "--out", str(out), "--mode", mode]
    if url:
        cmd += ["--url", url]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"the billing run failed (exit {proc.returncode})")
    if mode == "profile":
        print(proc.stderr, end="")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- the bare loop --------------------------------------------------------------------------


def bare_loop(home: Path, url: str | None, out: Path) -> dict:
    """Reads the run's claims as tuples (timed apart), then writes the same segments with
    f-strings: ISA/GS/ST/BHT and the 1000A-2010AA header per file, then per claim HL, SBR,
    NM1*IL, N3, N4, DMG, NM1*PR, (HL, PAT, NM1*QC, N3, N4, DMG for a dependent), CLM, HI,
    NM1*82, PRV, and LX, SV1, DTP per line."""
    set_env(home, url)
    import sqlalchemy as sa

    from hpms.config import load_settings
    from hpms.db import dispose_engines, get_engine
    from hpms.services.platform.context import open_context

    settings = load_settings()
    with open_context(settings, readonly=True) as ctx:
        crypto = ctx.crypto
    engine = get_engine(settings)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        claims = conn.execute(
            sa.text(
                "SELECT c.id, c.control_number, c.total_cents, c.encounter_id, f.id, e.service_date,"
                " e.place_of_service,"
                " p.first_name, p.last_name, p.dob, p.sex_at_birth, p.address_line1, p.city, p.state, p.postal_code,"
                " v.member_id_enc, v.relationship, v.group_number, v.subscriber_first_name, v.subscriber_last_name,"
                " v.subscriber_dob, pr.last_name, pr.first_name, pr.npi, pr.taxonomy, y.name, y.payer_id"
                " FROM claim c JOIN x12_file f ON f.id = c.x12_file_id JOIN encounter e ON e.id = c.encounter_id"
                " JOIN patient p ON p.id = c.patient_id JOIN coverage v ON v.id = c.coverage_id"
                " JOIN provider pr ON pr.id = e.provider_id JOIN payer y ON y.id = c.payer_id"
                " ORDER BY f.id, c.id"
            )
        ).all()
        lines: dict[int, list] = {}
        for r in conn.execute(
            sa.text(
                "SELECT claim_id, code, modifiers, units, pointers, charge_cents, service_date"
                " FROM claim_line ORDER BY claim_id, seq"
            )
        ):
            lines.setdefault(r[0], []).append(tuple(r[1:]))
        dx: dict[int, list] = {}
        for r in conn.execute(sa.text("SELECT encounter_id, code FROM encounter_diagnosis ORDER BY encounter_id, seq")):
            dx.setdefault(r[0], []).append(r[1])
    import unicodedata

    def fold(v):  # ASCII as the writer sends it (the tuples are ready to format)
        if type(v) is not str or v.isascii():
            return v
        return unicodedata.normalize("NFKD", v).encode("ascii", "ignore").decode("ascii")

    members = {}
    rows = []
    for r in claims:
        enc = r[15]
        if enc not in members:
            members[enc] = crypto.decrypt(enc, "member_id")
        rows.append(
            (*map(fold, r[:15]), members[enc], *map(fold, r[16:]), tuple(lines.get(r[0], ())), tuple(dx.get(r[3], ())))
        )
    read_s = time.perf_counter() - t0
    dispose_engines()

    def d8(d):
        return d if isinstance(d, str) and len(d) == 8 else str(d).replace("-", "")

    def amount(c):
        d, m = divmod(c, 100)
        return str(d) if not m else f"{d}.{m:02d}".rstrip("0")

    t0 = time.perf_counter()
    path = out / "bare-loop.x12"
    n = 0
    with open(path, "w", encoding="ascii", newline="") as fh:
        w = fh.write
        current, seg = None, 0
        for (
            _cid,
            ctl,
            total,
            _eid,
            fid,
            _dos,
            pos,
            first,
            last,
            dob,
            sex,
            a1,
            city,
            state,
            zip_,
            member,
            rel,
            grp,
            sfirst,
            slast,
            sdob,
            plast,
            pfirst,
            pnpi,
            ptax,
            payer,
            payer_code,
            lns,
            dxs,
        ) in rows:
            if fid != current:
                if current is not None:
                    w(f"SE*{seg}*0001~\nGE*1*{current}~\nIEA*1*{current:09d}~\n")
                current, hl, seg = fid, 1, 10
                w(
                    f"ISA*00*          *00*          *ZZ*BENCH01        *ZZ*CLEARHOUSE     *261130*2100*^*00501"
                    f"*{fid:09d}*0*T*:~\nGS*HC*BENCH01*CLEARHOUSE*20261130*2100*{fid}*X*005010X222A1~\n"
                    f"ST*837*0001*005010X222A1~\nBHT*0019*00*{fid}0001*20261130*2100*CH~\n"
                    f"NM1*41*2*BILLING BENCHMARK*****46*BENCH01~\nPER*IC*BILLING OFFICE*TE*8605550100~\n"
                    f"NM1*40*2*DEMO CLEARINGHOUSE*****46*CLEARHOUSE~\nHL*1**20*1~\n"
                    f"NM1*85*2*BILLING BENCHMARK CLINIC*****XX*1234567893~\nN3*100 RIVER RD~\n"
                    f"N4*HARTFORD*CT*061031234~\nREF*EI*061234567~\n"
                )
            hl += 1
            sub = hl
            sx = "F" if sex == "female" else "M"
            if rel == "self":
                w(
                    f"HL*{sub}*1*22*0~\nSBR*P*18*{grp}******CI~\nNM1*IL*1*{last.upper()}*{first.upper()}****MI*{member}~\n"
                    f"N3*{a1.upper()}~\nN4*{city.upper()}*{state}*{zip_}~\nDMG*D8*{d8(dob)}*{sx}~\n"
                    f"NM1*PR*2*{payer.upper()}*****PI*{payer_code}~\n"
                )
                seg += 7
            else:
                hl += 1
                w(
                    f"HL*{sub}*1*22*1~\nSBR*P**{grp}******CI~\nNM1*IL*1*{slast.upper()}*{sfirst.upper()}****MI*{member}~\n"
                    f"N3*{a1.upper()}~\nN4*{city.upper()}*{state}*{zip_}~\nDMG*D8*{d8(sdob)}*U~\n"
                    f"NM1*PR*2*{payer.upper()}*****PI*{payer_code}~\nHL*{hl}*{sub}*23*0~\nPAT*19~\n"
                    f"NM1*QC*1*{last.upper()}*{first.upper()}~\nN3*{a1.upper()}~\nN4*{city.upper()}*{state}*{zip_}~\n"
                    f"DMG*D8*{d8(dob)}*{sx}~\n"
                )
                seg += 13
            w(
                f"CLM*{ctl}*{amount(total)}***{pos}:B:1*Y*A*Y*Y~\nHI*ABK:{dxs[0]}"
                + "".join(f"*ABF:{c}" for c in dxs[1:])
                + f"~\nNM1*82*1*{plast.upper()}*{pfirst.upper()}****XX*{pnpi}~\nPRV*PE*PXC*{ptax}~\n"
            )
            seg += 4
            for k, (code, mods, units, ptrs, charge, sdate) in enumerate(lns, 1):
                proc = f"{code}:{mods.replace(',', ':')}" if mods else code
                w(
                    f"LX*{k}~\nSV1*HC:{proc}*{amount(charge)}*UN*{units}***{ptrs.replace(',', ':')}~\n"
                    f"DTP*472*D8*{d8(sdate)}~\n"
                )
                seg += 3
            n += 1
        if current is not None:
            w(f"SE*{seg}*0001~\nGE*1*{current}~\nIEA*1*{current:09d}~\n")
    write_s = time.perf_counter() - t0
    size = path.stat().st_size
    path.unlink()
    return {"claims": n, "read": read_s, "write": write_s, "bytes": size}


# ---- one size -------------------------------------------------------------------------------


def restore(snapshot: Path, home: Path, url: str | None, snapshot_db: str | None, db: str | None, pg: str | None):
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(snapshot, home)
    if snapshot_db:
        pg_create(pg, db, template=snapshot_db)


def measure(args, backend: str, n: int, factor: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="hpms-bench-bill-"))
    home, snapshot = tmp / "home", tmp / "snapshot"
    url = db = snapshot_db = None
    if backend == "postgresql":
        db = f"hpms_bench_bill_{os.getpid()}_{n}"
        snapshot_db = f"{db}_snap"
        url = pg_create(args.postgres, db)
    try:
        t0 = time.perf_counter()
        info = build(home, url, n, args.seed)
        build_s = time.perf_counter() - t0
        shutil.copytree(home, snapshot)
        if backend == "postgresql":
            pg_create(args.postgres, snapshot_db, template=db)
            db_size = None
        else:
            db_size = (home / "hpms.db").stat().st_size
        t = info["times"]
        print(
            f"  N = {n:,}: built in {build_s:.0f} s (services {t['services']:.1f} s, {info['patients']:,} patients "
            f"imported {t['patients']:.1f} s, {info['coverages']:,} coverages {t['coverage']:.1f} s, "
            f"{n:,} encounters + {info['diagnoses']:,} diagnoses + {info['lines']:,} lines bulk-inserted "
            f"{t['encounters']:.1f} s)" + (f"; database {db_size / 1e6:.0f} MB" if db_size else ""),
            flush=True,
        )

        r = run_child(home, url, tmp / "out", "timed")
        rate = r["claims"] / r["wall"]
        bare = bare_loop(home, url, tmp / "out")
        bare_rate = bare["claims"] / bare["write"]
        res = {"n": n, "run": r, "bare": bare, "rate": rate, "scaled": rate * factor, "bare_rate": bare_rate}
        print(
            f"    billing run   {r['wall']:6.1f} s  {rate:7,.0f} claims/s here, {rate * factor:7,.0f} scaled "
            f"(CPU {r['cpu']:.1f} s in the process: {r['claims'] / r['cpu']:,.0f}/s); {r['claims']:,} claims, "
            f"{r['failed']:,} to the work list, {r['files']} files, {r['bytes'] / 1e6:.1f} MB",
            flush=True,
        )
        print(
            f"    peak RSS      {r['rss_peak']:6.0f} MB  (RSS after imports and connecting {r['rss_before']:.0f} MB: "
            f"+{r['rss_peak'] - r['rss_before']:.0f} MB; after the first chunk {r['rss_first_chunk']:.0f} MB, "
            f"after all claims {r['rss_after_claims']:.0f} MB)",
            flush=True,
        )
        print(
            f"    bare loop     {bare['write']:6.2f} s  {bare_rate:7,.0f} claims/s writing the same segments "
            f"({bare['bytes'] / 1e6:.1f} MB; reading the tuples first: {bare['read']:.1f} s, "
            f"{bare['claims'] / (bare['read'] + bare['write']):,.0f} claims/s with the read)   "
            f"ratio run/bare {rate / bare_rate:.3f} (1 : {bare_rate / rate:.1f})",
            flush=True,
        )
        if not args.no_tracemalloc:
            restore(snapshot, home, url, snapshot_db, db, args.postgres)
            shutil.rmtree(tmp / "out2", ignore_errors=True)
            m = run_child(home, url, tmp / "out2", "tracemalloc")
            res["tracemalloc"] = m["tracemalloc_peak"]
            print(
                f"    tracemalloc   {m['tracemalloc_peak']:6.1f} MB peak of Python allocations during the run "
                f"(a second run on a copy of the database, {m['wall']:.0f} s under tracemalloc)",
                flush=True,
            )
        if args.profile and n == min(args.sizes):
            restore(snapshot, home, url, snapshot_db, db, args.postgres)
            shutil.rmtree(tmp / "out3", ignore_errors=True)
            run_child(home, url, tmp / "out3", "profile")
        return res
    finally:
        from hpms.db import dispose_engines

        dispose_engines()
        if args.keep:
            print(f"    kept {tmp}" + (f" and databases {db}, {snapshot_db}" if db else ""))
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            if db:
                pg_drop(args.postgres, db, snapshot_db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="server for --backend postgresql: fresh hpms_bench_* databases are created next to "
        "this one and dropped afterwards (default: %(default)s)",
    )
    parser.add_argument("--sizes", default="20000,50000,100000", help="signed encounters per run, comma-separated")
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the synthetic data")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the second run under tracemalloc")
    parser.add_argument("--profile", action="store_true", help="cProfile a third run at the smallest size")
    parser.add_argument("--keep", action="store_true", help="keep the scratch HPMS_HOME / PostgreSQL databases")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="timed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        print(
            f"billing-run benchmark on {backend}: {', '.join(f'{n:,}' for n in args.sizes)} signed encounters; "
            f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
            f"at start",
            flush=True,
        )
        f0 = machine_factor()
        print(
            f"  machine factor {f0:.2f} (import typer {f0 * REFERENCE_IMPORT_TYPER_MS:.0f} ms here vs "
            f"{REFERENCE_IMPORT_TYPER_MS:.0f} ms on the reference); scaled = claims/s here x factor",
            flush=True,
        )
        results = [measure(args, backend, n, f0) for n in args.sizes]
        f1 = machine_factor()
        factor = (f0 + f1) / 2
        print(f"  machine factor {f1:.2f} after the runs; the mean {factor:.2f} is used below")
        print(
            f"  {'encounters':>10} {'claims':>8} {'s':>6} {'claims/s':>9} {'scaled':>8} {'bare/s':>9} {'ratio':>6} "
            f"{'MB out':>7} {'RSS MB':>7} {'+MB':>5} {'tracemalloc MB':>14}  target >= {TARGET_CLAIMS_S:,.0f}/s"
        )
        for r in results:
            run_ = r["run"]
            scaled = r["rate"] * factor
            tm = f"{r['tracemalloc']:14.1f}" if "tracemalloc" in r else f"{'-':>14}"
            print(
                f"  {r['n']:>10,} {run_['claims']:>8,} {run_['wall']:6.1f} {r['rate']:9,.0f} {scaled:8,.0f} "
                f"{r['bare_rate']:9,.0f} {r['rate'] / r['bare_rate']:6.3f} {run_['bytes'] / 1e6:7.1f} "
                f"{run_['rss_peak']:7.0f} {run_['rss_peak'] - run_['rss_before']:5.0f} {tm}  "
                f"{'PASS' if scaled >= TARGET_CLAIMS_S else 'MISS'}"
            )
        print(
            f"  (s: billing.run end to end in a fresh process; ratio: claims/s of the run over the bare loop's; "
            f"RSS: peak of that process, +MB over its size before the run; load average {os.getloadavg()[0]:.1f} "
            f"at the end)",
            flush=True,
        )
        print(flush=True)


if __name__ == "__main__":
    main()
