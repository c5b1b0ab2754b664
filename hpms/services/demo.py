"""The demo clinic: two locations, staff of every role, payers and synthetic patients,
built through the same services a clinic uses (patients arrive through the CSV import).

Every person in it is made up; phone numbers use the fictional 555-01xx range.
"""

from __future__ import annotations

import csv
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from hpms.config import Settings, redact_url
from hpms.errors import ConflictError, NotInitializedError
from hpms.services import admin, coverage, org, patient_import, users
from hpms.services.context import open_context

PRACTICE = "Riverside Family Medicine"
LOCATIONS = [
    {"name": "Riverside Main", "tz": "America/New_York", "address_line1": "100 River Rd", "city": "Hartford",
     "state": "CT", "postal_code": "061031234", "country": "US", "phone": "860-555-0100", "npi": "1234567893"},
    {"name": "Lakeside Clinic", "tz": "America/Chicago", "address_line1": "42 Lake Shore Dr", "city": "Chicago",
     "state": "IL", "postal_code": "606111234", "country": "US", "phone": "312-555-0100"},
]
STAFF = [
    ("frontdesk", "Maria Lopez", ["front_desk"]),
    ("frontdesk2", "Tom Becker", ["front_desk"]),
    ("biller", "Priya Nair", ["biller"]),
    ("drsmith", "Dr. Alan Smith", ["provider"]),
    ("drpatel", "Dr. Meera Patel", ["provider"]),
    ("drnguyen", "Dr. Linh Nguyễn", ["provider"]),
    ("auditor", "Grace Kim", ["auditor"]),
    ("nightly", "Nightly jobs", ["service"]),
]
PAYERS = [
    ("Acme Health Plan", "60054", "Hartford", "CT"),
    ("Blue Harbor Insurance", "BHI01", "Boston", "MA"),
    ("Medicare Part B (demo)", "MCRB1", "Baltimore", "MD"),
    ("Lakeshore Medicaid (demo)", "LKMCD", "Springfield", "IL"),
]
FIRST = ["Ana", "José", "Emma", "Liam", "Olivia", "Noah", "Sophia", "Lucas", "Mia", "Ethan", "Zoë", "Chloé",
         "Mateo", "Aisha", "Yuki", "Omar", "Hannah", "Jonas", "Léa", "Björn", "Fatima", "Daniel", "Grace",
         "Samuel", "Isabella", "Mohammed", "Elena", "Noor", "Ravi", "Amélie", "Kofi", "Ingrid", "Diego", "Chen"]
LAST = ["Müller", "García", "Smith", "Johnson", "Nguyễn", "O'Brien", "Kowalski", "Rossi", "Schmidt", "Brown",
        "Martínez", "Dubois", "Andersson", "Khan", "Okafor", "Tanaka", "Silva", "Cohen", "Novak", "Jensen",
        "Hernández", "Ivanova", "Williams", "Fischer", "Lefèvre", "Popescu", "Santos", "Murphy", "Ali", "Weber"]
STREETS = ["Oak St", "Maple Ave", "Elm St", "Park Pl", "Cedar Ln", "Main St", "Washington Ave", "Lake St"]


