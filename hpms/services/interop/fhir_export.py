"""FHIR R4 export (bulk NDJSON, or one collection Bundle per patient) and the reads of the FHIR
API (a patient, a patient's appointments, a schedule's slots), all through the mapping of
hpms.interop.fhir.writing.

The export reads each resource type in chunks of rows (keyset pages by id), so a large practice
is never held in memory; its files are written to temp names and renamed when all are done,
0600, and a failure leaves nothing behind (nor the directory, when the export made it). One
audit event names every patient exported. Raises ValidationError, NotFoundError,
PermissionDenied, FileWriteError.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa

from hpms.errors import NotFoundError, ValidationError
from hpms.fileio import atomic_file
from hpms.interop.fhir import writing as w
from hpms.models import Coverage, Location, Organization, Patient, Payer
from hpms.models.patients import PATIENT_FIELDS
from hpms.services.lookups import display_zone, find_patient
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

CHUNK = 1000  # rows read per page of a resource type
FORMATS = ("ndjson", "bundle")
# (Slots come with appointments, the RelatedPersons who subscribe with coverages)
READS = ("Patient", "Coverage", "Appointment", "Encounter", "Claim", "ClaimResponse")
SHARED_TYPES = ("Organization", "Location", "Practitioner", "PractitionerRole", "Schedule")

Resource = dict[str, Any]


@dataclass(frozen=True)
class Scope:
    """What to export: the patients named (None: all), and only what changed since (None: all)."""

    patient_ids: Sequence[int] | None = None
    since: dt.datetime | None = None


def _tables() -> Any:
    """The scheduling and billing tables (they load on first use)."""
    from hpms import models

    return models


def _pages(ctx: Ctx, stmt: sa.Select[Any], id_col: Any) -> Iterator[list[sa.RowMapping]]:
    """The rows of `stmt`, a page of CHUNK at a time, in order of `id_col` (keyset paging: each
    page is one indexed range query, whatever the size of the table)."""
    last = 0
    while True:
        rows = list(ctx.session.execute(stmt.where(id_col > last).order_by(id_col).limit(CHUNK)).mappings())
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


def _scoped(stmt: sa.Select[Any], scope: Scope, patient_col: Any, changed_col: Any) -> sa.Select[Any]:
    if scope.patient_ids is not None:
        stmt = stmt.where(patient_col.in_(list(scope.patient_ids)))
    if scope.since is not None:
        stmt = stmt.where(changed_col >= scope.since)
    return stmt


# ---- the shared resources: the practice, payers, locations, providers --------------------


def shared_resources(ctx: Ctx) -> list[Resource]:
    """The practice, its payers, locations, providers, and each provider at each location (a
    PractitionerRole and a Schedule): small, read whole."""
    m = _tables()
    s = ctx.session
    org = s.get(Organization, ctx.org_id)
    assert org is not None
    profile = s.get(m.BillingProfile, ctx.org_id)
    out: list[Resource] = [w.practice({"id": org.id, "name": org.name, "tax_id": profile.tax_id if profile else None})]
    for row in s.execute(sa.select(Payer).where(Payer.org_id == ctx.org_id).order_by(Payer.id)).scalars():
        out.append(w.payer(row.model_dump()))
    for loc in s.execute(sa.select(Location).where(Location.org_id == ctx.org_id).order_by(Location.id)).scalars():
        out.append(w.location(loc.model_dump()))
    providers = s.execute(sa.select(m.Provider).where(m.Provider.org_id == ctx.org_id).order_by(m.Provider.id))
    for prov in providers.scalars():
        out.append(w.practitioner(prov.model_dump()))
    pairs = s.execute(
        sa.select(
            m.ProviderLocation.provider_id,
            m.ProviderLocation.location_id,
            m.Provider.org_id,
            m.Provider.taxonomy,
            m.Provider.active,
        )
        .join(m.Provider, m.Provider.id == m.ProviderLocation.provider_id)
        .where(m.Provider.org_id == ctx.org_id)
        .order_by(m.ProviderLocation.provider_id, m.ProviderLocation.location_id)
    ).mappings()
    for pair in pairs:
        out.append(w.practitioner_role(pair))
        out.append(w.schedule(pair))
    return out


# ---- the patients' resources, streamed ------------------------------------------------------


def _patients(ctx: Ctx, scope: Scope, include_ssn: bool) -> Iterator[Resource]:
    stmt = _scoped(sa.select(Patient).where(Patient.org_id == ctx.org_id), scope, Patient.id, Patient.updated_at)
    for page in _pages(ctx, stmt.with_only_columns(*Patient.__table__.c), Patient.id):
        for row in page:
            ssn = ctx.crypto.decrypt(row["ssn_enc"], "ssn") if include_ssn and row["ssn_enc"] else None
            yield w.patient(row, ssn=ssn)


def _coverages(ctx: Ctx, scope: Scope, include_ssn: bool) -> Iterator[Resource]:
    stmt = (
        sa.select(*Coverage.__table__.c, Payer.payer_id.label("payer_code"))
        .join(Payer, Payer.id == Coverage.payer_id)
        .where(Coverage.org_id == ctx.org_id)
    )
    stmt = _scoped(stmt, scope, Coverage.patient_id, Coverage.created_at)
    for page in _pages(ctx, stmt, Coverage.id):
        for row in page:
            if w.has_subscriber(row):  # the RelatedPerson the Coverage names, first
                yield w.subscriber(row)
            yield w.coverage(row, member_id=ctx.crypto.decrypt(row["member_id_enc"], "member_id"))


def _appointment_columns() -> list[Any]:
    """The columns the mapping reads (each time column costs a conversion per row)."""
    m = _tables()
    a = m.Appointment
    names = (
        "id",
        "patient_id",
        "provider_id",
        "location_id",
        "start_utc",
        "end_utc",
        "block_end_utc",
        "status",
        "reason",
        "cancel_reason",
        "booked_at",
    )
    return [*(a.__table__.c[n] for n in names), m.AppointmentType.name.label("type_name")]


def _appointments(ctx: Ctx, scope: Scope, include_ssn: bool) -> Iterator[Resource]:
    """Each appointment, after the busy Slot it holds when it blocks its time (one read for both)."""
    m = _tables()
    a = m.Appointment
    stmt = (
        sa.select(*_appointment_columns())
        .join(m.AppointmentType, m.AppointmentType.id == a.type_id)
        .where(a.org_id == ctx.org_id)
    )
    for page in _pages(ctx, _scoped(stmt, scope, a.patient_id, a.updated_at), a.id):
        for row in page:
            if row["status"] in w.BLOCKING:
                yield w.busy_slot(row)
            yield w.appointment(row)


def _diagnoses(ctx: Ctx, encounter_ids: Iterable[int]) -> dict[int, list[str]]:
    m = _tables()
    d = m.EncounterDiagnosis
    out: dict[int, list[str]] = {}
    rows = ctx.session.execute(
        sa.select(d.encounter_id, d.code).where(d.encounter_id.in_(list(encounter_ids))).order_by(d.encounter_id, d.seq)
    )
    for enc_id, code in rows:
        out.setdefault(enc_id, []).append(code)
    return out


def _encounters(ctx: Ctx, scope: Scope, include_ssn: bool) -> Iterator[Resource]:
    e = _tables().Encounter
    stmt = _scoped(sa.select(*e.__table__.c).where(e.org_id == ctx.org_id), scope, e.patient_id, e.updated_at)
    for page in _pages(ctx, stmt, e.id):
        dx = _diagnoses(ctx, [r["id"] for r in page])
        for row in page:
            yield w.encounter(row, diagnoses=dx.get(row["id"], []))


def _claims(ctx: Ctx, scope: Scope, include_ssn: bool) -> Iterator[Resource]:
    m = _tables()
    c, e, line = m.Claim, m.Encounter, m.ClaimLine
    stmt = (
        sa.select(*c.__table__.c, e.provider_id, e.service_date)
        .join(e, e.id == c.encounter_id)
        .where(c.org_id == ctx.org_id)
    )
    for page in _pages(ctx, _scoped(stmt, scope, c.patient_id, c.updated_at), c.id):
        lines: dict[int, list[sa.RowMapping]] = {}
        for row in ctx.session.execute(
            sa.select(*line.__table__.c)
            .where(line.claim_id.in_([r["id"] for r in page]))
            .order_by(line.claim_id, line.seq)
        ).mappings():
            lines.setdefault(row["claim_id"], []).append(row)
        dx = _diagnoses(ctx, {r["encounter_id"] for r in page})
        for row in page:
            yield w.claim(row, lines=lines.get(row["id"], []), diagnoses=dx.get(row["encounter_id"], []))


def _claim_responses(ctx: Ctx, scope: Scope, include_ssn: bool) -> Iterator[Resource]:
    m = _tables()
    rc, r, c, adj = m.RemitClaim, m.Remittance, m.Claim, m.RemitAdjustment
    stmt = (
        sa.select(
            rc.id,
            rc.status_code,
            rc.charge_cents,
            rc.paid_cents,
            rc.patient_resp_cents,
            rc.payer_claim_number,
            rc.claim_id,
            r.payment_date,
            r.trace_number,
            r.created_at,
            c.patient_id,
            c.payer_id,
        )
        .join(r, r.id == rc.remittance_id)
        .join(c, c.id == rc.claim_id)
        .where(rc.org_id == ctx.org_id)
    )
    for page in _pages(ctx, _scoped(stmt, scope, c.patient_id, r.created_at), rc.id):
        adjustments: dict[int, list[sa.RowMapping]] = {}
        for row in ctx.session.execute(
            sa.select(adj.remit_claim_id, adj.group_code, adj.reason_code, adj.amount_cents)
            .where(adj.remit_claim_id.in_([p["id"] for p in page]))
            .order_by(adj.remit_claim_id, adj.id)
        ).mappings():
            adjustments.setdefault(row["remit_claim_id"], []).append(row)
        for row in page:
            yield w.claim_response(row, adjustments=adjustments.get(row["id"], []))


Producer = Callable[["Ctx", Scope, bool], Iterator[Resource]]
PRODUCERS: dict[str, Producer] = {
    "Patient": _patients,
    "Coverage": _coverages,  # and the subscribers (RelatedPerson)
    "Appointment": _appointments,  # and the busy Slots
    "Encounter": _encounters,
    "Claim": _claims,
    "ClaimResponse": _claim_responses,
}


def _patients_touched(ctx: Ctx, scope: Scope) -> Iterator[int]:
    """The ids of the patients with something to export in `scope`, in order."""
    if scope.patient_ids is not None and scope.since is None:
        yield from scope.patient_ids
        return
    m = _tables()
    sources = [
        (Patient.id, Patient.updated_at, Patient.org_id),
        (Coverage.patient_id, Coverage.created_at, Coverage.org_id),
        (m.Appointment.patient_id, m.Appointment.updated_at, m.Appointment.org_id),
        (m.Encounter.patient_id, m.Encounter.updated_at, m.Encounter.org_id),
        (m.Claim.patient_id, m.Claim.updated_at, m.Claim.org_id),
    ]
    selects = [
        _scoped(sa.select(pid.label("id")).where(org == ctx.org_id), scope, pid, changed)
        for pid, changed, org in sources
    ]
    answers = (
        sa.select(m.Claim.patient_id.label("id"))
        .join(m.RemitClaim, m.RemitClaim.claim_id == m.Claim.id)
        .join(m.Remittance, m.Remittance.id == m.RemitClaim.remittance_id)
        .where(m.Claim.org_id == ctx.org_id)
    )
    selects.append(_scoped(answers, scope, m.Claim.patient_id, m.Remittance.created_at))
    union = sa.union(*selects).subquery()
    last = 0
    while True:
        ids = list(
            ctx.session.execute(
                sa.select(union.c.id).where(union.c.id > last).order_by(union.c.id).limit(CHUNK)
            ).scalars()
        )
        if not ids:
            return
        yield from ids
        last = ids[-1]


# ---- the export ----------------------------------------------------------------------------


def _references(value: Any, into: set[str]) -> None:
    if isinstance(value, dict):
        target = value.get("reference")
        if isinstance(target, str):
            into.add(target)
        for item in value.values():
            _references(item, into)
    elif isinstance(value, list):
        for item in value:
            _references(item, into)


def _referenced(resources: list[Resource], shared: dict[str, Resource]) -> list[Resource]:
    """The shared resources `resources` point to, and those they point to in turn, in order."""
    wanted: set[str] = set()
    _references(resources, wanted)
    found: dict[str, Resource] = {}
    while True:
        new = {k for k in wanted if k in shared and k not in found}
        if not new:
            break
        for key in new:
            found[key] = shared[key]
        _references([shared[k] for k in new], wanted)
    return [r for key, r in shared.items() if key in found]


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def _dumps(resource: Resource) -> str:
    return _ENCODER.encode(resource)


def parse_since(ctx: Ctx, since: str | dt.date | None) -> dt.datetime | None:
    """The start (UTC) of the day `since` (YYYY-MM-DD, yesterday, -7 days...), in the
    practice's zone; None when not given."""
    if since is None or (isinstance(since, str) and not since.strip()):
        return None
    zone = display_zone(ctx)
    day = lt.parse_day("since", since, today=lt.local_now(ctx.now(), zone).date())
    return lt.day_bounds_utc(day, zone)[0]


