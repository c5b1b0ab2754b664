"""Encounters (charge capture): a visit's diagnoses and billed procedure lines, drafted,
corrected, then signed as ready to bill (the superbill printout is in superbill.py).

Diagnoses are ICD-10-CM codes: "E11.9" and "E119" are both accepted and stored undotted
("E119"); a code must exist and be billable (a category such as E11 is refused). At most 12.

A procedure line is written CODE[:MODS[xUNITS]][:POINTERS]:
  CODE      a HCPCS/CPT code known to the practice's code sets, e.g. 99213
  MODS      up to 4 modifiers separated by commas, e.g. 25 or 25,59
  xUNITS    a lowercase x and the units, 1-999 (default 1)
  POINTERS  up to 4 diagnosis positions (1-12) separated by commas, each naming a diagnosis
            given (default: 1, the first diagnosis; none while there is no diagnosis)
With one colon, the part after it is POINTERS when it is only digits and commas, otherwise
MODS[xUNITS]; so a numeric modifier needs the second colon. Examples:
  99213:25x1:1,2  modifier 25, 1 unit, diagnoses 1 and 2
  99213::1        no modifier, 1 unit, diagnosis 1
  99213:x2:1      2 units, diagnosis 1
  99213:1         diagnosis 1 (the same as 99213::1)
  99213:LT        modifier LT, diagnosis 1
  99213:25:1      modifier 25 (99213:25 would mean diagnosis pointer 25)

Each line is priced from the default fee schedule when it is entered (unit price x units);
a code without a fee is refused. The claim is priced again per payer by the billing run.

States: draft -> signed (ready to bill) -> billed (by the billing run); void. Only a draft is
changed. An encounter for an appointment takes the patient, provider, location and date of
the appointment, one encounter per appointment; a cancelled or no-show appointment is refused
with ConflictError (exit 4: the appointment's state forbids it, like any refused state
change). Place of service comes from the location unless given; the rendering provider is the
encounter's provider, the billing provider the practice (its location's NPI and tax id).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.codes import icd10
from hpms.codes.procedures import check_modifier
from hpms.errors import Action, ConflictError, ValidationError
from hpms.models import Location, Patient, Provider, User
from hpms.models.billing import ENCOUNTER_STATUSES, Encounter, EncounterDiagnosis, EncounterLine
from hpms.models.billing_out import DiagnosisOut, EncounterOut, EncounterSummary, LineOut, money
from hpms.models.scheduling import FREE_STATUSES
from hpms.services.billing import fees
from hpms.services.billing.rows import referenced
from hpms.services.lookups import find_patient, find_provider, load_appointment, load_encounter
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require
from hpms.services.scheduling.availability import provider_location

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

MAX_DIAGNOSES = 12
MAX_POINTERS = 4
MAX_MODIFIERS = 4
MAX_LINES = 50  # service lines of one 837P claim
MAX_UNITS = 999
PROC_SYNTAX = "CODE[:MODS[xUNITS]][:POINTERS], e.g. 99213:25x1:1,2"
Codes = str | Sequence[str] | None  # "E11.9,I10", "E11.9 I10" or a list of such strings

_POINTER_LIST = re.compile(r"[\d,\s]+")
_MODS_UNITS = re.compile(r"(.*?)x([-+]?\d*)")
_POS = re.compile(r"\d{2}")


@dataclass(frozen=True)
class ProcLine:
    code: str
    modifiers: tuple[str, ...]
    units: int
    pointers: tuple[int, ...]


# ---- parsing -------------------------------------------------------------------------------


def _split(value: Codes) -> list[str]:
    """'E11.9,I10', 'E11.9 I10' or a list of such strings -> the items."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [part for item in items for part in re.split(r"[,\s]+", str(item).strip()) if part]


def parse_dx(dx: Codes, *, field: str = "dx") -> list[str]:
    """Diagnosis codes, in order, undotted; each must exist and be billable. At most 12, none
    twice."""
    codes: list[str] = []
    for text in _split(dx):
        found = icd10.lookup(text)
        if found is None:
            raise ValidationError(field, f"unknown ICD-10-CM code {text!r}")
        if not found.billable:
            more = ", ".join(c.dotted for c in icd10.descendants(found.code, limit=3))
            raise ValidationError(
                field,
                f"{found.dotted} ({found.description}) is a category, not a billable "
                "code; give a more specific code" + (f" such as {more}" if more else ""),
            )
        if found.code in codes:
            raise ValidationError(field, f"{found.dotted} is listed twice")
        codes.append(found.code)
    if len(codes) > MAX_DIAGNOSES:
        raise ValidationError(field, f"{len(codes)} diagnoses given; a claim takes at most {MAX_DIAGNOSES}")
    return codes