def _demo_rows(n: int, rng: random.Random) -> list[dict]:
    rows = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        year = rng.randint(1935, 2024)
        row = {
            "first_name": first, "last_name": last, "dob": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "sex_at_birth": rng.choice(["female", "male", "female", "male", "unknown"]),
            "phone": f"{rng.choice(['860', '312', '203'])}-555-01{rng.randint(0, 99):02d}",
            "email": f"{first.lower()}.{i}@example.org".encode("ascii", "ignore").decode() if rng.random() < 0.7 else "",
            "address_line1": f"{rng.randint(1, 999)} {rng.choice(STREETS)}",
            "city": rng.choice(["Hartford", "Chicago", "New Haven", "Evanston"]),
            "state": rng.choice(["CT", "IL"]), "postal_code": f"{rng.randint(10000, 99999)}", "country": "US",
            "preferred_channel": rng.choice(["sms", "email", "phone"]),
            "consent_sms": "yes" if rng.random() < 0.6 else "no",
            "consent_email": "yes" if rng.random() < 0.5 else "no",
            "ssn": (f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
                    if rng.random() < 0.3 else ""),
        }
        if row["preferred_channel"] == "email" and not row["email"]:
            row["preferred_channel"] = "phone"
        rows.append(row)
    # A few likely duplicates for `hpms patients duplicates` to find.
    for j in range(min(5, n // 50)):
        src = dict(rows[j * 7])
        src["first_name"] = src["first_name"][:-1] + ("y" if src["first_name"][-1] != "y" else "i")
        src["ssn"] = ""
        rows.append(src)
    return rows


def build(settings: Settings, *, patient_count: int = 300, seed: int = 2026,
          progress: Callable[[int, int], None] | None = None) -> dict:
    """Initialize (if needed) and fill a demo practice. Refuses a database holding a real
    practice (ConflictError); rerunning on a demo database changes nothing."""
    count = patient_count
    path = settings.sqlite_path
    fresh = path is not None and not path.exists()
    if not fresh:
        try:
            with open_context(settings) as ctx:
                organization = org.organization(ctx)
                n = ctx.session.execute(sa.text("SELECT count(*) FROM patient")).scalar_one()
        except NotInitializedError:
            fresh = True
        else:
            if not organization.is_demo:
                raise ConflictError(f"{redact_url(settings.database_url)} holds the practice {organization.name!r}",
                                    hint="build the demo elsewhere with `hpms demo --home DIR`")
            if n:
                return _summary(settings, created=False)
    if fresh:
        admin.init(settings, practice=PRACTICE, tz=LOCATIONS[0]["tz"], location=LOCATIONS[0]["name"], is_demo=True)
    rng = random.Random(seed)
    with open_context(settings) as ctx:
        first = org.list_locations(ctx)[0]
        org.update_location(ctx, first.id, **{k: v for k, v in LOCATIONS[0].items() if k != "name"})
        for loc in LOCATIONS[1:]:
            org.add_location(ctx, **loc)
        for username, full_name, roles in STAFF:
            users.add_user(ctx, username=username, roles=roles, full_name=full_name)
        for name, code, city, state in PAYERS:
            coverage.add_payer(ctx, name=name, payer_id=code, city=city, state=state)
        fd, tmp = tempfile.mkstemp(prefix="hpms-demo-", suffix=".csv")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                rows = _demo_rows(count, rng)
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            patient_import.import_csv(ctx, Path(tmp), progress=progress)
        finally:
            os.unlink(tmp)
        ids = ctx.session.execute(sa.text("SELECT mrn FROM patient ORDER BY id")).scalars().all()
        for i, mrn in enumerate(ids):
            if rng.random() < 0.85:
                name, code, _, _ = PAYERS[i % len(PAYERS)]
                coverage.add_coverage(ctx, patient=mrn, payer=code,
                                      member_id=f"{code[:3].upper()}{rng.randint(10**8, 10**9 - 1)}",
                                      group_number=f"G{rng.randint(100, 999)}", valid_from="2026-01-01")
                if rng.random() < 0.15:
                    other = PAYERS[(i + 1) % len(PAYERS)][1]
                    coverage.add_coverage(ctx, patient=mrn, payer=other, priority="secondary",
                                          member_id=f"S{rng.randint(10**8, 10**9 - 1)}", relationship="spouse",
                                          subscriber=f"{rng.choice(FIRST)} {rng.choice(LAST)}")
    return _summary(settings, created=True)


def _summary(settings: Settings, *, created: bool) -> dict:
    with open_context(settings) as ctx:
        s = ctx.session
        count = lambda table: s.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: E731
        return {"created": created, "database": redact_url(settings.database_url), "home": str(settings.home),
                "organization": org.organization(ctx).name, "locations": count("location"),
                "users": count("hpms_user"), "payers": count("payer"), "patients": count("patient"),
                "coverages": count("coverage")}