@contextlib.contextmanager
def _output_directory(out: str | Path | None) -> Iterator[tuple[Path, list[Path]]]:
    """The directory to write into (made, 0700, when missing) and the list of files written;
    on an error the files and the directories made are removed."""
    if out is None or not str(out).strip():
        raise ValidationError("out", "is required")
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ValidationError("out", f"{str(path)!r} is not a directory")
    made: list[Path] = []
    missing = path
    while not missing.exists():
        made.append(missing)
        missing = missing.parent
    try:
        for directory in reversed(made):
            directory.mkdir(mode=0o700)
    except OSError as exc:
        for directory in made:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise ValidationError("out", f"cannot create {str(path)!r}: {exc.strerror or exc}") from None
    written: list[Path] = []
    try:
        yield path, written
    except BaseException:
        for f in written:
            with contextlib.suppress(OSError):
                f.unlink()
        for directory in made:  # innermost first
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def export(
    ctx: Ctx,
    *,
    out: str | Path | None,
    patient: str | int | None = None,
    since: str | dt.date | None = None,
    format: str = "ndjson",
    include_ssn: bool = False,
) -> dict[str, Any]:
    """Write the practice's records as FHIR R4 resources into the directory `out`: NDJSON, one
    file per resource type (`Patient.ndjson`, ...), or one collection Bundle per patient
    (`Patient-<id>.json`). `patient` (an MRN or id) limits it to one patient, `since` (a day)
    to what changed since; SSNs only with `include_ssn`. Returns the counts per resource type
    and the files. Raises ValidationError, NotFoundError, PermissionDenied, FileWriteError."""
    require(ctx.actor, "fhir.export")
    if include_ssn:
        require(ctx.actor, "patient.reveal_ssn")
    fmt = (format or "").strip().lower()
    if fmt not in FORMATS:
        raise ValidationError("format", f"{format!r} is not a format (one of: {', '.join(FORMATS)})")
    start = parse_since(ctx, since)
    ids: list[int] | None = None
    if patient is not None:
        ids = [find_patient(ctx, patient, field="patient", include_merged=True).id or 0]
    scope = Scope(patient_ids=ids, since=start)
    shared = shared_resources(ctx)
    with _output_directory(out) as (directory, written):
        run = _Run(ctx, directory, scope, include_ssn, shared, written=written)
        (_write_ndjson if fmt == "ndjson" else _write_bundles)(run)
        fields = ["member_id"] + (["ssn"] if include_ssn else [])
        summary = ", ".join(f"{k} {n}" for k, n in run.counts.items() if n)
        event = audit.Event(
            "export", "fhir", None, patient_ids=sorted(run.exported), fields=fields, detail=f"{fmt}: {summary}"[:500]
        )
        audit.record(ctx, event)
    return {
        "format": fmt,
        "directory": str(directory),
        "patients": len(run.exported),
        "counts": run.counts,
        "files": [str(p) for p in written],
        "ssn_included": include_ssn,
    }