def _modifiers(text: str, where: str) -> tuple[str, ...]:
    if not text.strip():
        return ()
    mods: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise ValidationError("proc", f"{where}: an empty modifier")
        try:
            mod = check_modifier(item)
        except ValueError as exc:
            raise ValidationError("proc", f"{where}: {exc}") from None
        if mod in mods:
            raise ValidationError("proc", f"{where}: modifier {mod} is given twice")
        mods.append(mod)
    if len(mods) > MAX_MODIFIERS:
        raise ValidationError("proc", f"{where}: {len(mods)} modifiers; a line takes at most {MAX_MODIFIERS}")
    return tuple(mods)


def _units(text: str, where: str) -> int:
    if not text:
        raise ValidationError("proc", f"{where}: the units are missing after x")
    units = int(text)
    if units < 1:
        raise ValidationError("proc", f"{where}: units must be at least 1 (got {units})")
    if units > MAX_UNITS:
        raise ValidationError("proc", f"{where}: units must be at most {MAX_UNITS} (got {units})")
    return units


def _pointers(text: str, where: str, n_dx: int) -> tuple[int, ...]:
    if not text.strip():
        return (1,) if n_dx else ()
    pointers: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit():
            raise ValidationError("proc", f"{where}: diagnosis pointer {item!r} is not a number 1-{MAX_DIAGNOSES}")
        p = int(item)
        if not 1 <= p <= MAX_DIAGNOSES:
            raise ValidationError(
                "proc",
                f"{where}: diagnosis pointer {p} is out of range 1-{MAX_DIAGNOSES}"
                + (f" (for modifier {item}, write CODE:{item}:1)" if len(item) == 2 else ""),
            )
        if p > n_dx:
            raise ValidationError("proc", f"{where}: diagnosis pointer {p} refers to no diagnosis ({n_dx} given)")
        if p in pointers:
            raise ValidationError("proc", f"{where}: diagnosis pointer {p} is given twice")
        pointers.append(p)
    if len(pointers) > MAX_POINTERS:
        raise ValidationError(
            "proc", f"{where}: {len(pointers)} diagnosis pointers; a line takes at most {MAX_POINTERS}"
        )
    return tuple(pointers)


def parse_proc(ctx: Ctx, text: str, n_dx: int, *, index: int = 1) -> ProcLine:
    """One line in the syntax of this module's docstring; `n_dx` diagnoses are on the
    encounter (pointers must refer to one of them)."""
    raw = str(text).strip()
    where = f"line {index} {raw!r}"
    parts = raw.split(":")
    if not raw or len(parts) > 3:
        raise ValidationError("proc", f"{where} is not {PROC_SYNTAX}")
    code = fees.parse_code(ctx, "proc", parts[0]) if parts[0].strip() else None
    if code is None:
        raise ValidationError("proc", f"{where}: the procedure code is missing")
    mods_units, pointers = "", ""
    if len(parts) == 2:
        if _POINTER_LIST.fullmatch(parts[1]):
            pointers = parts[1]
        else:
            mods_units = parts[1]
    elif len(parts) == 3:
        mods_units, pointers = parts[1], parts[2]
    units = 1
    m = _MODS_UNITS.fullmatch(mods_units.strip())
    if m:
        mods_text = m.group(1)
        units = _units(m.group(2), where)
    else:
        mods_text = mods_units
    return ProcLine(
        code=code, modifiers=_modifiers(mods_text, where), units=units, pointers=_pointers(pointers, where, n_dx)
    )


def parse_lines(ctx: Ctx, proc: Codes, n_dx: int) -> list[ProcLine]:
    items = [proc] if isinstance(proc, str) else list(proc or [])
    items = [str(i).strip() for i in items if str(i).strip()]
    if len(items) > MAX_LINES:
        raise ValidationError("proc", f"{len(items)} lines given; a claim takes at most {MAX_LINES}")
    return [parse_proc(ctx, text, n_dx, index=i) for i, text in enumerate(items, 1)]


