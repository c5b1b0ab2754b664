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

The "raw bound" (`raw_bound`) does the run's work the cheapest raw way, on the bare driver,
on a copy of the database from before the run: the same reads (one statement per table), the
same writes (claims, claim lines, ledger charges, claim history, encounters billed, work-list
items, one sealed audit event per chunk, the files recorded and their claims assigned; by
executemany, COPY on PostgreSQL, committed per chunk as the run commits them), then the claims
read back as tuples and the same segments written with f-strings, one file per payer and
location, fsynced and renamed. It scrubs and validates nothing. The run's time over the
bound's is the ratio the target asks for.

Target (SQLite): at least 15,000 claims/s end to end at 100,000 encounters, on the reference
machine of ../shared/PERFORMANCE.md (the figure here is also printed scaled by the `import
typer` yardstick of benchmarks/patients.py); at most 2.5 times the raw bound's time; peak RSS
at most 100 MB over the process's size before the run, whatever N. PostgreSQL is measured
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

TARGET_CLAIMS_S = 15_000.0
MAX_RATIO = 2.5  # the run's time over the raw bound's
MAX_GROWTH_MB = 100.0  # peak RSS of the run over its size before

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


def scratch_done(home: Path, url: str, db: str | None, *, keep: bool) -> None:
    """The end of a benchmark's run in a scratch HPMS_HOME (and database `db` on the server at
    `url`): engines closed, then both removed, or named when `keep`."""
    from hpms.db import dispose_engines

    dispose_engines()
    if not keep:
        shutil.rmtree(home, ignore_errors=True)
        if db:
            pg_drop(url, db)
    else:
        print(f"  kept {home}" + (f" and database {db}" if db else ""))


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


# ---- the raw bound --------------------------------------------------------------------------


def _raw_connect(home: Path, url: str | None):
    """A connection on the bare driver with the settings hpms gives its own (WAL, foreign keys
    on, synchronous NORMAL on SQLite): the database's rules are part of the work."""
    if url is None:
        import sqlite3

        conn = sqlite3.connect(home / "hpms.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        return conn, "?"
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True), "%s"