def _note_patients(resource: Resource, exported: set[int]) -> None:
    if resource["resourceType"] == "Patient":
        exported.add(int(resource["id"]))
        return
    for key in ("beneficiary", "patient", "subject"):
        target = resource.get(key)
        if isinstance(target, dict) and str(target.get("reference", "")).startswith("Patient/"):
            exported.add(int(target["reference"].split("/", 1)[1]))


@dataclass
class _Run:
    """One export under way: where it writes, what it exports, what it has written and counted."""

    ctx: Ctx
    directory: Path
    scope: Scope
    include_ssn: bool
    shared: list[Resource]
    written: list[Path] = dataclasses.field(default_factory=list)
    counts: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(w.RESOURCE_TYPES, 0))
    exported: set[int] = dataclasses.field(default_factory=set)

    def produce(self, kind: str, scope: Scope) -> Iterator[Resource]:
        return PRODUCERS[kind](self.ctx, scope, self.include_ssn)


def _write_ndjson(run: _Run) -> None:
    paths = [run.directory / f"{kind}.ndjson" for kind in w.RESOURCE_TYPES]
    with contextlib.ExitStack() as stack:
        files: dict[str, IO[Any]] = {
            kind: stack.enter_context(atomic_file(path, field="out", mode=0o600, encoding="utf-8"))
            for kind, path in zip(w.RESOURCE_TYPES, paths)
        }
        for resource in run.shared:
            files[resource["resourceType"]].write(_dumps(resource) + "\n")
            run.counts[resource["resourceType"]] += 1
        for kind in READS:
            for resource in run.produce(kind, run.scope):
                made = resource["resourceType"]
                files[made].write(_dumps(resource) + "\n")
                run.counts[made] += 1
                _note_patients(resource, run.exported)
    run.written += paths  # all renamed into place