def parse_place_of_service(value) -> str | None:
    text = v.clean(None if value is None else str(value))
    if text is None:
        return None
    if len(text) == 1 and text.isdigit():
        text = "0" + text
    if not _POS.fullmatch(text) or text == "00":
        raise ValidationError(
            "place_of_service",
            f"{text!r} is not a CMS place-of-service code (two digits, e.g. 11 office, 02 telehealth)",
        )
    return text


def _priced(ctx: Ctx, lines: Sequence[ProcLine]) -> list[int]:
    """The charge of each line from the default schedule; refuses a code without a fee."""
    schedule = fees.load_schedule(ctx.session, ctx.org_id) if len(lines) > 3 else None
    charges = []
    for i, line in enumerate(lines, 1):
        unit = (
            fees.price_in(schedule, line.code, line.modifiers)
            if schedule is not None
            else fees.price(ctx.session, ctx.org_id, line.code, line.modifiers)
        )
        if unit is None:
            raise ValidationError(
                "proc",
                f"line {i}: no fee for {line.code} on the default schedule",
                action=Action("fees", "set", target=f"{line.code} AMOUNT", purpose="set one with"),
            )
        charges.append(unit * line.units)
    return charges


# ---- loading and output --------------------------------------------------------------------


def _diagnoses(session, encounter_id: int) -> list[EncounterDiagnosis]:
    return list(
        session.execute(
            sa.select(EncounterDiagnosis)
            .where(EncounterDiagnosis.encounter_id == encounter_id)
            .order_by(EncounterDiagnosis.seq)
        ).scalars()
    )


def _lines(session, encounter_id: int) -> list[EncounterLine]:
    return list(
        session.execute(
            sa.select(EncounterLine).where(EncounterLine.encounter_id == encounter_id).order_by(EncounterLine.seq)
        ).scalars()
    )


def _dotted(code: str) -> str:
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


def _dx_out(row: EncounterDiagnosis) -> DiagnosisOut:
    found = icd10.lookup(row.code)
    return DiagnosisOut(
        seq=row.seq,
        code=row.code,
        dotted=found.dotted if found else _dotted(row.code),
        description=found.description if found else None,
    )


def _line_out(row: EncounterLine) -> LineOut:
    return LineOut(
        seq=row.seq,
        code=row.code,
        modifiers=[m for m in row.modifiers.split(",") if m],
        units=row.units,
        pointers=[int(p) for p in row.pointers.split(",") if p],
        charge=money(row.charge_cents),
        service_date=row.service_date,
    )


def _provider_label(p: Provider) -> str:
    name = f"{p.first_name} {p.last_name}"
    return f"{name}, {p.credentials}" if p.credentials else name


def encounter_out(ctx: Ctx, enc: Encounter) -> EncounterOut:
    s = ctx.session
    pat = referenced(s, Patient, enc.patient_id)
    prov = referenced(s, Provider, enc.provider_id)
    loc = referenced(s, Location, enc.location_id)
    signer = s.get(User, enc.signed_by) if enc.signed_by else None
    local = lambda t: lt.to_local(t, loc.tz) if t is not None else None  # noqa: E731
    return EncounterOut(
        id=enc.id,
        status=enc.status,
        service_date=enc.service_date,
        place_of_service=enc.place_of_service,
        patient_id=pat.id,
        patient=f"{pat.first_name} {pat.last_name}",
        mrn=pat.mrn,
        dob=pat.dob,
        provider_id=prov.id,
        provider=_provider_label(prov),
        provider_npi=prov.npi,
        location_id=loc.id,
        location=loc.name,
        location_npi=loc.npi,
        appointment_id=enc.appointment_id,
        diagnoses=[_dx_out(d) for d in _diagnoses(s, enc.id)],
        lines=[_line_out(x) for x in _lines(s, enc.id)],
        total=money(enc.total_cents),
        signed_at=local(enc.signed_at),
        signed_by=signer.username if signer else None,
        billed_at=local(enc.billed_at),
        created_at=local(enc.created_at),
        updated_at=local(enc.updated_at),
        version=enc.version,
    )


