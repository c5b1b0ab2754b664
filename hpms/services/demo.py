"""The demo clinic: two locations, staff of every role, payers, synthetic patients and a
schedule of eight weeks around today, built through the same services a clinic uses
(patients arrive through the CSV import, appointments in bulk under the same overlap guards);
then the billing side (`hpms.services.demo_billing`): a billing profile, fee schedules, an
encounter for every completed visit (signed, but today's left as drafts), billed week by week,
whose 837P files go to `<HPMS_HOME>/claims/`; the payers' 835 answers for the older visits (in
`<HPMS_HOME>/era/`), posted, and some patients' payments.

Every person in it is made up; phone numbers use the fictional 555-01xx range.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.codes.npi import is_valid_npi
from hpms.config import Settings, redact_url
from hpms.db import bulk_insert, new_ids
from hpms.errors import Action, ConflictError, NotInitializedError
from hpms.models import Appointment, AppointmentSeries, FreedSlot, Location, LocationOut
from hpms.models.scheduling import BLOCKING_STATUSES
from hpms.services import demo_billing
from hpms.services.demo_billing import CLAIMS_DIR, ERA_DIR
from hpms.services.people import coverage, patient_import
from hpms.services.platform import admin, audit, org, users
from hpms.services.platform import localtime as lt
from hpms.services.platform.context import open_context
from hpms.services.scheduling import availability, online, resources, waitlist

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

PRACTICE = "Riverside Family Medicine"
LOCATIONS = [
    {
        "name": "Riverside Main",
        "tz": "America/New_York",
        "address_line1": "100 River Rd",
        "city": "Hartford",
        "state": "CT",
        "postal_code": "061031234",
        "country": "US",
        "phone": "860-555-0100",
        "npi": "1234567893",
    },
    {
        "name": "Lakeside Clinic",
        "tz": "America/Chicago",
        "address_line1": "42 Lake Shore Dr",
        "city": "Chicago",
        "state": "IL",
        "postal_code": "606111234",
        "country": "US",
        "phone": "312-555-0100",
        "npi": "1245319599",
    },
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
PAYER_FILING = {"60054": "CI", "BHI01": "BL", "MCRB1": "MB", "LKMCD": "MC"}  # SBR09 of each payer's claims
FIRST = [
    "Ana",
    "José",
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Sophia",
    "Lucas",
    "Mia",
    "Ethan",
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
    "Isabella",
    "Mohammed",
    "Elena",
    "Noor",
    "Ravi",
    "Amélie",
    "Kofi",
    "Ingrid",
    "Diego",
    "Chen",
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
    "Hernández",
    "Ivanova",
    "Williams",
    "Fischer",
    "Lefèvre",
    "Popescu",
    "Santos",
    "Murphy",
    "Ali",
    "Weber",
]
STREETS = ["Oak St", "Maple Ave", "Elm St", "Park Pl", "Cedar Ln", "Main St", "Washington Ave", "Lake St"]

# ---- the schedule ----------------------------------------------------------------------------
# (username, first, last, credentials, first 9 digits of the NPI (check digit computed),
#  taxonomy, color, locations by index into LOCATIONS)
PROVIDERS = [
    ("drsmith", "Alan", "Smith", "MD", "174839201", "207Q00000X", "teal", [0]),
    ("drpatel", "Meera", "Patel", "MD", "158203947", "207R00000X", "#8e44ad", [0, 1]),
    ("drnguyen", "Linh", "Nguyễn", "DO", "190672534", "207Q00000X", "orange", [1]),
]
# provider, location index, days, start, end, rrule: Dr. Patel works at both sites on
# different days, and at Lakeside on every other Friday morning.
HOURS = [
    ("drsmith", 0, "MO-FR", "08:00", "17:00", None),
    ("drpatel", 0, "MO,WE,TH", "08:00", "17:00", None),
    ("drpatel", 1, "TU", "08:00", "17:00", None),
    ("drpatel", 1, None, "08:00", "12:00", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR"),
    ("drnguyen", 1, "MO-FR", "08:00", "17:00", None),
]
ROOMS = [
    (0, "Exam 1", "exam"),
    (0, "Exam 2", "exam"),
    (0, "Exam 3", "exam"),
    (0, "Procedure Room", "procedure"),
    (0, "ECG cart", "equipment"),
    (1, "Exam A", "exam"),
    (1, "Exam B", "exam"),
    (1, "Procedure Room", "procedure"),
]
# name, minutes, buffer, color, self-bookable, needs a room, default code, share of bookings
TYPES = [
    ("New patient", 40, 0, "blue", False, False, "99203", 14),
    ("Follow-up", 20, 5, "green", False, False, "99213", 42),
    ("Annual physical", 30, 0, "purple", False, True, "99396", 14),
    ("Telehealth", 15, 0, "teal", True, False, "99212", 22),
    ("Procedure", 30, 10, "red", False, True, "11102", 8),
]
VISIT_REASONS = {
    "New patient": ["Establish care", "Transfer of care", "New patient visit"],
    "Follow-up": ["Blood pressure check", "Diabetes follow-up", "Lab results", "Medication review", "Back pain"],
    "Annual physical": ["Annual physical", "Preventive visit"],
    "Telehealth": ["Cold symptoms", "Prescription refill", "Lab results by video"],
    "Procedure": ["Skin lesion biopsy", "Wart removal", "Mole check and biopsy"],
}
CANCEL_REASONS = [
    "Patient request",
    "Feeling better",
    "Schedule conflict",
    "No transportation",
    "Illness in family",
    "Weather",
]
WEEKS = 4  # weeks of future schedule, and of busy past schedule, around today
HISTORY_MONTHS = 2  # the past schedule starts this many whole months back (the billing history)
STEP = dt.timedelta(minutes=15)
GRAIN = 5  # minutes: every duration, buffer and start is a multiple of it
SERIES_WEEKS = 8  # the weekly series: eight Tuesdays from three weeks back


def _demo_rows(n: int, rng: random.Random) -> list[dict]:
    rows = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        year = rng.randint(1935, 2024)
        row = {
            "first_name": first,
            "last_name": last,
            "dob": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "sex_at_birth": rng.choice(["female", "male", "female", "male", "unknown"]),
            "phone": f"{rng.choice(['860', '312', '203'])}-555-01{rng.randint(0, 99):02d}",
            "email": f"{first.lower()}.{i}@example.org".encode("ascii", "ignore").decode()
            if rng.random() < 0.7
            else "",
            "address_line1": f"{rng.randint(1, 999)} {rng.choice(STREETS)}",
            "city": rng.choice(["Hartford", "Chicago", "New Haven", "Evanston"]),
            "state": rng.choice(["CT", "IL"]),
            "postal_code": f"{rng.randint(10000, 99999)}",
            "country": "US",
            "preferred_channel": rng.choice(["sms", "email", "phone"]),
            "consent_sms": "yes" if rng.random() < 0.6 else "no",
            "consent_email": "yes" if rng.random() < 0.5 else "no",
            "ssn": (
                f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
                if rng.random() < 0.3
                else ""
            ),
        }
        if row["preferred_channel"] == "email" and not row["email"]:
            row["preferred_channel"] = "phone"
        rows.append(row)
    # A few likely duplicates for the duplicate search to find.
    for j in range(min(5, n // 50)):
        src = dict(rows[j * 7])
        src["first_name"] = src["first_name"][:-1] + ("y" if src["first_name"][-1] != "y" else "i")
        src["ssn"] = ""
        rows.append(src)
    return rows


def build(
    settings: Settings,
    *,
    patient_count: int = 300,
    seed: int = 2026,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
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
                raise ConflictError(
                    f"{redact_url(settings.database_url)} holds the practice {organization.name!r}",
                    action=Action("demo", give=(("home", "DIR"),), purpose="build the demo elsewhere with"),
                )
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
            coverage.add_payer(ctx, name=name, payer_id=code, city=city, state=state, claim_filing=PAYER_FILING[code])
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
                coverage.add_coverage(
                    ctx,
                    patient=mrn,
                    payer=code,
                    member_id=f"{code[:3].upper()}{rng.randint(10**8, 10**9 - 1)}",
                    group_number=f"G{rng.randint(100, 999)}",
                    valid_from="2026-01-01",
                )
                if rng.random() < 0.15:
                    other = PAYERS[(i + 1) % len(PAYERS)][1]
                    coverage.add_coverage(
                        ctx,
                        patient=mrn,
                        payer=other,
                        priority="secondary",
                        member_id=f"S{rng.randint(10**8, 10**9 - 1)}",
                        relationship="spouse",
                        subscriber=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                        # Medicare pays second: the spouse's employer plan is primary
                        medicare_secondary_type="12" if other == "MCRB1" else None,
                    )
        first_day = _schedule(ctx, rng, ctx.now())
        demo_billing.setup(ctx, PRACTICE)
        demo_billing.encounters(ctx, rng, ctx.now())
    demo_billing.history(settings, rng, first_day=first_day, payee=(PRACTICE, LOCATIONS[0]["npi"]))
    return _summary(settings, created=True)


# ---- the schedule ----------------------------------------------------------------------------


def _npi(base: str) -> str:
    """`base` (9 digits) with the check digit that makes it a valid NPI."""
    return next(base + d for d in "0123456789" if is_valid_npi(base + d))


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th `weekday` (0 = Monday) of a month; n = -1 for the last one."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _holidays(first: dt.date, last: dt.date) -> list[tuple[dt.date, str]]:
    """The US holidays the clinic closes on that fall on a weekday between first and last; a
    staff training day when there is none."""
    found = []
    for y in range(first.year, last.year + 1):
        for day, name in (
            (dt.date(y, 1, 1), "New Year's Day"),
            (_nth_weekday(y, 5, 0, -1), "Memorial Day"),
            (dt.date(y, 7, 4), "Independence Day"),
            (_nth_weekday(y, 9, 0, 1), "Labor Day"),
            (_nth_weekday(y, 11, 3, 4), "Thanksgiving"),
            (dt.date(y, 12, 25), "Christmas Day"),
        ):
            if first <= day <= last and day.weekday() < 5:
                found.append((day, name))
    if not found:
        day = last - dt.timedelta(days=14)
        found.append((day + dt.timedelta(days=(2 - day.weekday()) % 7), "Staff training day"))
    return found


def _cells(start: dt.datetime, end: dt.datetime) -> range:
    """The GRAIN-minute cells [start, end) covers: overlap tests become set lookups."""
    return range(int(start.timestamp()) // (GRAIN * 60), -(-int(end.timestamp()) // (GRAIN * 60)))


def _minutes(rng: random.Random, lo: float, hi: float) -> dt.timedelta:
    return dt.timedelta(minutes=round(rng.uniform(lo, hi)))


class _Calendar:
    """What is taken so far (blocking visits only): provider and room time by cell, and one
    visit a day per patient, so the rows never trip the database's overlap guards."""

    def __init__(self, rooms: dict[int, list[tuple[int, str]]]) -> None:
        self.rooms = rooms  # location id -> [(room id, kind)]
        self.taken: dict[tuple[str, int], set[int]] = {}
        self.patient_days: set[tuple[int, dt.date]] = set()

    def free(self, key: tuple[str, int], start, end) -> bool:
        cells = self.taken.get(key)
        return not cells or not any(c in cells for c in _cells(start, end))

    def take(self, key: tuple[str, int], start, end) -> None:
        self.taken.setdefault(key, set()).update(_cells(start, end))

    def room(self, location_id: int, start, end, *, procedure: bool) -> int | None:
        rooms = self.rooms[location_id]
        kinds = ("procedure", "exam") if procedure else ("exam", "procedure")
        for kind in kinds:
            for room_id, room_kind in rooms:
                if room_kind == kind and self.free(("room", room_id), start, end):
                    return room_id
        return None

    def patient(self, rng: random.Random, patient_ids: list[int], day: dt.date) -> int | None:
        for _ in range(30):
            pid = rng.choice(patient_ids)
            if (pid, day) not in self.patient_days:
                return pid
        return None