def _write_bundles(run: _Run) -> None:
    by_key = {f"{r['resourceType']}/{r['id']}": r for r in run.shared}
    now = run.ctx.now()
    for pid in list(_patients_touched(run.ctx, run.scope)):
        one = Scope(patient_ids=[pid], since=run.scope.since)
        own = [r for kind in READS for r in run.produce(kind, one)]
        if not own:
            continue
        resources = own + _referenced(own, by_key)
        for r in resources:
            run.counts[r["resourceType"]] += 1
        run.exported.add(pid)
        path = run.directory / f"Patient-{pid}.json"
        with atomic_file(path, field="out", mode=0o600, encoding="utf-8") as fh:
            fh.write(_dumps(w.collection(resources, bundle_id=f"patient-{pid}", timestamp=now)) + "\n")
        run.written.append(path)


# ---- the read API --------------------------------------------------------------------------


def _id(field: str, value: str | int | None, kind: str) -> int:
    """A logical id of `kind` ("12" or "Patient/12") as the hpms id; NotFoundError otherwise."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise ValidationError(field, "is required")
    if text.startswith(f"{kind}/"):
        text = text.split("/", 1)[1]
    if not text.isdigit() or len(text) > 18:
        raise NotFoundError(f"no {kind} {text!r}", field=field)
    return int(text)


def read_patient(ctx: Ctx, patient_id: str | int) -> Resource:
    """One Patient resource by its logical id (no SSN). Raises NotFoundError, PermissionDenied."""
    require(ctx.actor, "patient.read")
    pid = _id("id", patient_id, "Patient")
    row = (
        ctx.session.execute(sa.select(*Patient.__table__.c).where(Patient.id == pid, Patient.org_id == ctx.org_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"no Patient {pid}", field="id")
    audit.record(
        ctx, audit.Event("read", "patient", pid, patient_id=pid, fields=[*PATIENT_FIELDS, "mrn"], detail="fhir")
    )
    return w.patient(row)


DATE_PREFIXES = ("eq", "ge", "le", "gt", "lt")


def _date_bounds(ctx: Ctx, field: str, values: Sequence[str]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """FHIR date search values (`2026-12-07`, `ge2026-12-01`, `le...`, `gt`, `lt`) as a UTC
    range [low, high), each day read in the practice's zone."""
    zone = display_zone(ctx)
    low: dt.datetime | None = None
    high: dt.datetime | None = None
    for raw in values:
        text = raw.strip()
        prefix = text[:2] if text[:2] in DATE_PREFIXES else "eq"
        day = v.parse_date(field, text[2:] if text[:2] in DATE_PREFIXES else text, required=True)
        assert day is not None
        start, end = lt.day_bounds_utc(day, zone)
        lo, hi = {
            "eq": (start, end),
            "ge": (start, None),
            "gt": (end, None),
            "le": (None, end),
            "lt": (None, start),
        }[prefix]
        if lo is not None:
            low = lo if low is None else max(low, lo)
        if hi is not None:
            high = hi if high is None else min(high, hi)
    return low, high