def _write_details(
    ctx: Ctx, enc: Encounter, dx: list[str] | None, lines: list[ProcLine] | None, charges: list[int] | None
) -> None:
    s = ctx.session
    if dx is not None:
        s.execute(sa.delete(EncounterDiagnosis).where(EncounterDiagnosis.encounter_id == enc.id))
        if dx:
            s.execute(
                sa.insert(EncounterDiagnosis.__table__),
                [{"encounter_id": enc.id, "seq": i, "code": code} for i, code in enumerate(dx, 1)],
            )
    if lines is not None:
        s.execute(sa.delete(EncounterLine).where(EncounterLine.encounter_id == enc.id))
        if lines:
            s.execute(
                sa.insert(EncounterLine.__table__),
                [
                    {
                        "encounter_id": enc.id,
                        "seq": i,
                        "code": ln.code,
                        "modifiers": ",".join(ln.modifiers),
                        "units": ln.units,
                        "pointers": ",".join(str(p) for p in ln.pointers),
                        "charge_cents": charge,
                        "service_date": enc.service_date,
                    }
                    for i, (ln, charge) in enumerate(zip(lines, charges, strict=True), 1)
                ],
            )
        enc.total_cents = sum(charges)


def _flush(session) -> None:
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:
        if "uq_encounter_appointment" in str(exc.orig) or "encounter.appointment_id" in str(exc.orig):
            raise ConflictError(
                "the appointment got an encounter from someone else just now",
                field="appointment",
                action=Action("encounters", "list"),
            ) from None
        raise


# ---- writing -------------------------------------------------------------------------------


def create(
    ctx: Ctx,
    *,
    appointment: str | int | None = None,
    patient: str | int | None = None,
    provider: str | int | None = None,
    date: str | dt.date | None = None,
    location: str | int | None = None,
    dx: Codes = None,
    proc: Codes = None,
    place_of_service: str | None = None,
) -> EncounterOut:
    """Record a visit's diagnoses and procedure lines as a draft encounter.

    With `appointment`: patient, provider, location and date of service are the appointment's
    (giving them too is refused); a cancelled or no-show appointment, or one that already has
    an encounter, raises ConflictError. Without: `patient`, `provider` and `date` (not in the
    future) are required, `location` defaults to the provider's only location. `dx`: codes ('E11.9,I10' or a list);
    `proc`: lines in the syntax of the module docstring. Raises ValidationError (the field
    named), NotFoundError, ConflictError, PermissionDenied."""
    require(ctx.actor, "encounter.write")
    s = ctx.session
    if appointment is not None and str(appointment).strip():
        for field, value in (
            ("patient", patient),
            ("provider", provider),
            ("date", date),
            ("location", location),
        ):
            if value is not None and str(value).strip():
                raise ValidationError(
                    field, "comes from the appointment; give either an appointment or a patient, provider and date"
                )
        appt = load_appointment(ctx, appointment, field="appointment")
        if appt.status in FREE_STATUSES:
            word = "cancelled" if appt.status == "cancelled" else "a no-show"
            raise ConflictError(f"appointment {appt.id} is {word}; there is no visit to bill", field="appointment")
        taken = s.execute(sa.select(Encounter.id).where(Encounter.appointment_id == appt.id)).scalar()
        if taken is not None:
            raise ConflictError(
                f"appointment {appt.id} already has encounter {taken}",
                field="appointment",
                action=Action("encounters", "update", target=str(taken), purpose="change it with"),
            )
        pat = referenced(s, Patient, appt.patient_id)
        prov = referenced(s, Provider, appt.provider_id)
        loc = referenced(s, Location, appt.location_id)
        service_date = lt.to_local(appt.start_utc, loc.tz).date()
        appt_id = appt.id
    else:
        missing = [
            f
            for f, val in (("patient", patient), ("provider", provider), ("date", date))
            if val is None or not str(val).strip()
        ]
        if missing:
            raise ValidationError(missing[0], "is required without an appointment")
        pat = find_patient(ctx, patient, field="patient", active=True)
        prov = find_provider(ctx, provider)
        if not prov.active:
            raise ValidationError("provider", f"{_provider_label(prov)} is inactive")
        loc = provider_location(ctx, prov, location)
        today = lt.local_now(ctx.now(), loc.tz).date()
        day = lt.parse_day("date", date, today=today)  # YYYY-MM-DD, today, yesterday, -N ...
        if day > today:
            raise ValidationError("date", f"{day} is in the future")
        service_date = day
        appt_id = None
    pos = parse_place_of_service(place_of_service) or loc.place_of_service or "11"
    codes = parse_dx(dx)
    lines = parse_lines(ctx, proc, len(codes))
    charges = _priced(ctx, lines)
    now = ctx.now()
    enc = Encounter(
        org_id=ctx.org_id,
        patient_id=pat.id,
        provider_id=prov.id,
        location_id=loc.id,
        appointment_id=appt_id,
        service_date=service_date,
        place_of_service=pos,
        status="draft",
        total_cents=0,
        created_by=ctx.actor.user_id,
        created_at=now,
        updated_at=now,
    )
    s.add(enc)
    _flush(s)
    _write_details(ctx, enc, codes, lines, charges)
    _flush(s)
    audit.record(
        ctx,
        audit.Event(
            "create",
            "encounter",
            enc.id,
            patient_id=pat.id,
            fields=["service_date", "place_of_service", "diagnoses", "lines"],
            detail=f"{len(codes)} diagnoses, {len(lines)} lines",
        ),
    )
    return encounter_out(ctx, enc)