def _visit(
    rng: random.Random,
    *,
    now: dt.datetime,
    start: dt.datetime,
    duration: dt.timedelta,
    window: dt.timedelta,
    booked_at: dt.datetime | None = None,
    status: str | None = None,
) -> dict:
    """Status and lifecycle timestamps of a visit as the front desk would have left them by now:
    past visits completed (about 8% no-shows, 10% cancelled, a third of those late), today's
    under way, future ones booked or confirmed (a few cancelled, their time freed)."""
    end = start + duration
    ahead = start - now
    if status is None:
        r = rng.random()
        if end <= now:
            status = "no_show" if r < 0.08 else "cancelled" if r < 0.18 else "completed"
        elif start <= now:
            status = "in_room"
        elif ahead <= dt.timedelta(minutes=15):
            status = "arrived"
        elif r < 0.04:
            status = "cancelled"
        elif (ahead < dt.timedelta(days=2) and r < 0.8) or r < 0.25:
            status = "confirmed"
        else:
            status = "booked"
    v: dict = dict.fromkeys(("confirmed_at", "arrived_at", "roomed_at", "completed_at", "no_show_at", "cancelled_at"))
    if booked_at is None:
        lead = dt.timedelta(hours=rng.uniform(20, 24 * 30))
        booked_at = (
            min(start - lead, now - _minutes(rng, 30, 60 * 24 * 21)) if ahead > dt.timedelta(0) else start - lead
        )
    v["late_cancel"] = False
    if status == "cancelled":
        if end <= now:
            late = rng.random() < 0.35
            v["cancelled_at"] = start - (
                dt.timedelta(hours=rng.uniform(1, 20)) if late else dt.timedelta(hours=rng.uniform(30, 24 * 9))
            )
        else:
            v["cancelled_at"] = now - _minutes(rng, 5, 60 * 24 * 3)
        if v["cancelled_at"] <= booked_at:
            booked_at = v["cancelled_at"] - dt.timedelta(hours=rng.uniform(6, 24 * 10))
        v["late_cancel"] = v["cancelled_at"] >= start - window
    if status == "confirmed" or (status != "booked" and rng.random() < 0.7):
        limit = v["cancelled_at"] or min(start, now)
        v["confirmed_at"] = booked_at + (limit - booked_at) * rng.uniform(0.5, 0.95)
    if status in ("completed", "in_room", "arrived"):
        arrived = start + (_minutes(rng, 1, 12) if rng.random() < 0.15 else -_minutes(rng, 0, 15))
        v["arrived_at"] = min(arrived, now - dt.timedelta(minutes=1))
    if status in ("completed", "in_room"):
        v["roomed_at"] = min(max(v["arrived_at"], start - dt.timedelta(minutes=5)) + _minutes(rng, 1, 8), now)
    if status == "completed":
        v["completed_at"] = min(max(end + _minutes(rng, -5, 12), v["roomed_at"] + dt.timedelta(minutes=5)), now)
    if status == "no_show":
        v["no_show_at"] = min(start + _minutes(rng, 15, 30), now)
    stamps = [t for k, t in v.items() if k.endswith("_at") and t is not None]
    v.update(status=status, booked_at=booked_at, updated_at=max([booked_at, *stamps]), version=1 + len(stamps))
    return v