MAX_SEARCH = 500


def search_appointments(ctx: Ctx, *, patient: str | int | None, date: Sequence[str] = ()) -> list[Resource]:
    """A patient's appointments (by the patient's logical id), earliest first, those starting on
    the days `date` gives (FHIR date search, prefixes eq, ge, gt, le, lt); at most 500.
    Raises ValidationError, NotFoundError, PermissionDenied."""
    require(ctx.actor, "appointment.read")
    pid = _id("patient", patient, "Patient")
    if (
        ctx.session.execute(sa.select(Patient.id).where(Patient.id == pid, Patient.org_id == ctx.org_id)).first()
        is None
    ):
        raise NotFoundError(f"no Patient {pid}", field="patient")
    low, high = _date_bounds(ctx, "date", date)
    m = _tables()
    a = m.Appointment
    stmt = (
        sa.select(*_appointment_columns())
        .join(m.AppointmentType, m.AppointmentType.id == a.type_id)
        .where(a.org_id == ctx.org_id, a.patient_id == pid)
    )
    if low is not None:
        stmt = stmt.where(a.start_utc >= low)
    if high is not None:
        stmt = stmt.where(a.start_utc < high)
    rows = ctx.session.execute(stmt.order_by(a.start_utc, a.id).limit(MAX_SEARCH)).mappings().all()
    audit.record_list(ctx, "appointment", [pid], len(rows), detail=f"fhir search of {len(rows)}")
    return [w.appointment(r) for r in rows]