def raw_bound(home: Path, url: str | None, out: Path, chunk: int = 2000) -> dict:
    """The billing run's work done the cheapest raw way on the bare driver, on a copy of the
    database before the run: read the signed encounters, their lines, the primary coverages and
    the fees (one statement per table); per chunk of `chunk` encounters, in one transaction each
    as the run commits them, write the claims, claim lines, ledger charges and claim history
    (executemany; COPY on PostgreSQL), mark the encounters billed, open a work-list item for each
    encounter without coverage and append one sealed audit event; then record one file per payer
    and location and assign its claims; then read the claims back as tuples (one statement per
    table, plus decrypting the member ids) and write the segments of the run's files with
    f-strings, one file per payer and location (ISA/GS/ST/BHT and the 1000A-2010AA header, then
    per claim HL, SBR, NM1*IL, N3, N4, DMG, NM1*PR, (HL, PAT, NM1*QC, N3, N4, DMG for a dependent),
    CLM, HI, NM1*82, PRV, and LX, SV1, DTP per line), each to a temp name, fsynced and renamed,
    the file marked written with its audit event. No scrubbing and no validation: the run's
    claims/s over this is the ratio the target asks for."""
    set_env(home, url)
    import hashlib
    import hmac

    from hpms.config import load_settings
    from hpms.db import dispose_engines
    from hpms.services.platform.context import open_context

    settings = load_settings()
    with open_context(settings, readonly=True) as ctx:
        crypto = ctx.crypto
        ring = ctx.key_ring
        key = ring.audit_keys()[ring.active]
        org_id, user_id, username = ctx.org_id, ctx.actor.user_id, ctx.actor.username
    dispose_engines()
    conn, mark = _raw_connect(home, url)
    pg = url is not None
    cur = conn.cursor()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamp = now if pg else now.isoformat(sep=" ")

    def begin():
        cur.execute("BEGIN" if pg else "BEGIN IMMEDIATE")

    def insert(table: str, columns: str, rows: list) -> None:
        if not rows:
            return
        if pg:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["?"] * (columns.count(",") + 1))
            cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)

    def next_id(table: str) -> int:
        cur.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
        return cur.fetchone()[0]

    def audit(action: str, entity: str, entity_id, patient_ids, detail: str) -> None:
        cur.execute("SELECT last_seq, last_hash FROM audit_head WHERE id = 1" + (" FOR UPDATE" if pg else ""))
        seq, prev = cur.fetchone()
        seq += 1
        ids = None if patient_ids is None else json.dumps(sorted(set(patient_ids)), separators=(",", ":"))
        body = json.dumps(
            [
                seq,
                stamp if not pg else str(stamp),
                org_id,
                user_id,
                username,
                action,
                entity,
                entity_id,
                None,
                ids,
                None,
                detail,
                prev,
            ],
            separators=(",", ":"),
        ).encode()
        seal = hmac.new(key, body + b"|" + ring.active.encode(), hashlib.sha256).hexdigest()
        insert(
            "audit_event",
            "seq, at, org_id, user_id, username, action, entity, entity_id, patient_ids, detail, prev_hash, key_id, "
            "hash",
            [(seq, stamp, org_id, user_id, username, action, entity, entity_id, ids, detail, prev, ring.active, seal)],
        )
        head = hmac.new(key, f"head|{seq}|{seal}|{ring.active}".encode(), hashlib.sha256).hexdigest()
        cur.execute(
            f"UPDATE audit_head SET last_seq = {mark}, last_hash = {mark}, mac = {mark}, key_id = {mark} WHERE id = 1",
            (seq, seal, head, ring.active),
        )

    import gc

    gc.disable()  # as the run does: no cyclic collection walking the rows held
    c0 = time.process_time()
    t0 = time.perf_counter()
    cur.execute(f"SELECT payer_key, code, amount_cents FROM fee WHERE org_id = {mark} AND modifier = ''", (org_id,))
    fees = {(k, c): a for k, c, a in cur.fetchall()}
    cur.execute("SELECT patient_id, id, payer_id FROM coverage WHERE priority = 'primary' AND active ORDER BY id")
    covs: dict[int, tuple] = {}
    for pid, cid, payer in cur.fetchall():
        covs.setdefault(pid, (cid, payer))
    cur.execute("SELECT id, patient_id, location_id FROM encounter WHERE status = 'signed' ORDER BY id")
    encounters = cur.fetchall()
    cur.execute(
        "SELECT l.encounter_id, l.seq, l.code, l.modifiers, l.units, l.pointers, l.service_date FROM encounter_line l"
        " JOIN encounter e ON e.id = l.encounter_id WHERE e.status = 'signed' ORDER BY l.encounter_id, l.seq"
    )
    enc_lines: dict[int, list] = {}
    for row in cur.fetchall():
        enc_lines.setdefault(row[0], []).append(row[1:])
    read_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    claims = failed = total = 0
    groups: set[tuple[int, int]] = set()
    cur.execute(
        f"INSERT INTO billing_run (org_id, started_at, status, dry_run, encounters, claims, failed, "
        f"total_cents, user_id) VALUES ({mark}, {mark}, 'running', {'false' if pg else '0'}, 0, 0, 0, 0, {mark})"
        f"{' RETURNING id' if pg else ''}",
        (org_id, stamp, user_id),
    )
    run_id = cur.fetchone()[0] if pg else cur.lastrowid
    note = f"billing run {run_id}"
    for start in range(0, len(encounters), chunk):
        part = encounters[start : start + chunk]
        begin()
        cur.execute(f"UPDATE counter SET value = value + {mark} WHERE name = 'claim_control'", (len(part),))
        claim_id, line_id = next_id("claim"), next_id("claim_line")
        claim_rows, line_rows, ledger_rows, event_rows, billed, worklist = [], [], [], [], [], []
        for eid, pid, loc in part:
            cov = covs.get(pid)
            if cov is None:
                failed += 1
                worklist.append((org_id, eid, "PAYER-ID", "error", "coverage", "no active insurance coverage", stamp))
                continue
            cov_id, payer = cov
            claim_total = 0
            for seq, code, mods, units, ptrs, dos in enc_lines.get(eid, ()):
                charge = fees.get((payer, code)) or fees[(0, code)]
                charge *= units
                claim_total += charge
                line_rows.append((line_id, claim_id, seq, code, mods, units, ptrs, charge, dos))
                ledger_rows.append(
                    (
                        org_id,
                        "charge",
                        charge,
                        "insurance",
                        pid,
                        eid,
                        claim_id,
                        line_id,
                        payer,
                        stamp,
                        dos,
                        note,
                        user_id,
                    )
                )
                line_id += 1
            claim_rows.append(
                (
                    claim_id,
                    org_id,
                    eid,
                    pid,
                    payer,
                    cov_id,
                    f"B{claim_id:09d}",
                    "1",
                    "ready",
                    claim_total,
                    run_id,
                    stamp,
                    stamp,
                )
            )
            event_rows.append((claim_id, stamp, "ready", note, user_id))
            billed.append((stamp, stamp, eid))
            groups.add((payer, loc))
            total += claim_total
            claim_id += 1
        claims += len(claim_rows)
        insert(
            "claim",
            "id, org_id, encounter_id, patient_id, payer_id, coverage_id, control_number, frequency, "
            "status, total_cents, billing_run_id, created_at, updated_at",
            claim_rows,
        )
        insert(
            "claim_line", "id, claim_id, seq, code, modifiers, units, pointers, charge_cents, service_date", line_rows
        )
        insert(
            "ledger_entry",
            "org_id, kind, amount_cents, responsibility, patient_id, encounter_id, claim_id, "
            "claim_line_id, payer_id, posted_at, effective_date, batch, created_by",
            ledger_rows,
        )
        insert("claim_event", "claim_id, at, status, note, user_id", event_rows)
        insert("worklist_item", "org_id, encounter_id, rule_id, severity, field, message, created_at", worklist)
        cur.executemany(
            f"UPDATE encounter SET status = 'billed', billed_at = {mark}, updated_at = {mark}, version = version + 1"
            f" WHERE id = {mark}",
            billed,
        )
        audit("bill", "encounter", None, [r[3] for r in claim_rows] + [p for _, p, _ in part], note)
        cur.execute("COMMIT")
    files = []
    for payer, loc in sorted(groups):
        begin()
        cur.execute("UPDATE counter SET value = value + 1 WHERE name IN ('x12_isa', 'x12_gs')")
        fid = next_id("x12_file")
        insert(
            "x12_file",
            "id, org_id, run_id, payer_id, kind, filename, directory, isa_control, gs_control, claims, "
            "total_cents, status, created_at",
            [(fid, org_id, run_id, payer, "837P", f"bound-{fid}.x12", str(out), fid, fid, 0, 0, "pending", stamp)],
        )
        cur.execute(
            f"UPDATE claim SET x12_file_id = {mark}, updated_at = {mark} WHERE billing_run_id = {mark}"
            f" AND payer_id = {mark} AND x12_file_id IS NULL"
            f" AND encounter_id IN (SELECT id FROM encounter WHERE location_id = {mark})",
            (fid, stamp, run_id, payer, loc),
        )
        cur.execute("COMMIT")
        files.append(fid)
    write_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    cur.execute(
        "SELECT c.id, c.control_number, c.total_cents, c.encounter_id, f.id, e.service_date,"
        " e.place_of_service,"
        " p.first_name, p.last_name, p.dob, p.sex_at_birth, p.address_line1, p.city, p.state, p.postal_code,"
        " v.member_id_enc, v.relationship, v.group_number, v.subscriber_first_name, v.subscriber_last_name,"
        " v.subscriber_dob, pr.last_name, pr.first_name, pr.npi, pr.taxonomy, y.name, y.payer_id"
        " FROM claim c JOIN x12_file f ON f.id = c.x12_file_id JOIN encounter e ON e.id = c.encounter_id"
        " JOIN patient p ON p.id = c.patient_id JOIN coverage v ON v.id = c.coverage_id"
        " JOIN provider pr ON pr.id = e.provider_id JOIN payer y ON y.id = c.payer_id"
        f" WHERE c.billing_run_id = {mark} ORDER BY f.id, c.id",
        (run_id,),
    )
    claim_rows = cur.fetchall()
    lines: dict[int, list] = {}
    cur.execute(
        "SELECT l.claim_id, l.code, l.modifiers, l.units, l.pointers, l.charge_cents, l.service_date FROM claim_line l"
        f" JOIN claim c ON c.id = l.claim_id WHERE c.billing_run_id = {mark} ORDER BY l.claim_id, l.seq",
        (run_id,),
    )
    for r in cur.fetchall():
        lines.setdefault(r[0], []).append(tuple(r[1:]))
    dx: dict[int, list] = {}
    cur.execute("SELECT encounter_id, code FROM encounter_diagnosis ORDER BY encounter_id, seq")
    for r in cur.fetchall():
        dx.setdefault(r[0], []).append(r[1])
    import unicodedata

    def fold(v):  # ASCII as the writer sends it (the tuples are ready to format)
        if type(v) is not str or v.isascii():
            return v
        return unicodedata.normalize("NFKD", v).encode("ascii", "ignore").decode("ascii")

    members = {}
    rows = []
    for r in claim_rows:
        enc = r[15]
        if enc not in members:
            members[enc] = crypto.decrypt(enc, "member_id")
        rows.append(
            (*map(fold, r[:15]), members[enc], *map(fold, r[16:]), tuple(lines.get(r[0], ())), tuple(dx.get(r[3], ())))
        )
    del claim_rows, lines, dx
    reread_s = time.perf_counter() - t0

    def d8(d):
        return d if isinstance(d, str) and len(d) == 8 else str(d).replace("-", "")

    def amount(c):
        d, m = divmod(c, 100)
        return str(d) if not m else f"{d}.{m:02d}".rstrip("0")

    t0 = time.perf_counter()
    n = 0
    size = 0
    fh = None
    current, seg = None, 0

    def close_file(fid: int, seg: int, count: int) -> None:
        nonlocal size
        fh.write(f"SE*{seg}*0001~\nGE*1*{fid}~\nIEA*1*{fid:09d}~\n")
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        final = out / f"bound-{fid}.x12"
        os.replace(out / f".bound-{fid}.x12.tmp", final)
        size += final.stat().st_size
        begin()
        cur.execute(f"UPDATE x12_file SET status = 'written', claims = {mark} WHERE id = {mark}", (count, fid))
        audit("export", "x12_file", str(fid), None, f"bound-{fid}.x12: {count} claims")
        cur.execute("COMMIT")

    in_file = 0
    for (
        _cid,
        ctl,
        total_,
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
                close_file(current, seg, in_file)
            current, hl, seg, in_file = fid, 1, 10, 0
            fh = open(out / f".bound-{fid}.x12.tmp", "w", encoding="ascii", newline="")  # noqa: SIM115
            w = fh.write
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
            f"CLM*{ctl}*{amount(total_)}***{pos}:B:1*Y*A*Y*Y~\nHI*ABK:{dxs[0]}"
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
        in_file += 1
    if current is not None:
        close_file(current, seg, in_file)
    format_s = time.perf_counter() - t0
    begin()
    cur.execute(
        f"UPDATE billing_run SET status = 'done', claims = {mark}, failed = {mark} WHERE id = {mark}",
        (claims, failed, run_id),
    )
    audit("run", "billing_run", str(run_id), None, f"done: {claims} claims")
    cur.execute("COMMIT")
    conn.close()
    for f in out.glob("bound-*.x12"):
        f.unlink()
    wall = read_s + write_s + reread_s + format_s
    cpu = time.process_time() - c0
    gc.enable()
    return {
        "claims": n,
        "written": claims,
        "failed": failed,
        "files": len(files),
        "total_cents": total,
        "read": read_s,
        "writes": write_s,
        "reread": reread_s,
        "format": format_s,
        "wall": wall,
        "cpu": cpu,
        "bytes": size,
    }


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
        restore(snapshot, home, url, snapshot_db, db, args.postgres)  # the bound starts from the same database
        (tmp / "bound").mkdir()
        bound = raw_bound(home, url, tmp / "bound")
        bound_rate = bound["claims"] / bound["wall"]
        growth = r["rss_peak"] - r["rss_before"]
        res = {"n": n, "run": r, "bound": bound, "rate": rate, "scaled": rate * factor, "bound_rate": bound_rate}
        print(
            f"    billing run   {r['wall']:6.1f} s  {rate:7,.0f} claims/s here, {rate * factor:7,.0f} scaled "
            f"(CPU {r['cpu']:.1f} s in the process: {r['claims'] / r['cpu']:,.0f}/s); {r['claims']:,} claims, "
            f"{r['failed']:,} to the work list, {r['files']} files, {r['bytes'] / 1e6:.1f} MB",
            flush=True,
        )
        print(
            f"    peak RSS      {r['rss_peak']:6.0f} MB  (RSS after imports and connecting {r['rss_before']:.0f} MB: "
            f"+{growth:.0f} MB; after the first chunk {r['rss_first_chunk']:.0f} MB, "
            f"after all claims {r['rss_after_claims']:.0f} MB)",
            flush=True,
        )
        print(
            f"    raw bound     {bound['wall']:6.2f} s  {bound_rate:7,.0f} claims/s: read {bound['read']:.2f} s, "
            f"claims, lines, charges, history, encounters billed, work list, audit and file records written "
            f"{bound['writes']:.2f} s, read back {bound['reread']:.2f} s, {bound['files']} files formatted, fsynced "
            f"and renamed {bound['format']:.2f} s ({bound['bytes'] / 1e6:.1f} MB; CPU {bound['cpu']:.1f} s)   "
            f"run : bound = {bound_rate / rate:.2f} (goal <= {MAX_RATIO})",
            flush=True,
        )
        if (bound["written"], bound["failed"]) != (r["claims"], r["failed"]):
            print(
                f"    NOTE: the bound wrote {bound['written']:,} claims and {bound['failed']:,} work-list items, "
                f"the run {r['claims']:,} and {r['failed']:,}",
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
            f"  {'encounters':>10} {'claims':>8} {'s':>6} {'claims/s':>9} {'scaled':>8} {'bound/s':>9} {'ratio':>6} "
            f"{'MB out':>7} {'RSS MB':>7} {'+MB':>5} {'tracemalloc MB':>14}  target >= {TARGET_CLAIMS_S:,.0f}/s "
            f"scaled, ratio <= {MAX_RATIO}, +MB <= {MAX_GROWTH_MB:.0f}"
        )
        for r in results:
            run_ = r["run"]
            scaled = r["rate"] * factor
            tm = f"{r['tracemalloc']:14.1f}" if "tracemalloc" in r else f"{'-':>14}"
            ratio = r["bound_rate"] / r["rate"]
            growth = run_["rss_peak"] - run_["rss_before"]
            verdict = [
                ("claims/s", scaled >= TARGET_CLAIMS_S),
                ("ratio", ratio <= MAX_RATIO),
                ("memory", growth <= MAX_GROWTH_MB),
            ]
            misses = [name for name, ok in verdict if not ok]
            print(
                f"  {r['n']:>10,} {run_['claims']:>8,} {run_['wall']:6.1f} {r['rate']:9,.0f} {scaled:8,.0f} "
                f"{r['bound_rate']:9,.0f} {ratio:6.2f} {run_['bytes'] / 1e6:7.1f} "
                f"{run_['rss_peak']:7.0f} {growth:5.0f} {tm}  "
                + ("PASS" if not misses else f"MISS ({', '.join(misses)})")
            )
        print(
            f"  (s: billing.run end to end in a fresh process; ratio: the raw bound's claims/s over the run's; "
            f"RSS: peak of that process, +MB over its size before the run; load average {os.getloadavg()[0]:.1f} "
            f"at the end)",
            flush=True,
        )
        print(flush=True)


if __name__ == "__main__":
    main()