def _check_version(enc: Encounter, expected_version: int | None) -> None:
    if expected_version is not None and int(expected_version) != enc.version:
        raise ConflictError(
            f"encounter {enc.id} changed since version {expected_version} (now {enc.version})",
            action=Action("encounters", "show", target=str(enc.id), purpose="reload it with"),
        )


def _draft(enc: Encounter, doing: str) -> None:
    if enc.status != "draft":
        raise ConflictError(f"encounter {enc.id} is {enc.status}; only a draft can be {doing}")


def update(
    ctx: Ctx,
    encounter_id: int | str,
    *,
    dx: Codes = None,
    proc: Codes = None,
    place_of_service: str | None = None,
    expected_version: int | None = None,
) -> EncounterOut:
    """Replace a draft's diagnoses (`dx`) and/or lines (`proc`, priced again), or its place of
    service. Lines kept must still point at diagnoses that exist. Raises ConflictError (not a
    draft, stale version), ValidationError, NotFoundError, PermissionDenied."""
    require(ctx.actor, "encounter.write")
    enc = load_encounter(ctx, encounter_id, lock=True)
    _check_version(enc, expected_version)
    _draft(enc, "changed")
    if dx is None and proc is None and place_of_service is None:
        raise ValidationError("options", "nothing to change (give diagnoses, procedure lines or a place of service)")
    s = ctx.session
    codes = parse_dx(dx) if dx is not None else None
    n_dx = len(codes) if codes is not None else len(_diagnoses(s, enc.id))
    lines = charges = None
    fields = []
    if proc is not None:
        lines = parse_lines(ctx, proc, n_dx)
        charges = _priced(ctx, lines)
        fields.append("lines")
    elif codes is not None:
        for row in _lines(s, enc.id):
            dangling = [p for p in row.pointers.split(",") if p and int(p) > n_dx]
            if dangling:
                raise ValidationError(
                    "dx",
                    f"line {row.seq} ({row.code}) points at diagnosis {dangling[0]}, which "
                    f"would no longer exist ({n_dx} given); give the procedure lines too",
                )
    if codes is not None:
        fields.append("diagnoses")
    pos = parse_place_of_service(place_of_service)
    if pos is not None:
        enc.place_of_service = pos
        fields.append("place_of_service")
    _write_details(ctx, enc, codes, lines, charges)
    enc.version += 1
    enc.updated_at = ctx.now()
    _flush(s)
    audit.record(ctx, audit.Event("update", "encounter", enc.id, patient_id=enc.patient_id, fields=fields))
    return encounter_out(ctx, enc)


def sign(ctx: Ctx, encounter_id: int | str, *, expected_version: int | None = None) -> EncounterOut:
    """Mark a draft as signed (ready to bill): it needs at least one diagnosis and one line, and
    every line a diagnosis pointer. Records who signed and when."""
    require(ctx.actor, "encounter.sign")
    enc = load_encounter(ctx, encounter_id, lock=True)
    _check_version(enc, expected_version)
    _draft(enc, "signed")
    s = ctx.session
    if not _diagnoses(s, enc.id):
        raise ValidationError(
            None,
            f"encounter {enc.id} has no diagnosis",
            action=Action("encounters", "update", target=str(enc.id), give=(("dx", "CODE"),), purpose="add one with"),
        )
    lines = _lines(s, enc.id)
    if not lines:
        raise ValidationError(
            None,
            f"encounter {enc.id} has no procedure line",
            action=Action(
                "encounters", "update", target=str(enc.id), give=(("proc", "CODE"),), purpose="add them with"
            ),
        )
    for row in lines:
        if not row.pointers:
            raise ValidationError(
                None,
                f"line {row.seq} ({row.code}) points at no diagnosis",
                action=Action("encounters", "update", target=str(enc.id), give=("proc",), purpose="give pointers with"),
            )
    now = ctx.now()
    enc.status = "signed"
    enc.signed_at = now
    enc.signed_by = ctx.actor.user_id
    enc.version += 1
    enc.updated_at = now
    _flush(s)
    audit.record(
        ctx,
        audit.Event(
            "sign", "encounter", enc.id, patient_id=enc.patient_id, fields=["status", "signed_at", "signed_by"]
        ),
    )
    return encounter_out(ctx, enc)


