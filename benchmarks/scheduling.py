"""The scheduling engine on a large synthetic practice: slot search, day sheet, booking.

Builds a practice in a scratch HPMS_HOME (`hpms init`, then 2 more locations, 50 providers,
appointment types, one exam room per provider, working hours Mon-Fri 08:00-17:00, a practice
holiday and a week of time off, all through the services), imports synthetic patients with
`hpms.services.people.patient_import.import_csv`, and writes N appointments (default 1,000,000) with
`hpms.db.bulk_insert` in chunks (DBAPI executemany on SQLite, COPY on PostgreSQL; the overlap
triggers / exclusion constraints check every row, so the load rate is printed too).

Every provider works a grid of 27 twenty-minute slots a day. The half year ahead is partly
booked (85% of slots in the next two weeks, 60% to a month, 40% to two months, 20% after), the
past ~95% (completed, no-show, cancelled) going back as far as N needs (about 2.8 years at
1,000,000). One provider is fully booked for the next 12 weeks: the hard case of the slot
search. Patients are spread so that no one has two visits at once.

Then, warm cache, median of --runs:
  (a) `appointments.find_slot` for one provider over the next 90 days, count=1 and count=5,
      for a normal and the fully booked provider (and a type that needs a room);
  (b) `appointments.list_appointments(day=..., location=...)`: the busiest day of one location;
  (c) `appointments.book` --bookings times, each in its own `open_context` transaction (like
      the CLI), and --batch bookings in one transaction; bookings/s. Interleaved with the first,
      the raw bound of a booking on the bare driver (BEGIN IMMEDIATE + the indexed overlap check
      + INSERT with the table's triggers / exclusion constraints + COMMIT): one booking is judged
      at <= 4x of it (and <= 4.5 ms on PostgreSQL); the statements of one booking are printed.
Times are also printed scaled to the reference machine of ../shared/PERFORMANCE.md by the
`import typer` yardstick of benchmarks/patients.py.

Targets (SQLite, 50 providers, 1,000,000 appointments): find-slot < 30 ms; day sheet
< 50 ms; booking >= 500 bookings/s. PostgreSQL is measured against the same figures.

    python benchmarks/scheduling.py [--backend sqlite|postgresql|both] [--appointments N]
                                    [--postgres URL] [--keep] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import datetime as dt
import io
import os
import platform
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from patients import REFERENCE_IMPORT_TYPER_MS, machine_factor, percentile  # noqa: E402

FIND_SLOT_TARGET_MS = 30.0
DAY_SHEET_TARGET_MS = 50.0
BOOKING_TARGET_PER_S = 500.0
BOOK_RAW_RATIO_TARGET = 4.0  # one booking in its own transaction vs the bare-driver bound of the same run
BOOK_PG_TARGET_MS = 4.5  # one booking in its own transaction on PostgreSQL, median

SLOT_MIN = 20  # the grid every provider works on
SLOTS_PER_DAY = 27  # 08:00-17:00
DAY_START = dt.time(8, 0)
FUTURE_DAYS = 182
HARD_DAYS = 84  # the fully booked provider: the next 12 weeks
PAST_FILL = 0.95
LOCATIONS = [("Main", "America/New_York", 20), ("North", "America/New_York", 15), ("Lakeside", "America/Chicago", 15)]
TYPES = [  # name, minutes, buffer, needs_room, share of the synthetic rows
    ("Follow-up", 15, 0, False, 0.40),
    ("Office visit", 20, 0, False, 0.45),
    ("Procedure", 20, 0, True, 0.15),
]
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
PROVIDER_LAST = [
    "Abbott",
    "Baker",
    "Chen",
    "Diaz",
    "Evans",
    "Foster",
    "Gupta",
    "Hughes",
    "Ito",
    "Jones",
    "Kaur",
    "Lopez",
    "Meyer",
    "Nakamura",
    "Owens",
    "Park",
    "Quinn",
    "Reyes",
    "Sato",
    "Torres",
    "Usman",
    "Vargas",
    "Wong",
    "Xu",
    "Young",
    "Zhang",
    "Adler",
    "Bishop",
    "Cruz",
    "Dalton",
    "Ellis",
    "Fischer",
    "Grant",
    "Hale",
    "Ibarra",
    "Jensen",
    "Keller",
    "Lund",
    "Moreau",
    "Nolan",
    "Ortiz",
    "Price",
    "Ramos",
    "Stone",
    "Tate",
    "Ueda",
    "Vance",
    "Walsh",
    "Yates",
    "Zimmer",
]


# ---- scratch databases ----------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database(url: str, keep: bool):
    """A fresh hpms_bench_* database next to the one in `url`; dropped on exit unless `keep`."""
    import sqlalchemy as sa

    base = sa.make_url(url)
    name = f"hpms_bench_sched_{os.getpid()}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        from hpms.db import dispose_engines

        dispose_engines()
        if keep:
            print(f"  kept PostgreSQL database {name}")
        else:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


# ---- the synthetic practice -----------------------------------------------------------------


def setup_practice(settings, args, rng: random.Random, home: Path) -> dict:
    """Locations, providers, types and rooms, through the services."""
    from hpms.services import lookups
    from hpms.services.platform import admin, org
    from hpms.services.platform.context import open_context
    from hpms.services.scheduling import resources

    admin.init(settings, practice="Scheduling Benchmark Clinic", tz="America/New_York", location="Main")
    info: dict = {"providers": [], "types": {}, "rooms": {}}
    with open_context(settings) as ctx:
        locs = {"Main": lookups.find_location(ctx, "Main")}
        for name, tz, _ in LOCATIONS[1:]:
            out = org.add_location(ctx, name=name, tz=tz)
            locs[name] = lookups.find_location(ctx, out.id)
        info["locations"] = {name: (loc.id, loc.tz) for name, loc in locs.items()}
        for name, minutes, buffer, needs_room, _ in TYPES:
            t = resources.add_type(ctx, name=name, duration_min=minutes, buffer_min=buffer, needs_room=needs_room)
            info["types"][name] = t.id
        n = 0
        for loc_name, tz, count in LOCATIONS:
            count = round(count * args.providers / 50)
            for i in range(count):
                p = resources.add_provider(
                    ctx,
                    locations=[loc_name],
                    first_name=rng.choice(FIRST),
                    last_name=f"{PROVIDER_LAST[n % len(PROVIDER_LAST)]}{n // 50 or ''}",
                    credentials="MD" if n % 3 else "NP",
                )
                room = resources.add_room(ctx, location=loc_name, name=f"Exam {i + 1:02d}")
                info["providers"].append((p.id, locs[loc_name].id, tz, room.id))
                n += 1
    return info


def add_hours_and_time_off(
    settings, info: dict, first_day: dt.date, holiday: dt.date, off_provider: int, off_days: tuple[dt.date, dt.date]
) -> None:
    from hpms.services.platform.context import open_context
    from hpms.services.scheduling import availability

    with open_context(settings) as ctx:
        for pid, lid, _, _ in info["providers"]:
            availability.set_hours(
                ctx, pid, location=lid, days="MO-FR", start="08:00", end="17:00", effective_from=first_day
            )
        availability.add_time_off(ctx, start=holiday, reason="practice holiday")
        availability.add_time_off(ctx, provider=off_provider, start=off_days[0], end=off_days[1], reason="vacation")


def import_patients(settings, count: int, rng: random.Random, home: Path) -> list[tuple[int, str]]:
    import sqlalchemy as sa

    from hpms.services.people import patient_import
    from hpms.services.platform.context import open_context

    path = home / "patients.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["first_name", "last_name", "dob", "sex_at_birth", "phone"])
        for _i in range(count):
            dob = dt.date(1935, 1, 1) + dt.timedelta(days=rng.randrange(32000))
            w.writerow(
                [
                    rng.choice(FIRST),
                    rng.choice(LAST),
                    dob.isoformat(),
                    rng.choice(["female", "male"]),
                    f"{rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}",
                ]
            )
    with open_context(settings) as ctx:
        patient_import.import_csv(ctx, path)
        return [tuple(r) for r in ctx.session.execute(sa.text("SELECT id, mrn FROM patient ORDER BY id"))]


def weekdays(d0: dt.date, d1: dt.date):
    d = d0
    while d <= d1:
        if d.weekday() < 5:
            yield d
        d += dt.timedelta(days=1)


def future_fill(days_ahead: int) -> float:
    if days_ahead < 14:
        return 0.85
    if days_ahead < 30:
        return 0.60
    if days_ahead < 60:
        return 0.40
    return 0.20


class Generator:
    """Appointment rows, day by day: (provider, slot) cells filled at random, patients chosen so
    that at one UTC slot the providers all see different patients (no patient overlap)."""

    def __init__(
        self,
        info: dict,
        patient_ids: list[int],
        org_id: int,
        user_id: int,
        now: dt.datetime,
        rng: random.Random,
        hard_provider: int,
        skip: set[tuple[int | None, dt.date]],
    ):
        from hpms.services.platform import localtime as lt

        self.lt = lt
        self.providers = info["providers"]
        self.types, acc = [], 0.0  # (id, minutes, buffer, needs_room, cumulative share)
        for name, minutes, buffer, needs_room, share in TYPES:
            acc += share
            self.types.append((info["types"][name], minutes, buffer, needs_room, acc))
        self.types[-1] = self.types[-1][:4] + (1.01,)
        self.patients = patient_ids
        self.org_id, self.user_id, self.now, self.rng = org_id, user_id, now, rng
        self.hard = hard_provider
        self.skip = skip
        self.today = now.astimezone(lt.zone("America/New_York")).date()
        self.free: list[tuple[int, int, dt.datetime]] = []  # (provider, location, start) open for booking
        self._day0: dict[tuple[str, dt.date], dt.datetime] = {}

    def _first_slot(self, tz: str, day: dt.date) -> dt.datetime:
        key = (tz, day)
        if key not in self._day0:
            self._day0[key] = self.lt.wall_to_utc(dt.datetime.combine(day, DAY_START), tz)
        return self._day0[key]

    def day_rows(self, day: dt.date, limit: int | None = None) -> list[dict]:
        rng, rows = self.rng, []
        ahead = (day - self.today).days
        step = dt.timedelta(minutes=SLOT_MIN)
        n_pat = len(self.patients)
        n_prov = len(self.providers)
        booked_at = dt.datetime.combine(day - dt.timedelta(days=14), dt.time(), tzinfo=dt.UTC)
        if (None, day) in self.skip:
            return rows
        for pi, (pid, lid, tz, room) in enumerate(self.providers):
            if (pid, day) in self.skip:
                continue
            first = self._first_slot(tz, day)
            fill = (
                1.0 if pid == self.hard and 0 <= ahead < HARD_DAYS else (PAST_FILL if ahead < 0 else future_fill(ahead))
            )
            for k in range(SLOTS_PER_DAY):
                start = first + k * step
                r = rng.random()
                if r >= fill:
                    if ahead >= 21 and pid != self.hard:
                        self.free.append((pid, lid, start))
                    continue
                r /= fill  # uniform again, for the type draw
                type_id, minutes, buffer, needs_room = next(t[:4] for t in self.types if r < t[4])
                end = start + dt.timedelta(minutes=minutes)
                slot = int(start.timestamp()) // (SLOT_MIN * 60)
                row = {
                    "org_id": self.org_id,
                    "patient_id": self.patients[(slot * n_prov + pi) % n_pat],
                    "provider_id": pid,
                    "location_id": lid,
                    "room_id": room if needs_room else None,
                    "type_id": type_id,
                    "start_utc": start,
                    "end_utc": end,
                    "block_end_utc": end + dt.timedelta(minutes=buffer) if buffer else end,
                    "status": "booked",
                    "override": False,
                    "late_cancel": False,
                    "booked_by": self.user_id,
                    "booked_at": booked_at,
                    "confirmed_at": None,
                    "arrived_at": None,
                    "completed_at": None,
                    "no_show_at": None,
                    "cancelled_at": None,
                    "version": 1,
                    "updated_at": booked_at,
                }
                s = rng.random()
                if start < self.now:
                    if s < 0.85:
                        row["status"], row["arrived_at"], row["completed_at"] = "completed", start, end
                    elif s < 0.90:
                        row["status"], row["no_show_at"] = "no_show", end
                    else:
                        row["status"], row["cancelled_at"] = "cancelled", booked_at
                elif s < 0.05 and pid != self.hard:
                    row["status"], row["cancelled_at"] = "cancelled", booked_at
                elif ahead <= 3 and s < 0.6:
                    row["status"], row["confirmed_at"] = "confirmed", booked_at
                rows.append(row)
                if limit is not None and len(rows) >= limit:
                    return rows
        return rows


def load_appointments(engine, gen: Generator, target: int, chunk: int = 20_000) -> tuple[int, float, dt.date]:
    """Future rows first in memory, then as many past weekdays as `target` needs; bulk-inserted
    in chunks, each in its own transaction. Returns (rows, seconds, first day)."""
    from hpms.db import bulk_insert, session_scope
    from hpms.models import Appointment

    table = Appointment.__table__
    future: list[dict] = []
    for day in weekdays(gen.today, gen.today + dt.timedelta(days=FUTURE_DAYS)):
        future.extend(gen.day_rows(day))
    # the half year ahead is always written whole (a smaller N shortens the history only)
    per_day = len(gen.providers) * SLOTS_PER_DAY * PAST_FILL
    past_needed = target - len(future)
    n_days = int(past_needed / per_day * 1.02) + 1
    first = gen.today - dt.timedelta(days=1)
    count = 0
    while count < n_days:
        first -= dt.timedelta(days=1)
        if first.weekday() < 5:
            count += 1
    written = 0
    t0 = time.perf_counter()
    pending: list[dict] = []
    last_report = t0

    def flush(rows):
        nonlocal written, last_report
        with session_scope(engine) as session:
            bulk_insert(session, table, rows)
        written += len(rows)
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            print(f"    ... {written:,} rows in {last_report - t0:.0f} s", flush=True)

    if past_needed > 0:
        for day in weekdays(first, gen.today - dt.timedelta(days=1)):
            pending.extend(gen.day_rows(day, limit=past_needed - written - len(pending)))
            if written + len(pending) >= past_needed:
                break
            if len(pending) >= chunk:
                flush(pending)
                pending = []
        if pending:
            flush(pending)
    for i in range(0, len(future), chunk):
        flush(future[i : i + chunk])
    return written, time.perf_counter() - t0, first


@dataclass
class Clinic:
    """The practice `build_clinic` made: its ids, the patients kept free of visits (`reserved`,
    (id, MRN) pairs) and the generator whose `free` lists the open slots >= 3 weeks ahead."""

    info: dict
    patients: list[tuple[int, str]]
    reserved: list[tuple[int, str]]
    gen: Generator
    actor: Any
    engine: Any
    today: dt.date
    hard: int
    normal: int
    rows: int
    load_s: float


def build_clinic(settings, args, rng: random.Random, home: Path, backend: str, reserve: int) -> Clinic:
    """The practice of this benchmark (`args.providers`, `args.patients`, `args.appointments`), its
    progress printed; the first `reserve` patients (at most a quarter) get no visits. Returns the
    Clinic."""
    from hpms.db import get_engine, session_scope
    from hpms.services.platform import localtime as lt
    from hpms.services.platform.auth import load_actor, os_login

    t0 = time.perf_counter()
    info = setup_practice(settings, args, rng, home)
    patients = import_patients(settings, args.patients, rng, home)
    engine = get_engine(settings)
    now = dt.datetime.now(dt.UTC)
    today = lt.local_now(now, "America/New_York").date()
    n_reserved = min(len(patients) // 4, reserve)
    reserved, history_patients = patients[:n_reserved], [pid for pid, _ in patients[n_reserved:]]
    hard = info["providers"][0][0]
    normal = info["providers"][5][0]
    off_provider = info["providers"][7][0]
    holiday = next(d for d in weekdays(today + dt.timedelta(days=45), today + dt.timedelta(days=60)))
    off_start = next(
        d for d in weekdays(today + dt.timedelta(days=30), today + dt.timedelta(days=40)) if d.weekday() == 0
    )
    off_days = (off_start, off_start + dt.timedelta(days=4))
    skip = {(None, holiday)} | {(off_provider, off_start + dt.timedelta(days=i)) for i in range(5)}
    with session_scope(engine) as session:
        actor = load_actor(session, os_login())
    gen = Generator(info, history_patients, actor.org_id, actor.user_id, now, rng, hard, skip)
    setup_s = time.perf_counter() - t0
    print(
        f"  setup          {setup_s:6.1f} s  (3 locations, {len(info['providers'])} providers, "
        f"{len(patients):,} patients through the services)",
        flush=True,
    )

    rows, load_s, first_day = load_appointments(engine, gen, args.appointments)
    add_hours_and_time_off(settings, info, first_day, holiday, off_provider, off_days)
    print(
        f"  appointments   {load_s:6.1f} s  {rows / load_s:9,.0f} rows/s  ({rows:,} rows from {first_day} to "
        f"{today + dt.timedelta(days=FUTURE_DAYS)}, bulk_insert in 20,000-row transactions, the overlap "
        f"{'exclusion constraints' if backend == 'postgresql' else 'triggers'} checking each row)",
        flush=True,
    )
    if backend == "postgresql":
        t0 = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE appointment")
        print(
            f"  VACUUM ANALYZE {time.perf_counter() - t0:6.1f} s  (what autovacuum would do after such a load)",
            flush=True,
        )
    db_size = (
        settings.sqlite_path.stat().st_size
        if settings.sqlite_path
        else engine.connect().exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    )
    print(f"  database size  {db_size / 1e6:6.0f} MB", flush=True)

    return Clinic(info, patients, reserved, gen, actor, engine, today, hard, normal, rows, load_s)


# ---- measuring ------------------------------------------------------------------------------


class StatementCounter:
    def __init__(self, engine):
        import sqlalchemy as sa

        self.n = 0
        self.on = False
        self.statements: list[str] = []
        if engine.dialect.name == "sqlite":
            # every statement the driver runs (also those run on its cursor directly, and COMMIT),
            # the statements of triggers left out
            sa.event.listen(engine, "checkout", self._trace)
        else:
            # every statement sent on a cursor of the driver (SQLAlchemy's and those the prepared
            # hot path runs on the cursor directly); psycopg opens and commits without a statement
            sa.event.listen(engine, "checkout", self._wrap)

    def _wrap(self, dbapi_conn, record, proxy):
        import psycopg

        counter = self

        class CountingCursor(psycopg.Cursor):
            def execute(self, query, params=None, **kw):
                counter._seen(str(query))
                return super().execute(query, params, **kw)

            def executemany(self, query, params_seq, **kw):
                counter._seen(str(query))
                return super().executemany(query, params_seq, **kw)

        dbapi_conn.cursor_factory = CountingCursor

    def _seen(self, statement: str) -> None:
        if self.on:
            self.n += 1
            self.statements.append(" ".join(statement.split()))

    def _trace(self, dbapi_conn, record, proxy):
        dbapi_conn.set_trace_callback(self._traced)

    def _traced(self, statement: str) -> None:
        if not self.on or statement.lstrip().startswith("--"):
            return
        text = " ".join(statement.split())
        if self.statements and self.statements[-1] == text:
            return  # the steps of a trigger are traced with the text of the statement that fired it
        self.n += 1
        self.statements.append(text)

    def count(self, fn) -> int:
        self.n, self.on, self.statements = 0, True, []
        try:
            fn()
        finally:
            self.on = False
        return self.n


class RawBooker:
    """The lower bound of a booking: on the bare driver (sqlite3 / psycopg, no SQLAlchemy), one
    transaction of BEGIN (IMMEDIATE on SQLite) + the indexed overlap check (provider, room and
    patient arms, like the service's guard) + INSERT (the overlap triggers / exclusion constraints
    of the table firing) + COMMIT, on a connection kept open like a pooled one."""

    COLUMNS = (
        "org_id, patient_id, provider_id, location_id, room_id, type_id, start_utc, end_utc, block_end_utc,"
        " status, override, late_cancel, booked_by, booked_at, version, updated_at"
    )

    def __init__(self, backend: str, settings, database_url: str | None, org_id: int, user_id: int, type_id: int):
        from hpms.models.scheduling import BLOCKING_STATUSES

        self.backend, self.org_id, self.user_id, self.type_id = backend, org_id, user_id, type_id
        statuses = ", ".join(f"'{s}'" for s in BLOCKING_STATUSES)
        mark = "?" if backend == "sqlite" else "%s"
        self.check = (
            f"SELECT id, start_utc, end_utc FROM appointment WHERE status IN ({statuses})"
            f" AND start_utc >= {mark} AND start_utc < {mark}"
            f" AND ((provider_id = {mark} AND block_end_utc > {mark}) OR (room_id = {mark} AND block_end_utc > {mark})"
            f" OR (patient_id = {mark} AND end_utc > {mark} AND start_utc < {mark})) ORDER BY start_utc"
        )
        self.insert = f"INSERT INTO appointment ({self.COLUMNS}) VALUES ({', '.join([mark] * 16)})" + (
            " RETURNING id" if backend == "postgresql" else ""
        )
        if backend == "sqlite":
            import sqlite3

            self.conn = sqlite3.connect(settings.sqlite_path, isolation_level=None, timeout=30)
            for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000", "synchronous=NORMAL"):
                self.conn.execute(f"PRAGMA {pragma}")
            self.begin = "BEGIN IMMEDIATE"
        else:
            import psycopg
            import sqlalchemy as sa

            url = sa.make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
            self.conn = psycopg.connect(url, autocommit=True)
            self.begin = "BEGIN"

    def _t(self, t: dt.datetime):
        return t.replace(tzinfo=None).isoformat(" ", "microseconds") if self.backend == "sqlite" else t

    def book(self, patient_id: int, provider_id: int, location_id: int, start: dt.datetime) -> None:
        end = start + dt.timedelta(minutes=20)
        now = dt.datetime.now(dt.UTC)
        s, e, n = self._t(start), self._t(end), self._t(now)
        cur = self.conn.cursor()
        cur.execute(self.begin)
        cur.execute(self.check, (self._t(start - dt.timedelta(days=1)), e, provider_id, s, -1, s, patient_id, s, e))
        if cur.fetchall():
            cur.execute("ROLLBACK")
            raise RuntimeError(f"raw bound: slot {start} of provider {provider_id} is taken")
        row = (self.org_id, patient_id, provider_id, location_id, None, self.type_id, s, e, e, "booked")
        cur.execute(self.insert, row + (False, False, self.user_id, n, 1, n))
        if self.backend == "postgresql":
            cur.fetchone()
        cur.execute("COMMIT")
        cur.close()

    statements = 4

    def close(self) -> None:
        self.conn.close()


def time_op(settings, call, runs: int, *, readonly: bool = False):
    """(median ms of the call, p95 ms, median ms of the whole transaction, last result)."""
    from hpms.services.platform.context import open_context

    calls, txns, result = [], [], None
    for _ in range(runs + 1):  # the first run warms the caches and is not counted
        t0 = time.perf_counter()
        with open_context(settings, readonly=readonly) as ctx:
            t1 = time.perf_counter()
            result = call(ctx)
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        calls.append((t2 - t1) * 1000)
        txns.append((t3 - t0) * 1000)
    calls, txns = calls[1:], txns[1:]
    return statistics.median(calls), percentile(calls, 0.95), statistics.median(txns), result


def run(args, backend: str, home: Path, database_url: str | None) -> dict:
    for var in [k for k in os.environ if k.startswith("HPMS_")]:
        del os.environ[var]
    os.environ["HPMS_HOME"] = str(home)
    if database_url:
        os.environ["HPMS_DATABASE_URL"] = database_url

    import sqlalchemy as sa

    from hpms.config import load_settings
    from hpms.db import dispose_engines, session_scope
    from hpms.services.platform.context import open_context
    from hpms.services.scheduling import appointments

    rng = random.Random(args.seed)
    settings = load_settings()
    print(
        f"scheduling benchmark (hpms) on {backend}: {args.providers} providers, {args.appointments:,} appointments;"
        f" python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    # the raw bound books as many as the service; the profile books 200 more
    clinic = build_clinic(settings, args, rng, home, backend, 2 * args.bookings + args.batch + 500)
    info, reserved, gen, actor, engine = clinic.info, clinic.reserved, clinic.gen, clinic.actor, clinic.engine
    hard, normal, rows, load_s = clinic.hard, clinic.normal, clinic.rows, clinic.load_s

    # the busiest day (by UTC date, close enough) of Main
    main_id, main_tz = info["locations"]["Main"]
    with session_scope(engine) as session:
        day_expr = "date(start_utc)" if backend == "sqlite" else "CAST(start_utc AS DATE)"
        busiest, _ = session.execute(
            sa.text(
                f"SELECT {day_expr} AS d, count(*) AS n FROM appointment WHERE location_id = :l"
                " AND status <> 'cancelled'"
                " GROUP BY d ORDER BY n DESC, d DESC LIMIT 1"
            ),
            {"l": main_id},
        ).one()
    busiest = busiest if isinstance(busiest, dt.date) else dt.date.fromisoformat(busiest)

    counter = StatementCounter(engine)
    factor = machine_factor()
    results = []

    def report(label, med, p95, txn, stmts, target_ms, note=""):
        scaled = med / factor
        verdict = "PASS" if scaled < target_ms else "MISS"
        results.append((label, med, p95, txn, stmts, scaled, f"< {target_ms:.0f} ms", verdict, note))

    cases = [
        ("find-slot normal count=1", normal, "Office visit", 1),
        ("find-slot normal count=5", normal, "Office visit", 5),
        ("find-slot room type count=5", normal, "Procedure", 5),
        ("find-slot full 12 wk count=1", hard, "Office visit", 1),
        ("find-slot full 12 wk count=5", hard, "Office visit", 5),
    ]
    for label, pid, tname, count in cases:
        call = lambda ctx, pid=pid, tname=tname, count=count: appointments.find_slot(  # noqa: E731
            ctx, type=tname, provider=pid, count=count
        )
        med, p95, txn, out = time_op(settings, call, args.runs, readonly=True)
        stmts = counter.count(lambda call=call: _in_ctx(settings, call, True))
        first = out[0].start.strftime("%Y-%m-%d %H:%M") if out else "none"
        report(label, med, p95, txn, stmts, FIND_SLOT_TARGET_MS, f"{len(out)} slot(s), first {first}")
    call = lambda ctx: appointments.list_appointments(ctx, day=busiest, location=main_id)  # noqa: E731
    med, p95, txn, out = time_op(settings, call, args.runs)
    stmts = counter.count(lambda: _in_ctx(settings, call))
    report(f"day sheet Main {busiest}", med, p95, txn, stmts, DAY_SHEET_TARGET_MS, f"{len(out)} rows")

    # booking: free 20-minute slots at least three weeks ahead, patients with no visits
    free = gen.free
    rng.shuffle(free)
    slots = iter(free)
    pats = iter(reserved)

    def book_one(ctx):
        pid, lid, start = next(slots)
        return appointments.book(ctx, patient=next(pats)[1], provider=pid, type="Office visit", at=start, location=lid)

    raw = RawBooker(backend, settings, database_url, actor.org_id, actor.user_id, info["types"]["Office visit"])

    def raw_one():
        pid, lid, start = next(slots)
        raw.book(next(pats)[0], pid, lid, start)

    with open_context(settings) as ctx:  # warm-up, not counted
        book_one(ctx)
    stmts_each = counter.count(lambda: _in_ctx(settings, book_one))
    seen = "as the driver runs them" if backend == "sqlite" else "as sent on the driver's cursors, no BEGIN/COMMIT"
    print(f"  statements of one booking in its own transaction ({stmts_each}, {seen}):")
    for i, sql in enumerate(counter.statements, 1):
        print(f"    {i:2d}. {sql[:150]}{'...' if len(sql) > 150 else ''}")
    raw_one()  # warm-up, not counted
    each, raw_each = [], []
    for _ in range(args.bookings):  # interleaved, so that the machine's noise falls on both alike
        t1 = time.perf_counter()
        with open_context(settings) as ctx:
            book_one(ctx)
        t2 = time.perf_counter()
        raw_one()
        t3 = time.perf_counter()
        each.append((t2 - t1) * 1000)
        raw_each.append((t3 - t2) * 1000)
    raw.close()
    own_rate = args.bookings / (sum(each) / 1000)
    book_ms, raw_ms = statistics.median(each), statistics.median(raw_each)
    ratio = book_ms / raw_ms
    t0 = time.perf_counter()
    with open_context(settings) as ctx:
        for _ in range(args.batch):
            book_one(ctx)
    batch_s = time.perf_counter() - t0
    batch_rate = args.batch / batch_s
    with open_context(settings) as ctx:
        stmts_batch = counter.count(lambda: book_one(ctx))
    for label, rate, stmts, note in (
        (
            f"book, own txn x{args.bookings}",
            own_rate,
            stmts_each,
            f"median {statistics.median(each):.2f} ms, p95 {percentile(each, 0.95):.2f} ms per booking",
        ),
        (f"book, {args.batch} in one txn", batch_rate, stmts_batch, f"{1000 / batch_rate:.2f} ms per booking"),
    ):
        scaled = rate * factor
        results.append(
            (
                label,
                1000 / rate,
                None,
                None,
                stmts,
                scaled,
                f">= {BOOKING_TARGET_PER_S:.0f}/s",
                "PASS" if scaled >= BOOKING_TARGET_PER_S else "MISS",
                f"{rate:,.0f}/s here, {scaled:,.0f}/s scaled; {note}",
            )
        )

    print(
        f"  machine factor {factor:6.2f}  (import typer {factor * REFERENCE_IMPORT_TYPER_MS:.0f} ms here vs "
        f"{REFERENCE_IMPORT_TYPER_MS:.0f} ms on the reference); scaled = ms here / {factor:.2f}, "
        f"bookings/s here x {factor:.2f}"
    )
    print(
        f"  {'operation':31} {'median ms':>9} {'p95 ms':>7} {'txn ms':>7} {'stmts':>5} {'scaled':>8}  "
        f"{'target':>8}  verdict"
    )
    for label, med, p95, txn, stmts, scaled, target, verdict, note in results:
        if p95 is None:
            print(
                f"  {label:31} {med:9.2f} {'':>7} {'':>7} {stmts:5d} {scaled:7,.0f}/s {target:>8}  {verdict:5} {note}"
            )
        else:
            print(
                f"  {label:31} {med:9.2f} {p95:7.2f} {txn:7.2f} {stmts:5d} {scaled:8.2f} {target:>8}  "
                f"{verdict:5} {note}"
            )
    print(
        f"  book one, own txn vs raw bound  median {book_ms:.3f} ms ({stmts_each} statements) vs {raw_ms:.3f} ms"
        f" ({raw.statements} statements, bare driver): {ratio:.1f}x, target <= {BOOK_RAW_RATIO_TARGET:.0f}x"
        f"  {'PASS' if ratio <= BOOK_RAW_RATIO_TARGET else 'MISS'}"
    )
    if backend == "postgresql":
        print(
            f"  book one, own txn (PostgreSQL) median {book_ms:.2f} ms, target <= {BOOK_PG_TARGET_MS} ms"
            f"  {'PASS' if book_ms <= BOOK_PG_TARGET_MS else 'MISS'}"
        )
    print(
        f"  (median/p95: the service call alone; txn: the whole open_context transaction with authentication,"
        f" audit and commit; stmts: SQL statements of one transaction; book: wall time per booking, scaled"
        f" column in bookings/s; load average {os.getloadavg()[0]:.1f} at the end)",
        flush=True,
    )

    if args.profile:
        profile_ops(settings, appointments, normal, hard, busiest, main_id, book_one, args)
    dispose_engines()
    return {"backend": backend, "rows": rows, "load_s": load_s, "factor": factor}


def profile_ops(settings, appointments, normal, hard, busiest, main_id, book_one, args) -> None:
    ops = [
        (
            "find_slot (fully booked provider, count=5) x20",
            lambda: [
                _in_ctx(
                    settings, lambda c: appointments.find_slot(c, type="Office visit", provider=hard, count=5), True
                )
                for _ in range(20)
            ],
        ),
        (
            "list_appointments (day sheet) x20",
            lambda: [
                _in_ctx(settings, lambda c: appointments.list_appointments(c, day=busiest, location=main_id))
                for _ in range(20)
            ],
        ),
        ("book, own transaction x200", lambda: [_in_ctx(settings, book_one) for _ in range(200)]),
    ]
    for label, fn in ops:
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        for order, lines in (("cumulative", 45), ("tottime", 25)):
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats(order).print_stats(lines)
            text = out.getvalue().splitlines()
            start = next((i for i, ln in enumerate(text) if ln.strip().startswith("ncalls")), 0)
            print(f"\ncProfile of {label} ({order}):")
            print("\n".join(text[start - 1 :]))


def _in_ctx(settings, call, readonly: bool = False):
    from hpms.services.platform.context import open_context

    with open_context(settings, readonly=readonly) as ctx:
        return call(ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="server for --backend postgresql: a fresh hpms_bench_* database is created next to "
        "this one and dropped afterwards (default: %(default)s)",
    )
    parser.add_argument("--appointments", type=int, default=1_000_000, help="appointment rows (default 1,000,000)")
    parser.add_argument("--providers", type=int, default=50, help="providers (default 50)")
    parser.add_argument("--patients", type=int, default=20_000, help="patients (default 20,000)")
    parser.add_argument("--runs", type=int, default=21, help="timed runs of each query (default 21)")
    parser.add_argument("--bookings", type=int, default=300, help="bookings in their own transactions (default 300)")
    parser.add_argument("--batch", type=int, default=1000, help="bookings in one transaction (default 1000)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the synthetic data")
    parser.add_argument("--keep", action="store_true", help="keep the scratch HPMS_HOME / PostgreSQL database")
    parser.add_argument("--profile", action="store_true", help="cProfile the three operations afterwards")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        tmp = Path(tempfile.mkdtemp(prefix="hpms-bench-sched-"))
        try:
            if backend == "postgresql":
                with postgres_database(args.postgres, args.keep) as url:
                    run(args, backend, tmp / "home", url)
            else:
                run(args, backend, tmp / "home", None)
        finally:
            if args.keep:
                print(f"  kept HPMS_HOME {tmp / 'home'}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        print(flush=True)


if __name__ == "__main__":
    main()
