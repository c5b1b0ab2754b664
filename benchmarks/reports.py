"""Report exports on a large synthetic schedule: CSV of 1,000,000 rows and XLSX of 100,000.

Builds a practice in a scratch HPMS_HOME (`hpms init`, 50 providers and one appointment type
through the services, --patients synthetic patients through the CSV import), then writes
--appointments rows (default 1,000,000) with `hpms.db.bulk_insert`. To keep the build quick on
SQLite the scratch database's overlap triggers are dropped first and the rows are laid on a
grid where no provider or patient is booked twice anyway (the scheduling benchmark measures the
guarded load).

Then, on the `appointments-list` report (one row per appointment joined with its location,
provider, patient and type, local day and time):
  (a) CSV export of every row through `hpms.services.reports.run` + `export.write` (the
      path `hpms reports export` takes), against a bare loop: the same joined SELECT on a raw
      DBAPI cursor (fetchmany) written with csv.writer, with no time-zone conversion or
      formatting. Ratio report / bare; target within 2x.
  (b) peak Python memory of the CSV export (tracemalloc, a second run; target < 150 MB) and
      the process's peak RSS;
  (c) XLSX export of the first --xlsx-rows rows' days (default 100,000 rows): seconds, rows/s,
      peak memory.

    python benchmarks/reports.py [--appointments N] [--patients N] [--xlsx-rows N] [--postgres URL] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scheduling import FIRST, PROVIDER_LAST, import_patients, postgres_database  # noqa: E402

CSV_RATIO_TARGET = 2.0
MEMORY_TARGET_MB = 150.0
PROVIDERS = 50
SLOTS_PER_DAY = 20  # 30-minute visits from 08:00 local
FIRST_DAY = dt.date(2023, 1, 2)
STATUSES = (("completed", 0.80), ("no_show", 0.05), ("cancelled", 0.10), ("booked", 0.05))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(settings, args, rng: random.Random, home: Path) -> tuple[dt.date, dt.date]:
    """The practice and its appointments; returns the first and last day with appointments."""
    import sqlalchemy as sa

    from hpms.db import bulk_insert, get_engine, session_scope
    from hpms.models import Appointment
    from hpms.services import admin, localtime as lt, resources
    from hpms.services.auth import load_actor, os_login
    from hpms.services.context import open_context

    admin.init(settings, practice="Reports Benchmark Clinic", tz="America/New_York", location="Main")
    with open_context(settings) as ctx:
        type_id = resources.add_type(ctx, name="Office visit", duration_min=30).id
        providers = [resources.add_provider(ctx, locations=["Main"], first_name=rng.choice(FIRST),
                                            last_name=PROVIDER_LAST[i % len(PROVIDER_LAST)]).id
                     for i in range(PROVIDERS)]
        location_id = ctx.session.execute(sa.text("SELECT id FROM location")).scalar_one()
    patients = [pid for pid, _ in import_patients(settings, args.patients, rng, home)]
    engine = get_engine(settings)
    with session_scope(engine) as session:
        actor = load_actor(session, os_login())
        if settings.is_sqlite:
            for (name,) in session.execute(sa.text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'appointment'")).all():
                session.execute(sa.text(f'DROP TRIGGER "{name}"'))
        else:
            for (name,) in session.execute(sa.text(
                    "SELECT conname FROM pg_constraint WHERE conrelid = 'appointment'::regclass AND contype = 'x'")):
                session.execute(sa.text(f'ALTER TABLE appointment DROP CONSTRAINT "{name}"'))
    table = Appointment.__table__
    weights = [w for _, w in STATUSES]
    names = [s for s, _ in STATUSES]
    n, day, chunk = 0, FIRST_DAY, []
    step = dt.timedelta(minutes=30)
    n_pat = len(patients)
    last = day
    while n < args.appointments:
        if day.weekday() < 5:
            first = lt.wall_to_utc(dt.datetime.combine(day, dt.time(8)), "America/New_York")
            for k in range(SLOTS_PER_DAY):
                start = first + k * step
                statuses = rng.choices(names, weights, k=PROVIDERS)
                for pi, pid in enumerate(providers):
                    if n >= args.appointments:
                        break
                    chunk.append({"org_id": actor.org_id, "patient_id": patients[(k * PROVIDERS + pi) % n_pat],
                                  "provider_id": pid, "location_id": location_id, "room_id": None,
                                  "type_id": type_id, "start_utc": start, "end_utc": start + step,
                                  "block_end_utc": start + step, "status": statuses[pi], "override": False,
                                  "late_cancel": False, "booked_by": actor.user_id, "booked_at": first,
                                  "version": 1, "updated_at": first})
                    n += 1
            last = day
            if len(chunk) >= 50_000:
                with session_scope(engine) as session:
                    bulk_insert(session, table, chunk)
                chunk = []
        day += dt.timedelta(days=1)
    if chunk:
        with session_scope(engine) as session:
            bulk_insert(session, table, chunk)
    if not settings.is_sqlite:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return FIRST_DAY, last


def export(settings, fmt: str, path: Path, start: dt.date, end: dt.date) -> int:
    from hpms.services import reports
    from hpms.services.context import open_context
    from hpms.services.reports.export import write

    with open_context(settings) as ctx:
        _, params, rows = reports.run(ctx, "appointments-list", start=start.isoformat(), end=end.isoformat())
        return write(path, fmt, reports.get("appointments-list"), params, rows, sys.stdout)


BARE_SQL = """
SELECT a.start_utc, l.name, pr.last_name, pr.first_name, p.last_name, p.first_name, p.mrn, t.name, a.status
FROM appointment a JOIN location l ON l.id = a.location_id JOIN provider pr ON pr.id = a.provider_id
JOIN patient p ON p.id = a.patient_id JOIN appointment_type t ON t.id = a.type_id
WHERE a.start_utc >= {lo} AND a.start_utc < {hi} ORDER BY a.start_utc, a.id
"""


def bare(settings, path: Path, start: dt.date, end: dt.date) -> int:
    """The same rows on a raw DBAPI cursor written by csv.writer as they come."""
    from hpms.db import get_engine
    from hpms.services import localtime as lt

    lo, _ = lt.day_bounds_utc(start, "America/New_York")
    _, hi = lt.day_bounds_utc(end, "America/New_York")
    engine = get_engine(settings)
    raw = engine.raw_connection()
    try:
        if settings.is_sqlite:
            # hpms stores UTC datetimes on SQLite as ISO text
            from hpms.models import Appointment

            proc = Appointment.__table__.c.start_utc.type.bind_processor(engine.dialect)
            params = (proc(lo) if proc else lo, proc(hi) if proc else hi)
            sql = BARE_SQL.format(lo="?", hi="?")
            cur = raw.cursor()
        else:
            params = (lo, hi)
            sql = BARE_SQL.format(lo="%s", hi="%s")
            cur = raw.driver_connection.cursor(name="bare") if hasattr(raw, "driver_connection") else raw.cursor()
        cur.execute(sql, params)
        n = 0
        with open(path, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            while True:
                rows = cur.fetchmany(10_000)
                if not rows:
                    break
                w.writerows(rows)
                n += len(rows)
        cur.close()
    finally:
        raw.close()
    return n


def timed(fn, *a) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn(*a)
    return time.perf_counter() - t0, n


def traced(fn, *a) -> float:
    tracemalloc.start()
    try:
        fn(*a)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def run(args, backend: str, home: Path, database_url: str | None) -> None:
    for var in [k for k in os.environ if k.startswith("HPMS_")]:
        del os.environ[var]
    os.environ["HPMS_HOME"] = str(home)
    if database_url:
        os.environ["HPMS_DATABASE_URL"] = database_url
    from hpms.config import load_settings

    settings = load_settings()
    rng = random.Random(args.seed)
    print(f"report export benchmark (hpms) on {backend}: {args.appointments:,} appointments, {PROVIDERS} providers, "
          f"{args.patients:,} patients; python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    t0 = time.perf_counter()
    first, last = build(settings, args, rng, home)
    print(f"  build          {time.perf_counter() - t0:6.1f} s  ({first} to {last}, overlap guards dropped)", flush=True)
    out = home / "out"
    out.mkdir()
    rss0 = rss_mb()
    runs_report, runs_bare = [], []
    for _ in range(args.runs):
        runs_bare.append(timed(bare, settings, out / "bare.csv", first, last))
        runs_report.append(timed(export, settings, "csv", out / "report.csv", first, last))
    bare_s = min(s for s, _ in runs_bare)
    rep_s, n = min(runs_report)
    ratio = rep_s / bare_s
    print(f"  CSV report     {rep_s:6.1f} s  {n / rep_s:9,.0f} rows/s  ({n:,} rows, "
          f"{(out / 'report.csv').stat().st_size / 1e6:.0f} MB; best of {args.runs})")
    print(f"  bare csv       {bare_s:6.1f} s  {runs_bare[0][1] / bare_s:9,.0f} rows/s  (raw cursor + csv.writer)")
    print(f"  ratio          {ratio:6.2f}x   target <= {CSV_RATIO_TARGET:.0f}x   "
          f"{'PASS' if ratio <= CSV_RATIO_TARGET else 'MISS'}")
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(export, settings, "csv", out / "report.csv", first, last)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    peak = traced(export, settings, "csv", out / "report.csv", first, last)
    print(f"  CSV peak mem   {peak:6.1f} MB (tracemalloc)   target < {MEMORY_TARGET_MB:.0f} MB   "
          f"{'PASS' if peak < MEMORY_TARGET_MB else 'MISS'};  peak RSS {rss_mb():.0f} MB (before the exports "
          f"{rss0:.0f} MB)")
    # XLSX: the first days that hold --xlsx-rows rows
    days = -(-args.xlsx_rows // (PROVIDERS * SLOTS_PER_DAY))
    end = first
    counted = 0
    while counted < days:
        if end.weekday() < 5:
            counted += 1
        end += dt.timedelta(days=1)
    end -= dt.timedelta(days=1)
    xs, xn = timed(export, settings, "xlsx", out / "report.xlsx", first, end)
    xpeak = traced(export, settings, "xlsx", out / "report.xlsx", first, end)
    print(f"  XLSX report    {xs:6.1f} s  {xn / xs:9,.0f} rows/s  ({xn:,} rows, "
          f"{(out / 'report.xlsx').stat().st_size / 1e6:.1f} MB); peak mem {xpeak:.1f} MB (tracemalloc)")
    print(f"  (load average {os.getloadavg()[0]:.1f} at the end)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--appointments", type=int, default=1_000_000)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--xlsx-rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--postgres", metavar="URL", help="run on a fresh database on this PostgreSQL server")
    ap.add_argument("--keep", action="store_true", help="keep the scratch HPMS_HOME / database")
    ap.add_argument("--profile", action="store_true", help="profile one CSV export (cProfile) and print the top")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="hpms-bench-reports-"))
    try:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(postgres_database(args.postgres, args.keep)) \
                if args.postgres else None
            run(args, "postgresql" if url else "sqlite", home, url)
    finally:
        if args.keep:
            print(f"  kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