# ---- reading -------------------------------------------------------------------------------


def show(ctx: Ctx, encounter_id: int | str) -> EncounterOut:
    """One encounter with its diagnoses (with descriptions) and lines."""
    require(ctx.actor, "encounter.read")
    enc = load_encounter(ctx, encounter_id)
    audit.record(ctx, audit.Event("read", "encounter", enc.id, patient_id=enc.patient_id))
    return encounter_out(ctx, enc)


def _statuses(value: Codes) -> list[str]:
    wanted = [w.lower() for w in _split(value)]
    for w in wanted:
        if w not in ENCOUNTER_STATUSES:
            raise ValidationError("status", f"unknown status {w!r} (one of: {', '.join(ENCOUNTER_STATUSES)})")
    return wanted


def list_encounters(
    ctx: Ctx,
    *,
    status: Codes = None,
    patient: str | int | None = None,
    since: str | dt.date | None = None,
    until: str | dt.date | None = None,
    provider: str | int | None = None,
    limit: int = 1000,
) -> list[EncounterSummary]:
    """Encounters by date of service (oldest first), filtered by status (comma-separated),
    patient, provider and a range of dates of service (both ends included)."""
    require(ctx.actor, "encounter.read")
    if not 1 <= int(limit) <= 100000:
        raise ValidationError("limit", "must be 1-100000")
    wanted = _statuses(status)
    today = ctx.now().date()
    lo = lt.parse_day("start", since, today=today) if since is not None and str(since).strip() else None
    hi = lt.parse_day("end", until, today=today) if until is not None and str(until).strip() else None
    if lo and hi and hi < lo:
        raise ValidationError("end", f"{hi} is before the start of the range, {lo}")
    n_lines = (
        sa.select(sa.func.count())
        .where(EncounterLine.encounter_id == Encounter.id)
        .correlate(Encounter)
        .scalar_subquery()
    )
    q = (
        sa.select(
            Encounter,
            Patient.first_name,
            Patient.last_name,
            Patient.mrn,
            Provider.first_name.label("p_first"),
            Provider.last_name.label("p_last"),
            Provider.credentials,
            Location.name.label("loc"),
            n_lines.label("n_lines"),
        )
        .join(Patient, Patient.id == Encounter.patient_id)
        .join(Provider, Provider.id == Encounter.provider_id)
        .join(Location, Location.id == Encounter.location_id)
        .where(Encounter.org_id == ctx.org_id)
    )
    if wanted:
        q = q.where(Encounter.status.in_(wanted))
    if patient is not None and str(patient).strip():
        q = q.where(Encounter.patient_id == find_patient(ctx, patient, field="patient", active=True).id)
    if provider is not None and str(provider).strip():
        q = q.where(Encounter.provider_id == find_provider(ctx, provider).id)
    if lo:
        q = q.where(Encounter.service_date >= lo)
    if hi:
        q = q.where(Encounter.service_date <= hi)
    rows = ctx.session.execute(q.order_by(Encounter.service_date, Encounter.id).limit(int(limit))).all()
    out = []
    for r in rows:
        e = r[0]
        prov = f"{r.p_first} {r.p_last}" + (f", {r.credentials}" if r.credentials else "")
        out.append(
            EncounterSummary(
                id=e.id,
                status=e.status,
                service_date=e.service_date,
                patient_id=e.patient_id,
                patient=f"{r.first_name} {r.last_name}",
                mrn=r.mrn,
                provider_id=e.provider_id,
                provider=prov,
                location=r.loc,
                appointment_id=e.appointment_id,
                lines=r.n_lines,
                total=money(e.total_cents),
            )
        )
    audit.record_list(ctx, "encounter", (e.patient_id for e in out), len(out))
    return out