def history_start(today: dt.date) -> dt.date:
    """The first day of the demo's past: the first of the month HISTORY_MONTHS before today's, so
    that last month is there whole (its claims, remittances and payments)."""
    month = today.year * 12 + today.month - 1 - HISTORY_MONTHS
    return dt.date(month // 12, month % 12 + 1, 1)


def _schedule(ctx: Ctx, rng: random.Random, now: dt.datetime) -> dt.date:
    """Providers, rooms, appointment types, hours, holidays and time off through the services;
    then the visits since the first day of the month HISTORY_MONTHS back (the last WEEKS busier)
    and WEEKS of bookings ahead, a weekly series and a waitlist, the appointment rows inserted
    in bulk. Returns the first day of that past."""
    session = ctx.session
    locs = org.list_locations(ctx)

    def stored(loc: LocationOut) -> Location:  # the row the availability queries take
        row = session.get(Location, loc.id)
        assert row is not None
        return row

    today = lt.local_now(now, locs[0].tz).date()
    first_day, last_day = history_start(today), today + dt.timedelta(weeks=WEEKS)
    monday = first_day - dt.timedelta(days=first_day.weekday())
    user_ids: dict[str, int] = dict(session.execute(sa.text("SELECT username, id FROM hpms_user")).all())
    provs: dict[str, int] = {}
    for username, first, last, cred, base, taxonomy, color, where in PROVIDERS:
        provs[username] = resources.add_provider(
            ctx,
            first_name=first,
            last_name=last,
            credentials=cred,
            npi=_npi(base),
            taxonomy=taxonomy,
            color=color,
            username=username,
            locations=[str(locs[i].id) for i in where],
        ).id
    for username, i, days, opens, closes, rule in HOURS:
        frm = monday + dt.timedelta(days=4) if rule else monday  # the every-other-Friday rule counts from a Friday
        availability.set_hours(
            ctx,
            provs[username],
            location=locs[i].id,
            days=days,
            start=opens,
            end=closes,
            effective_from=frm,
            rrule=rule,
        )
    rooms: dict[int, list[tuple[int, str]]] = {loc.id: [] for loc in locs}
    for i, name, kind in ROOMS:
        room = resources.add_room(ctx, location=locs[i].id, name=name, kind=kind)
        if kind != "equipment":
            rooms[locs[i].id].append((room.id, kind))
    types = []
    for name, minutes, buffer, color, self_bookable, needs_room, code, share in TYPES:
        types.append(
            (
                resources.add_type(
                    ctx,
                    name=name,
                    duration_min=minutes,
                    buffer_min=buffer,
                    color=color,
                    self_bookable=self_bookable,
                    needs_room=needs_room,
                    default_code=code,
                ),
                share,
            )
        )
        if self_bookable:  # patients book these themselves in the portal
            online.set_policy(ctx, type_ref=types[-1][0].id, enabled=True, lead_minutes=120, horizon_days=30)
    for day, name in _holidays(first_day, last_day):
        availability.add_time_off(ctx, start=day.isoformat(), reason=f"{name} (practice closed)")
    conference = today + dt.timedelta(days=17 - today.weekday())  # Thursday and Friday the week after next
    availability.add_time_off(
        ctx,
        provider=provs["drsmith"],
        start=conference.isoformat(),
        end=(conference + dt.timedelta(days=1)).isoformat(),
        reason="CME conference",
    )
    errand = today + dt.timedelta(days=9 - today.weekday())  # Wednesday next week, afternoon
    availability.add_time_off(
        ctx, provider=provs["drnguyen"], start=f"{errand} 13:00", end=f"{errand} 17:00", reason="Personal"
    )

    window = dt.timedelta(hours=org.organization(ctx).late_cancel_hours)
    patients = session.execute(sa.text("SELECT id, mrn FROM patient WHERE active ORDER BY id")).all()
    patient_ids = [pid for pid, _ in patients]
    desk = [user_ids[u] for u in ("frontdesk", "frontdesk2")]
    cal = _Calendar(rooms)
    rows: list[dict] = []

    def place(prov: str, loc, atype, start, *, patient_id=None, series=None, booked_at=None) -> bool:
        duration = dt.timedelta(minutes=atype.duration_min)
        block_end = start + duration + dt.timedelta(minutes=atype.buffer_min)
        day = start.date()  # UTC: a clinic day never crosses midnight UTC in these zones
        pid = patient_id or cal.patient(rng, patient_ids, day)
        if pid is None:
            return False
        visit = _visit(
            rng,
            now=now,
            start=start,
            duration=duration,
            window=window,
            booked_at=booked_at,
            status="booked" if series and start > now else None,
        )
        blocking = visit["status"] in BLOCKING_STATUSES
        room_id = None
        if atype.needs_room or visit["roomed_at"] is not None:
            room_id = cal.room(loc.id, start, block_end, procedure=atype.name == "Procedure")
            if room_id is None:
                return False
        pid_key = ("provider", provs[prov])
        if blocking:
            cal.take(pid_key, start, block_end)
            if room_id is not None:
                cal.take(("room", room_id), start, block_end)
        cal.patient_days.add((pid, day))
        self_booked = atype.self_bookable and rng.random() < 0.4
        rows.append(
            {
                "org_id": ctx.org_id,
                "patient_id": pid,
                "provider_id": provs[prov],
                "location_id": loc.id,
                "room_id": room_id,
                "type_id": atype.id,
                "series_id": series[0] if series else None,
                "series_index": series[1] if series else None,
                "start_utc": start,
                "end_utc": start + duration,
                "block_end_utc": block_end,
                "reason": rng.choice(VISIT_REASONS[atype.name]) if rng.random() < 0.8 else None,
                "override": False,
                "cancel_reason": rng.choice(CANCEL_REASONS) if visit["status"] == "cancelled" else None,
                "booked_by": None if self_booked else user_ids[prov] if rng.random() < 0.1 else rng.choice(desk),
                **visit,
            }
        )
        return True

    # A weekly series first (its times are fixed): follow-ups with Dr. Smith, Tuesdays 08:30.
    by_name = {t.name: t for t, _ in types}
    main = locs[0]
    rule = f"FREQ=WEEKLY;BYDAY=TU;COUNT={SERIES_WEEKS}"
    first_tuesday = today - dt.timedelta(days=today.weekday() - 1 + 21)
    opens_smith = availability.open_time(session, ctx.org_id, provs["drsmith"], stored(main), first_day, last_day)
    created = lt.wall_to_utc(dt.datetime.combine(first_tuesday - dt.timedelta(days=6), dt.time(10, 0)), main.tz)
    series = AppointmentSeries(org_id=ctx.org_id, rrule=rule, tz=main.tz, created_at=created)
    session.add(series)
    session.flush()
    series_patient = patient_ids[len(patient_ids) // 3]
    follow_up = by_name["Follow-up"]
    for index in range(1, SERIES_WEEKS + 1):  # the rule's occurrences: every Tuesday from the first
        naive = dt.datetime.combine(first_tuesday + dt.timedelta(weeks=index - 1), dt.time(8, 30))
        start = lt.wall_to_utc(naive, main.tz)
        end = start + dt.timedelta(minutes=follow_up.duration_min + follow_up.buffer_min)
        if any(s <= start and end <= e for s, e in opens_smith):  # a holiday or time off skips a week
            place(
                "drsmith",
                main,
                follow_up,
                start,
                patient_id=series_patient,
                series=(series.id, index),
                booked_at=created,
            )

    # Then every provider's open time, slot by slot: most of the past filled, the future less
    # and less as it gets further away, lunchtime mostly left free.
    kinds, weights = zip(*types, strict=True)
    for prov, *_, where in PROVIDERS:
        for i in where:
            loc = locs[i]
            for s, e in availability.open_time(session, ctx.org_id, provs[prov], stored(loc), first_day, last_day):
                t = s
                while t + STEP <= e:
                    local = lt.to_local(t, loc.tz)
                    days_ahead = (local.date() - today).days
                    chance = (
                        (0.88 if days_ahead > -7 * WEEKS else 0.55)
                        if days_ahead <= 0
                        else 0.9 - 0.6 * days_ahead / (7 * WEEKS)
                    )
                    if local.hour == 12:
                        chance *= 0.2
                    atype = rng.choices(kinds, weights)[0]
                    block_end = t + dt.timedelta(minutes=atype.duration_min + atype.buffer_min)
                    if (
                        rng.random() < chance
                        and block_end <= e
                        and cal.free(("provider", provs[prov]), t, block_end)
                        and place(prov, loc, atype, t)
                    ):
                        t = block_end + (-(block_end - s)) % STEP  # next start on the quarter hour
                    else:
                        t += STEP

    rows.sort(key=lambda r: r["start_utc"])
    ids = new_ids(session, Appointment.__table__, len(rows))
    for row, new_id in zip(rows, ids, strict=True):
        row["id"] = new_id
    table = Appointment.__table__
    events = []
    for k in range(0, len(rows), patient_import.CHUNK):
        chunk = rows[k : k + patient_import.CHUNK]
        bulk_insert(session, table, chunk)
        events.append(
            audit.Event(
                "create",
                "appointment",
                patient_ids=[r["patient_id"] for r in chunk],
                fields=["patient", "provider", "start", "type", "status"],
                detail=f"demo schedule: appointments {chunk[0]['id']}-{chunk[-1]['id']}",
            )
        )
    # Future cancellations gave their time back: the waitlist's offers come from these.
    freed = [
        {
            "org_id": ctx.org_id,
            "provider_id": r["provider_id"],
            "location_id": r["location_id"],
            "start_utc": r["start_utc"],
            "end_utc": r["block_end_utc"],
            "appointment_id": r["id"],
            "status": "open",
            "freed_at": r["cancelled_at"],
        }
        for r in rows
        if r["status"] == "cancelled" and r["start_utc"] > now
    ]
    bulk_insert(session, FreedSlot.__table__, freed)
    if freed:
        events.append(audit.Event("create", "freed_slot", detail=f"demo schedule: {len(freed)} freed slot(s)"))
    audit.record_many(ctx, events)

    mrns: dict[int, str] = dict(patients)
    waiting = rng.sample(patient_ids, min(4, len(patient_ids)))  # a tiny demo: one patient may wait twice
    for k, (type_name, provider, location, earliest, latest, note) in enumerate(
        (
            ("Follow-up", provs["drsmith"], None, None, last_day, "Would like an earlier visit; mornings preferred"),
            ("New patient", None, locs[1].id, None, None, "New to the area"),
            ("Annual physical", None, None, "tomorrow", None, None),
            ("Telehealth", None, None, None, None, "Can take a video visit at short notice"),
        )
    ):
        waitlist.add(
            ctx,
            patient=mrns[waiting[k % len(waiting)]],
            type=by_name[type_name].id,
            provider=provider,
            location=location,
            earliest=earliest,
            latest=latest,
            note=note,
        )
    return first_day


def _summary(settings: Settings, *, created: bool) -> dict:
    with open_context(settings) as ctx:
        s = ctx.session
        count = lambda table: s.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: E731
        return {
            "created": created,
            "database": redact_url(settings.database_url),
            "home": str(settings.home),
            "organization": org.organization(ctx).name,
            "locations": count("location"),
            "users": count("hpms_user"),
            "payers": count("payer"),
            "patients": count("patient"),
            "coverages": count("coverage"),
            "providers": count("provider"),
            "appointments": count("appointment"),
            "waitlist": count("waitlist_entry"),
            "encounters": count("encounter"),
            "claims": count("claim"),
            "claim_files": count("x12_file"),
            "worklist": s.execute(sa.text("SELECT count(*) FROM worklist_item WHERE resolved_at IS NULL")).scalar_one(),
            "claims_dir": str(Path(settings.home) / CLAIMS_DIR),
            "remittances": count("remittance"),
            "ledger_entries": count("ledger_entry"),
            "era_dir": str(Path(settings.home) / ERA_DIR),
        }