def search_slots(ctx: Ctx, *, schedule: str | None, start: str | None) -> list[Resource]:
    """The Slots of a schedule (a provider at a location, id `<provider>-<location>`) on the
    day `start` (in the location's zone): its open time cut on the practice's slot grid
    (free) and its bookings (busy), in order. Raises ValidationError, NotFoundError,
    PermissionDenied."""
    from hpms.services.scheduling.availability import merge, open_time, subtract

    require(ctx.actor, "schedule.read")
    m = _tables()
    text = "" if schedule is None else str(schedule).strip().removeprefix("Schedule/")
    prov_text, _, loc_text = text.partition("-")
    if not text:
        raise ValidationError("schedule", "is required")
    if not (prov_text.isdigit() and loc_text.isdigit()) or len(text) > 40:
        raise NotFoundError(f"no Schedule {text!r}", field="schedule")
    pair = ctx.session.execute(
        sa.select(m.Provider, Location)
        .join(m.ProviderLocation, m.ProviderLocation.provider_id == m.Provider.id)
        .join(Location, Location.id == m.ProviderLocation.location_id)
        .where(
            m.Provider.org_id == ctx.org_id,
            m.Provider.id == int(prov_text),
            Location.id == int(loc_text),
        )
    ).first()
    if pair is None:
        raise NotFoundError(f"no Schedule {text!r}", field="schedule")
    prov, loc = pair
    if start is None or not str(start).strip():
        raise ValidationError("start", "is required")
    day = v.parse_date("start", str(start).strip().removeprefix("eq"), required=True)
    assert day is not None and prov.id is not None and loc.id is not None
    lo, hi = lt.day_bounds_utc(day, loc.tz)
    a = m.Appointment
    booked = (
        ctx.session.execute(
            sa.select(a.id, a.provider_id, a.location_id, a.start_utc, a.end_utc, a.block_end_utc, a.status)
            .where(
                a.provider_id == prov.id,
                a.status.in_(sorted(w.BLOCKING)),
                a.start_utc < hi,
                a.block_end_utc > lo,
            )
            .order_by(a.start_utc)
        )
        .mappings()
        .all()
    )
    org = ctx.session.get(Organization, ctx.org_id)
    step = dt.timedelta(minutes=org.slot_step_min if org else 15)
    free = subtract(
        open_time(ctx.session, ctx.org_id, prov.id, loc, day, day),
        merge((r["start_utc"], r["block_end_utc"]) for r in booked),
    )
    out: list[tuple[dt.datetime, Resource]] = []
    for s, e in free:
        t = s
        while t + step <= e:
            out.append((t, w.free_slot(prov.id, loc.id, t, t + step)))
            t += step
    out += [(r["start_utc"], w.busy_slot(r)) for r in booked if r["location_id"] == loc.id]
    return [r for _, r in sorted(out, key=lambda pair: (pair[0], pair[1]["status"]))]


def capability(*, base: str, today: dt.date) -> Resource:
    """The CapabilityStatement of the read API (no database, no permission: it is public)."""
    from hpms import __version__

    return w.capability_statement(software_version=__version__, base=base, date=today)


__all__ = [
    "FORMATS",
    "capability",
    "export",
    "read_patient",
    "search_appointments",
    "search_slots",
    "shared_resources",
]
