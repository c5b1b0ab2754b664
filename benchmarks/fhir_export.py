"""FHIR export of a large synthetic schedule: NDJSON of every patient and appointment.

Builds the practice of benchmarks/reports.py in a scratch HPMS_HOME (`hpms init`, 50 providers,
one appointment type, --patients synthetic patients through the CSV import, --appointments
appointments laid down in bulk), then:
  (a) `hpms.services.interop.fhir_export.export` to NDJSON (the path `hpms fhir export` takes:
      every Patient, Appointment and busy Slot, read a page of 1,000 rows at a time and mapped by
      hpms.interop.fhir.writing), against a bare loop: the same rows on a raw DBAPI cursor
      (fetchmany), each written as a flat JSON object of its columns with json.dumps (each
      appointment twice, as the export writes two resources of it). Ratio export / bare, per
      object written; target within 3x (what the mapping to nested resources costs).
  (b) peak Python memory of the export (tracemalloc, a second run; target < 100 MB: the export
      never holds the practice) and the process's peak RSS.

    python benchmarks/fhir_export.py [--appointments N] [--patients N] [--postgres URL] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reports import build, practice, rss_mb, timed, traced  # noqa: E402
from scheduling import postgres_database  # noqa: E402

RATIO_TARGET = 3.0
MEMORY_TARGET_MB = 100.0


def export(settings, out: Path) -> int:
    from hpms.services.interop import fhir_export
    from hpms.services.platform.context import open_context

    shutil.rmtree(out, ignore_errors=True)
    with open_context(settings) as ctx:
        result = fhir_export.export(ctx, out=out)
    return sum(result["counts"].values())


BARE_SQL = (
    "SELECT a.id, a.patient_id, a.provider_id, a.location_id, a.start_utc, a.end_utc, a.block_end_utc, a.status,"
    " a.reason, a.cancel_reason, a.booked_at, t.name FROM appointment a JOIN appointment_type t ON t.id = a.type_id"
    " ORDER BY a.id",
    "SELECT * FROM patient ORDER BY id",
)


def bare(settings, path: Path) -> int:
    """The rows the export reads (patients; appointments with their type) on a raw cursor,
    each written as a flat JSON object of its columns, each appointment twice (as the export
    writes an Appointment and a Slot): reading, encoding and writing without the mapping."""
    from hpms.db import get_engine

    raw = get_engine(settings).raw_connection()
    n = 0
    try:
        with open(path, "w", encoding="utf-8") as fh:
            for sql in BARE_SQL:
                cur = raw.cursor()
                cur.execute(sql)
                names = [d[0] for d in cur.description]
                twice = sql.startswith("SELECT a.")
                while True:
                    rows = cur.fetchmany(10_000)
                    if not rows:
                        break
                    for row in rows:
                        line = json.dumps(dict(zip(names, row)), default=str) + "\n"
                        fh.write(line)
                        if twice:
                            fh.write(line)
                            n += 1
                    n += len(rows)
                cur.close()
    finally:
        raw.close()
    return n


def run(args, backend: str, home: Path, database_url: str | None) -> None:
    for var in [k for k in os.environ if k.startswith("HPMS_")]:
        del os.environ[var]
    os.environ["HPMS_HOME"] = str(home)
    if database_url:
        os.environ["HPMS_DATABASE_URL"] = database_url
    from hpms.config import load_settings

    settings = load_settings()
    rng = random.Random(args.seed)
    print(
        f"FHIR export benchmark (hpms) on {backend}: {args.appointments:,} appointments, {args.patients:,} patients; "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    t0 = time.perf_counter()
    first, last = build(settings, args, rng, home, practice(settings, args, rng, home))
    print(f"  build          {time.perf_counter() - t0:6.1f} s  ({first} to {last})", flush=True)
    out = home / "out"
    out.mkdir()
    rss0 = rss_mb()
    runs_export, runs_bare = [], []
    for _ in range(args.runs):
        runs_bare.append(timed(bare, settings, out / "bare.ndjson"))
        runs_export.append(timed(export, settings, out / "fhir"))
    bare_s, bare_n = min(runs_bare)
    exp_s, n = min(runs_export)
    size = sum(p.stat().st_size for p in (out / "fhir").iterdir()) / 1e6
    print(f"  FHIR export    {exp_s:6.1f} s  {n / exp_s:9,.0f} resources/s  ({n:,} resources, {size:.0f} MB)")
    print(f"  bare json      {bare_s:6.1f} s  {bare_n / bare_s:9,.0f} objects/s  (raw cursor + json.dumps of rows)")
    ratio = (exp_s / n) / (bare_s / bare_n)
    print(
        f"  ratio/object   {ratio:6.2f}x   target <= {RATIO_TARGET:.1f}x   "
        f"{'PASS' if ratio <= RATIO_TARGET else 'MISS'}"
    )
    peak = traced(export, settings, out / "fhir")
    print(
        f"  peak mem       {peak:6.1f} MB (tracemalloc)   target < {MEMORY_TARGET_MB:.0f} MB   "
        f"{'PASS' if peak < MEMORY_TARGET_MB else 'MISS'};  peak RSS {rss_mb():.0f} MB (before the exports "
        f"{rss0:.0f} MB)"
    )
    print(f"  (load average {os.getloadavg()[0]:.1f} at the end)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--appointments", type=int, default=200_000)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--postgres", metavar="URL", help="run on a fresh database on this PostgreSQL server")
    ap.add_argument("--keep", action="store_true", help="keep the scratch HPMS_HOME / database")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="hpms-bench-fhir-"))
    try:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(postgres_database(args.postgres, args.keep)) if args.postgres else None
            run(args, "postgresql" if url else "sqlite", home, url)
    finally:
        if args.keep:
            print(f"  kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
