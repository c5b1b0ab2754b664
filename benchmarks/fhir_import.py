"""FHIR import of a bulk export: N patients (default 2,000) in Patient.ndjson and three visits
each in Encounter.ndjson, through `hpms.services.interop.fhir_import.import_files`, then the same folder
again (it must change nothing).

Bounds measured in the same run, on the same machine and backend, each in a fresh practice:
- registering the same N patients through `patients.register` in one transaction (validation,
  the duplicate check's indexed queries, an MRN, one audit event each): the path the import
  sends every new patient through, so what the import adds is parsing, validation with the
  R4B models, the map of ids and the visits; target: the import at most 1.5x that.
- reading and validating the files alone (`read_files`: JSON and the R4B models): what a
  second import cannot avoid; target: the second import at most 2x that.
The CSV patient import (bulk inserts, no duplicate check) of the same patients is printed for
scale.

    python benchmarks/fhir_import.py [--patients 2000] [--postgres URL] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from billing import pg_create, pg_drop, set_env  # noqa: E402

FIRST_RATIO = 1.5
AGAIN_RATIO = 2.0
FIRST = ["Ana", "José", "Emma", "Liam", "Olivia", "Noah", "Zoë", "Mateo", "Aisha", "Yuki", "Omar", "Grace"]
LAST = ["García", "Smith", "Nguyen", "Müller", "O'Brien", "Kowalski", "Johnson", "Okafor", "Rossi", "Dubois"]


def people(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            {
                "first_name": rng.choice(FIRST),
                "last_name": f"{rng.choice(LAST)}-{i}",  # distinct: no patient is a likely duplicate
                "dob": f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "phone": f"555-{i // 10000:03d}-{i % 10000:04d}",
                "address_line1": f"{rng.randint(1, 999)} Main St",
                "city": "Springfield",
                "state": "IL",
                "postal_code": "62701",
            }
        )
    return out


def write_ndjson(folder: Path, rows: list[dict[str, str]]) -> None:
    folder.mkdir(parents=True)
    with (
        (folder / "Patient.ndjson").open("w", encoding="utf-8") as p,
        (folder / "Encounter.ndjson").open("w", encoding="utf-8") as e,
    ):
        for i, r in enumerate(rows):
            patient = {
                "resourceType": "Patient",
                "id": f"p{i}",
                "name": [{"family": r["last_name"], "given": [r["first_name"]]}],
                "birthDate": r["dob"],
                "gender": "female",
                "telecom": [{"system": "phone", "value": r["phone"]}],
                "address": [
                    {
                        "line": [r["address_line1"]],
                        "city": r["city"],
                        "state": r["state"],
                        "postalCode": r["postal_code"],
                    }
                ],
            }
            p.write(json.dumps(patient) + "\n")
            for k in range(3):
                visit = {
                    "resourceType": "Encounter",
                    "id": f"e{i}-{k}",
                    "status": "finished",
                    "class": {"code": "AMB"},
                    "subject": {"reference": f"Patient/p{i}"},
                    "period": {
                        "start": f"2024-0{k + 1}-0{1 + i % 9}T09:00:00Z",
                        "end": f"2024-0{k + 1}-0{1 + i % 9}T09:20:00Z",
                    },
                    "type": [{"text": "Check-up"}],
                }
                e.write(json.dumps(visit) + "\n")


def practice(home: Path, url: str | None) -> object:
    set_env(home, url)
    from hpms.config import load_settings
    from hpms.db import dispose_engines
    from hpms.services.platform import admin

    dispose_engines()
    settings = load_settings()
    admin.init(settings, practice="FHIR Benchmark Clinic", tz="America/New_York", location="Main")
    return settings


def timed(settings: object, call) -> tuple[float, object]:
    from hpms.services.platform.context import open_context

    t = time.perf_counter()
    with open_context(settings) as ctx:  # type: ignore[arg-type]
        out = call(ctx)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--postgres", help="a PostgreSQL URL to run on instead of SQLite")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hpms-fhir-bench-"))
    rows = people(args.patients, seed=7)
    folder = root / "export"
    write_ndjson(folder, rows)
    csv_path = root / "patients.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    names = ("hpms_bench_fhir_a", "hpms_bench_fhir_b", "hpms_bench_fhir_c")
    urls: list[str | None] = [None, None, None]
    if args.postgres:
        urls = [pg_create(args.postgres, name) for name in names]
    try:
        from hpms.services.interop import fhir_import
        from hpms.services.people import patient_import, patients

        settings = practice(root / "csv-home", urls[0])
        csv_s, _ = timed(settings, lambda ctx: patient_import.import_csv(ctx, csv_path))
        settings = practice(root / "register-home", urls[2])
        reg_s, _ = timed(settings, lambda ctx: [patients.register(ctx, **r) for r in rows])
        settings = practice(root / "fhir-home", urls[1])
        t = time.perf_counter()
        fhir_import.read_files(folder)
        read_s = time.perf_counter() - t
        first_s, report = timed(settings, lambda ctx: fhir_import.import_files(ctx, folder))
        if args.postgres:
            # What autovacuum does within a minute of such an insert: without statistics the
            # planner takes the fresh external_ref for empty and filters every row of a type
            # against each batch of ids, instead of looking the ids up in the unique index.
            import sqlalchemy as sa

            from hpms.db import get_engine

            with get_engine(settings).begin() as conn:  # type: ignore[arg-type]
                conn.execute(sa.text("ANALYZE external_ref"))
        again_s, again = timed(settings, lambda ctx: fhir_import.import_files(ctx, folder))
        made = {c.resource_type: c.created for c in report.counts}  # type: ignore[attr-defined]
        same = {c.resource_type: c.unchanged for c in again.counts}  # type: ignore[attr-defined]
        backend = "postgresql" if args.postgres else "sqlite"
        n = args.patients
        print(f"backend {backend}, {n:,} patients, {3 * n:,} visits (NDJSON)")
        print(f"  CSV patient import (for scale)  {csv_s:7.2f} s")
        print(f"  patients.register x N (bound)   {reg_s:7.2f} s")
        print(f"  read + validate the files       {read_s:7.2f} s")
        print(
            f"  FHIR import                     {first_s:7.2f} s  {1000 * first_s / n:.2f} ms a patient; created {made}"
        )
        print(f"  FHIR import again               {again_s:7.2f} s  unchanged {same}")
        r1, r2 = first_s / reg_s, again_s / read_s
        verdict = {True: "PASS", False: "MISS"}
        print(
            f"  import / register x N           {r1:7.2f}x  target <= {FIRST_RATIO:.1f}x  {verdict[r1 <= FIRST_RATIO]}"
        )
        print(
            f"  again / read alone              {r2:7.2f}x  target <= {AGAIN_RATIO:.1f}x  {verdict[r2 <= AGAIN_RATIO]}"
        )
    finally:
        from hpms.db import dispose_engines

        dispose_engines()
        if args.postgres:
            pg_drop(args.postgres, *names)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
