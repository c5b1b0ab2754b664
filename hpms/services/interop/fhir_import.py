"""FHIR R4 import: patients, payers and coverage, providers and outside visits, each through the
service that makes it by hand (same checks, duplicate detection, audit); a map of source ids to
records makes importing the same files again change nothing."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import col

from hpms.db import insert_rows, new_ids
from hpms.errors import ConflictError, HpmsError, NotFoundError, ValidationError
from hpms.fileio import read_input
from hpms.interop.fhir import reading as fr
from hpms.models import Coverage, Patient, Payer
from hpms.services.people import coverage as coverages
from hpms.services.people import patients
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

DEFAULT_SOURCE = "fhir"
_CHUNK = 500
# The element a refusal names for a field of a record, when the value is missing from the resource.
_MISSING_AT = {
    "first_name": "name",
    "last_name": "name",
    "dob": "birthDate",
    "member_id": "subscriberId",
    "payer": "payor",
    "patient": "subject",
}


class ResourceCounts(BaseModel):
    """What became of the resources of one type."""

    resource_type: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    refused: int = 0


class RefusedResource(BaseModel):
    resource_type: str
    id: str | None
    file: str
    path: str
    reason: str
    existing_mrn: str | None = None  # the patient on file a possible duplicate looks like


class ImportNote(BaseModel):
    """Something left out of a resource that was imported (an SSN that is not valid, ...)."""

    resource_type: str
    id: str
    file: str
    path: str
    note: str


class FhirImportReport(BaseModel):
    files: list[str]
    source: str
    dry_run: bool
    counts: list[ResourceCounts]
    refused: list[RefusedResource]
    notes: list[ImportNote]


class _Run:
    """One import: the counts, the source's map loaded for every resource named, and what to write."""

    def __init__(self, ctx: Ctx, source: str) -> None:
        self.ctx = ctx
        self.source = source
        self.counts: dict[str, ResourceCounts] = {}
        self.refused: list[RefusedResource] = []
        self.notes: list[ImportNote] = []
        self.refs: dict[tuple[str, str], Any] = {}  # (type, id) -> ExternalRef row values
        self.new_refs: list[dict[str, Any]] = []
        self.changed_refs: list[dict[str, Any]] = []
        self.shown: list[object] = []  # duplicate candidates shown, audited again after a dry run
        self.records: dict[tuple[str, str], fr.Record] = {}
        self.subscribed: dict[str, str] = {}  # RelatedPerson id -> what became of its coverage

    def count(self, resource_type: str) -> ResourceCounts:
        return self.counts.setdefault(resource_type, ResourceCounts(resource_type=resource_type))

    def refuse(self, rec: fr.Record, path: str, reason: str, existing_mrn: str | None = None) -> None:
        self.count(rec.resource_type).refused += 1
        self.refused.append(
            RefusedResource(
                resource_type=rec.resource_type,
                id=rec.fhir_id,
                file=rec.where.file,
                path=path,
                reason=reason,
                existing_mrn=existing_mrn,
            )
        )

    def refuse_error(self, rec: fr.Record, exc: HpmsError) -> None:
        name = exc.field or ""
        path = rec.paths.get(name) or _MISSING_AT.get(name)
        self.refuse(rec, rec.where.path(path), exc.message)

    def note(self, rec: fr.Record, path: str, note: str) -> None:
        self.notes.append(
            ImportNote(resource_type=rec.resource_type, id=rec.fhir_id, file=rec.where.file, path=path, note=note)
        )

    def digest_of(self, rec: fr.Record) -> str:
        return self.ctx.crypto.blind_index(_canonical(rec), "fhir")

    def known(self, rec: fr.Record) -> Any | None:
        return self.refs.get((rec.resource_type, rec.fhir_id))

    def same(self, rec: fr.Record, ref: Any) -> bool:
        return ref.digest in self.ctx.crypto.blind_indexes(_canonical(rec), "fhir")

    def link(self, rec: fr.Record, entity: str, entity_id: int) -> None:
        now = self.ctx.now()
        row = {
            "org_id": self.ctx.org_id,
            "source": self.source,
            "resource_type": rec.resource_type,
            "external_id": rec.fhir_id,
            "entity": entity,
            "entity_id": entity_id,
            "digest": self.digest_of(rec),
            "created_at": now,
            "updated_at": now,
        }
        self.new_refs.append(row)
        self.refs[(rec.resource_type, rec.fhir_id)] = _RefRow(entity_id, row["digest"], None)

    def relink(self, rec: fr.Record, ref: Any, entity_id: int | None = None) -> None:
        """The resource changed (and, for a patient merged since, became the record kept)."""
        digest = self.digest_of(rec)
        now_id = entity_id or ref.entity_id
        if ref.id is None:  # met earlier in these files: its row is not written yet
            for row in self.new_refs:
                if (row["resource_type"], row["external_id"]) == (rec.resource_type, rec.fhir_id):
                    row.update(entity_id=now_id, digest=digest)
        else:
            self.changed_refs.append({"ref_id": ref.id, "entity_id": now_id, "digest": digest, "now": self.ctx.now()})
        self.refs[(rec.resource_type, rec.fhir_id)] = _RefRow(now_id, digest, ref.id)

    def target(self, rec: fr.Record, name: str, resource_type: str) -> int | None:
        """The id (here) of what `rec` refers to as `name` (a resource of `resource_type`)."""
        r = rec.refs.get(name)
        if r is None or r.resource_type not in (resource_type, ""):
            return None
        ref = self.refs.get((resource_type, r.id))
        return ref.entity_id if ref is not None else None


class _RefRow:
    __slots__ = ("entity_id", "digest", "id")

    def __init__(self, entity_id: int, digest: str, ref_id: int | None) -> None:
        self.entity_id, self.digest, self.id = entity_id, digest, ref_id


def _canonical(rec: fr.Record) -> str:
    refs = {k: [r.resource_type, r.id] if r else None for k, r in sorted(rec.refs.items())}
    return json.dumps({"values": rec.values, "refs": refs}, sort_keys=True, default=str, ensure_ascii=False)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".json", ".ndjson"))
        if not found:
            raise ValidationError("file", f"{str(path)!r} holds no .json or .ndjson file")
        return found
    return [path]


def read_files(path: Path | str) -> tuple[list[str], fr.Parsed]:
    """Every file read and parsed, before anything is written. Raises ValidationError naming the
    file that does not exist or is not FHIR JSON at all."""
    parsed = fr.Parsed()
    names: list[str] = []
    for p in _files(Path(path).expanduser()):
        data = read_input(p, field="file")
        reader = fr.read_ndjson if p.suffix.lower() == ".ndjson" else fr.read_json
        try:
            parsed.extend(reader(data, file=p.name))
        except fr.FhirFileError as exc:
            raise ValidationError("file", f"{exc}; nothing was imported") from None
        names.append(p.name)
    return names, parsed


def import_files(ctx: Ctx, path: Path | str, *, source: str | None = None, dry_run: bool = False) -> FhirImportReport:
    """Import the FHIR resources of a file or folder in the caller's transaction; `dry_run`
    rolls it all back and reports the same. Raises ValidationError (a file missing or not FHIR
    JSON: nothing written), PermissionDenied."""
    require(ctx.actor, "fhir.import")
    src = v.require_text("source", source or DEFAULT_SOURCE, 200)
    names, parsed = read_files(path)
    run = _Run(ctx, src)
    for s in parsed.skipped:
        run.count(s.resource_type).skipped += 1
    for r in parsed.refused:
        run.count(r.resource_type).refused += 1
        run.refused.append(
            RefusedResource(resource_type=r.resource_type, id=r.fhir_id, file=r.file, path=r.path, reason=r.reason)
        )
    by_type: dict[str, list[fr.Record]] = defaultdict(list)
    for rec in parsed.records:
        by_type[rec.resource_type].append(rec)
        run.records[(rec.resource_type, rec.fhir_id)] = rec
    session = ctx.session
    savepoint = session.begin_nested() if dry_run else None
    try:
        _load_refs(run, parsed.records)
        for resource_type, step in _STEPS:
            if by_type.get(resource_type):
                step(run, by_type[resource_type])
        _write_refs(run)
    except BaseException:
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        raise
    if savepoint is not None:
        savepoint.rollback()
        for event in run.shown:  # the candidates were shown all the same
            assert isinstance(event, audit.Event)
            audit.record(ctx, event)
    order = {t: i for i, t in enumerate(fr.SUPPORTED)}
    counts = sorted(run.counts.values(), key=lambda c: (order.get(c.resource_type, len(order)), c.resource_type))
    return FhirImportReport(
        files=names, source=src, dry_run=dry_run, counts=counts, refused=run.refused, notes=run.notes
    )


def _load_refs(run: _Run, records: Iterable[fr.Record]) -> None:
    """The map rows of every resource imported and every resource referred to: one query a type."""
    from hpms.models import ExternalRef  # the interop table loads with an import only

    wanted: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        wanted[rec.resource_type].add(rec.fhir_id)
        for name, r in rec.refs.items():
            if r is not None:
                wanted[r.resource_type or _REF_TYPES[name]].add(r.id)
    t = ExternalRef.__table__
    for resource_type, ids in wanted.items():
        listed = sorted(ids)
        for i in range(0, len(listed), _CHUNK):
            rows = run.ctx.session.execute(
                sa.select(t.c.id, t.c.external_id, t.c.entity_id, t.c.digest).where(
                    t.c.org_id == run.ctx.org_id,
                    t.c.source == run.source,
                    t.c.resource_type == resource_type,
                    t.c.external_id.in_(listed[i : i + _CHUNK]),
                )
            )
            for row in rows:
                run.refs[(resource_type, row.external_id)] = _RefRow(row.entity_id, row.digest, row.id)
    _follow_merges(run)


def _follow_merges(run: _Run) -> None:
    """A patient merged since an import is the record kept, for whatever refers to it now."""
    patient_refs = [r for (t, _), r in run.refs.items() if t == "Patient"]
    ids = {r.entity_id for r in patient_refs}
    into: dict[int, int] = {}
    while ids:
        found: dict[int, int] = dict(
            run.ctx.session.execute(
                sa.select(Patient.id, Patient.merged_into_id).where(
                    col(Patient.id).in_(ids), col(Patient.merged_into_id).is_not(None)
                )
            ).all()
        )
        into.update(found)
        ids = set(found.values()) - set(into)
    for r in patient_refs:
        while r.entity_id in into:
            r.entity_id = into[r.entity_id]


_REF_TYPES = {
    "patient": "Patient",
    "payer": "Organization",
    "provider": "Practitioner",
    "facility": "Organization",
    "subscriber": "RelatedPerson",
}


def _write_refs(run: _Run) -> None:
    from hpms.models import ExternalRef

    t = ExternalRef.__table__
    if run.new_refs:
        run.ctx.session.execute(sa.insert(t), run.new_refs)
    if run.changed_refs:
        run.ctx.session.execute(
            sa.update(t)
            .where(t.c.id == sa.bindparam("ref_id"))
            .values(entity_id=sa.bindparam("entity_id"), digest=sa.bindparam("digest"), updated_at=sa.bindparam("now")),
            run.changed_refs,
        )


# ---- each resource type --------------------------------------------------------------------


def _payers(run: _Run, records: list[fr.Record]) -> None:
    ctx = run.ctx
    codes = {rec.values["payer_id"] for rec in records if rec.values.get("payer_id")}
    on_file: dict[str, int] = dict(
        ctx.session.execute(
            sa.select(Payer.payer_id, Payer.id).where(Payer.org_id == ctx.org_id, col(Payer.payer_id).in_(codes))
        ).all()
    )
    for rec in records:
        counts = run.count(rec.resource_type)
        if not rec.values.get("payer"):
            counts.skipped += 1  # a provider's organization, kept only as the name of a visit's facility
            continue
        fields = {k: rec.values.get(k) for k in _PAYER_FIELDS}
        ref = run.known(rec)
        try:
            if ref is not None:
                if run.same(rec, ref):
                    counts.unchanged += 1
                    continue
                code = ctx.session.execute(sa.select(Payer.payer_id).where(Payer.id == ref.entity_id)).scalar_one()
                coverages.update_payer(ctx, code, **{k: x for k, x in fields.items() if x is not None})
                run.relink(rec, ref)
                counts.updated += 1
            elif fields["payer_id"] is None:
                run.refuse(rec, rec.where.path("identifier"), "no payer id (2 to 80 letters or digits)")
            elif fields["payer_id"] in on_file:
                run.link(rec, "payer", on_file[fields["payer_id"]])
                run.note(rec, rec.path("payer_id"), "the payer on file with this payer id; not changed")
                counts.unchanged += 1
            else:
                out = coverages.add_payer(ctx, **fields)
                on_file[out.payer_id] = out.id
                run.link(rec, "payer", out.id)
                counts.created += 1
        except (ValidationError, ConflictError, NotFoundError) as exc:
            run.refuse_error(rec, exc)


_PAYER_FIELDS = ("name", "payer_id", "address_line1", "address_line2", "city", "state", "postal_code", "phone")
_PROVIDER_FIELDS = ("first_name", "last_name", "credentials", "npi")


def _providers(run: _Run, records: list[fr.Record]) -> None:
    from hpms.models import Provider
    from hpms.services.scheduling import resources

    ctx = run.ctx
    npis = {rec.values["npi"] for rec in records if rec.values.get("npi")}
    on_file: dict[str | None, int] = dict(
        ctx.session.execute(
            sa.select(Provider.npi, Provider.id).where(Provider.org_id == ctx.org_id, col(Provider.npi).in_(npis))
        ).all()
    )
    for rec in records:
        counts = run.count(rec.resource_type)
        fields = {k: rec.values.get(k) for k in _PROVIDER_FIELDS if rec.values.get(k) is not None}
        ref = run.known(rec)
        try:
            if ref is not None:
                if run.same(rec, ref):
                    counts.unchanged += 1
                    continue
                resources.update_provider(ctx, str(ref.entity_id), **fields)
                run.relink(rec, ref)
                counts.updated += 1
            elif fields.get("npi") in on_file:
                run.link(rec, "provider", on_file[fields["npi"]])
                run.note(rec, rec.path("npi"), "the provider on file with this NPI; not changed")
                counts.unchanged += 1
            else:
                out = resources.add_provider(ctx, **fields)
                if out.npi:
                    on_file[out.npi] = out.id
                run.link(rec, "provider", out.id)
                counts.created += 1
        except (ValidationError, ConflictError, NotFoundError) as exc:
            run.refuse_error(rec, exc)


_QUOTED = re.compile(r"'[^']*'")


def _kept(run: _Run, rec: fr.Record, name: str, what: str, today: dt.date) -> None:
    """Drop an identifier that cannot be kept (an impossible SSN, an MRN of another shape), noting it."""
    value = rec.values.get(name)
    if value is None:
        return
    try:
        patients.validate_fields({name: value}, today=today, partial=True)
    except ValidationError as exc:
        del rec.values[name]
        said = _QUOTED.sub("", exc.message).strip()  # no identifier's value in the report
        run.note(rec, rec.path(name), f"{what} not kept: the value {said}")


def _kept_record(ctx: Ctx, patient_id: int) -> Patient:
    """The patient an imported one is now: itself, or the record it was merged into."""
    row = ctx.session.get(Patient, patient_id)
    while row is not None and row.merged_into_id is not None:
        row = ctx.session.get(Patient, row.merged_into_id)
    if row is None or row.org_id != ctx.org_id:
        raise NotFoundError(f"patient {patient_id} is no longer on file")
    return row


def _patients(run: _Run, records: list[fr.Record]) -> None:
    ctx = run.ctx
    today = ctx.now().date()
    for rec in records:
        counts = run.count(rec.resource_type)
        _kept(run, rec, "ssn", "SSN", today)
        _kept(run, rec, "mrn", "MRN", today)
        ref = run.known(rec)
        try:
            if ref is not None:
                if run.same(rec, ref):
                    counts.unchanged += 1
                    continue
                before = _kept_record(ctx, ref.entity_id)
                version = before.version  # the row itself changes below
                given = {k: x for k, x in rec.values.items() if k != "mrn"}
                out = patients.update(ctx, before.mrn, **given)
                run.relink(rec, ref, before.id)
                if out.version != version:
                    counts.updated += 1
                else:
                    counts.unchanged += 1
            else:
                # a household shares a phone: alone it is no sign that two records are one person
                out = patients.register(ctx, phone_alone=False, **rec.values)
                run.link(rec, "patient", out.id)
                counts.created += 1
        except patients.LikelyDuplicate as exc:
            first = exc.candidates[0]
            run.shown += exc.audit_after_rollback
            run.refuse(
                rec,
                rec.where.path(),
                f"possible duplicate of MRN {first.patient.mrn} ({'; '.join(first.reasons)}); not imported",
                existing_mrn=first.patient.mrn,
            )
        except ConflictError as exc:  # the MRN the resource gives is another patient's
            run.refuse(rec, rec.path("mrn"), exc.message, existing_mrn=rec.values.get("mrn"))
        except (ValidationError, NotFoundError) as exc:
            run.refuse_error(rec, exc)


def _missing(run: _Run, rec: fr.Record, name: str, what: str) -> str:
    r = rec.refs.get(name)
    if r is None:
        return "missing"
    return f"{what}/{r.id} was not imported (refused, or in none of the files)"


def _coverage(run: _Run, records: list[fr.Record]) -> None:
    ctx = run.ctx
    pids = {run.target(rec, "patient", "Patient") for rec in records}
    payer_ids = {run.target(rec, "payer", "Organization") for rec in records}
    mrns: dict[int, str] = dict(
        ctx.session.execute(sa.select(Patient.id, Patient.mrn).where(col(Patient.id).in_(pids - {None}))).all()
    )
    codes: dict[int, str] = dict(
        ctx.session.execute(sa.select(Payer.id, Payer.payer_id).where(col(Payer.id).in_(payer_ids - {None}))).all()
    )
    for rec in records:
        counts = run.count(rec.resource_type)
        pid = run.target(rec, "patient", "Patient")
        payer = run.target(rec, "payer", "Organization")
        if rec.values.get("status") in ("cancelled", "entered-in-error"):
            counts.skipped += 1
            continue
        if pid is None:
            run.refuse(rec, rec.where.path("beneficiary"), _missing(run, rec, "patient", "Patient"))
            continue
        if payer is None:
            run.refuse(rec, rec.where.path("payor[0]"), _missing(run, rec, "payer", "Organization"))
            continue
        sub: fr.Record | None = None
        if rec.values.get("relationship", "self") != "self":
            who = rec.refs.get("subscriber")
            sub = run.records.get(("RelatedPerson", who.id)) if who is not None else None
            if sub is None:
                reason = (
                    _missing(run, rec, "subscriber", "RelatedPerson")
                    if who is not None
                    else "missing (a coverage through someone else names its subscriber, a RelatedPerson)"
                )
                run.refuse(rec, rec.where.path("subscriber"), reason)
                continue
            for name in _SUBSCRIBER_FIELDS:  # in the values, so that the digest covers them
                if name in sub.values:
                    rec.values[f"subscriber_{name}"] = sub.values[name]
        values = {k: rec.values.get(k) for k in _COVERAGE_FIELDS if rec.values.get(k) is not None}
        ref = run.known(rec)
        try:
            if ref is not None:
                if run.same(rec, ref):
                    counts.unchanged += 1
                    _took(run, sub, "unchanged")
                    continue
                _took(run, sub, _update_coverage(run, rec, ref, payer, values))
                continue
            out = coverages.add_coverage(ctx, patient=mrns[pid], payer=codes[payer], **values, **_subscriber(rec))
            run.link(rec, "coverage", out.id)
            counts.created += 1
            _took(run, sub, "created")
        except (ValidationError, ConflictError, NotFoundError) as exc:
            if sub is not None and exc.field in _SUBSCRIBER_AT:
                at = f"{sub.where.file}: {sub.path(_SUBSCRIBER_AT[exc.field])}"
                run.refuse(rec, rec.where.path("subscriber"), f"RelatedPerson/{sub.fhir_id} ({at}): {exc.message}")
            else:
                run.refuse_error(rec, exc)


_COVERAGE_FIELDS = ("member_id", "group_number", "relationship", "priority", "valid_from", "valid_to")
_SUBSCRIBER_FIELDS = ("first_name", "last_name", "dob")
_SUBSCRIBER_AT = {"subscriber": "last_name", "subscriber_dob": "dob"}  # a field at fault: its element


def _subscriber(rec: fr.Record) -> dict[str, Any]:
    """The subscriber arguments of a coverage (the name as `Last, First`), when it has one."""
    last = rec.values.get("subscriber_last_name")
    if last is None:
        return {}
    first = rec.values.get("subscriber_first_name")
    return {"subscriber": f"{last}, {first}" if first else last, "subscriber_dob": rec.values.get("subscriber_dob")}


def _took(run: _Run, sub: fr.Record | None, outcome: str | None) -> None:
    """The coverage that names `sub` as its subscriber was `outcome` (None: refused)."""
    if sub is not None and outcome is not None:
        run.subscribed[sub.fhir_id] = outcome


def _subscribers(run: _Run, records: list[fr.Record]) -> None:
    """A RelatedPerson is read as the subscriber of the coverage that names it (see `_coverage`)
    and counts as what became of that coverage: created, updated or unchanged; one that no
    coverage took is skipped."""
    for rec in records:
        outcome = run.subscribed.get(rec.fhir_id, "skipped")
        counts = run.count(rec.resource_type)
        setattr(counts, outcome, getattr(counts, outcome) + 1)


def _update_coverage(run: _Run, rec: fr.Record, ref: Any, payer: int, values: dict[str, Any]) -> str | None:
    """A changed Coverage: its group number is changed; any other difference is refused (a
    coverage on file is ended and a new one added, by hand). Returns what became of it
    (`updated`, `unchanged`; None: refused)."""
    ctx = run.ctx
    counts = run.count(rec.resource_type)
    cov = ctx.session.get(Coverage, ref.entity_id)
    if cov is None:
        run.refuse(rec, rec.where.path(), f"coverage {ref.entity_id} is no longer on file")
        return None
    member = values.get("member_id", "")
    subscriber = tuple(str(rec.values.get(f"subscriber_{k}") or "") for k in _SUBSCRIBER_FIELDS)
    on_file = (cov.subscriber_first_name, cov.subscriber_last_name, cov.subscriber_dob)
    same = (
        cov.payer_id == payer
        and cov.member_id_bidx in ctx.crypto.blind_indexes(member, "member_id")
        and cov.priority == values.get("priority", "primary")
        and cov.relationship == values.get("relationship", "self")
        and tuple(str(x or "") for x in on_file) == subscriber
        and str(cov.valid_from or "") == (values.get("valid_from") or "")
        and str(cov.valid_to or "") == (values.get("valid_to") or "")
    )
    if not same:
        run.refuse(
            rec,
            rec.where.path(),
            f"differs from coverage {cov.id} on file in more than the group number; end it and add the new one",
        )
        return None
    group = values.get("group_number")
    outcome = "unchanged"
    if (group or None) != cov.group_number:
        coverages.update_coverage(ctx, cov.id, group_number=group or "none")
        outcome = "updated"
    setattr(counts, outcome, getattr(counts, outcome) + 1)
    run.relink(rec, ref)
    return outcome


_VISIT_TEXT = {"kind": 200, "reason": 500, "practitioner": 200, "facility": 200, "status": 20, "visit_class": 20}


def _visits(run: _Run, records: list[fr.Record]) -> None:
    from hpms.models import ExternalVisit

    ctx = run.ctx
    now = ctx.now()
    table = ExternalVisit.__table__
    created: list[dict[str, Any]] = []
    created_recs: list[fr.Record] = []
    updated: list[dict[str, Any]] = []
    pending: dict[str, int] = {}
    for rec in records:
        counts = run.count(rec.resource_type)
        pid = run.target(rec, "patient", "Patient")
        if pid is None:
            run.refuse(rec, rec.where.path("subject"), _missing(run, rec, "patient", "Patient"))
            continue
        if rec.values.get("start_utc") is None:
            run.refuse(rec, rec.where.path("period.start"), "missing (a visit needs its start)")
            continue
        row = _visit_row(run, rec, pid)
        ref = run.known(rec)
        earlier = pending.get(rec.fhir_id)
        if earlier is not None:  # met before in these files, not written yet: the later one wins
            same = _canonical(created_recs[earlier]) == _canonical(rec)
            row.update(org_id=ctx.org_id, created_at=now, updated_at=now)
            created[earlier], created_recs[earlier] = row, rec
            if same:
                counts.unchanged += 1
            else:
                counts.updated += 1
        elif ref is None:
            row.update(org_id=ctx.org_id, created_at=now, updated_at=now)
            pending[rec.fhir_id] = len(created)
            created.append(row)
            created_recs.append(rec)
            counts.created += 1
        elif run.same(rec, ref):
            counts.unchanged += 1
        else:
            row.update(visit_id=ref.entity_id, updated_at=now)
            updated.append(row)
            run.relink(rec, ref)
            counts.updated += 1
    created_fields = {k for k in _VISIT_COLUMNS if any(r.get(k) is not None for r in created)}
    updated_fields: set[str] = set()
    for i in range(0, len(updated), _CHUNK):
        part = {r["visit_id"]: r for r in updated[i : i + _CHUNK]}
        stored = ctx.session.execute(
            sa.select(table.c.id, *(table.c[k] for k in _VISIT_COLUMNS)).where(table.c.id.in_(part))
        ).mappings()
        for old in stored:
            updated_fields |= {k for k in _VISIT_COLUMNS if old[k] != part[old["id"]][k]}
    if created:
        columns = list(created[0])
        ids = new_ids(ctx.session, table, len(created))
        insert_rows(ctx.session, table, [*columns, "id"], [[*r.values(), i] for r, i in zip(created, ids, strict=True)])
        for rec, i in zip(created_recs, ids, strict=True):
            run.link(rec, "external_visit", i)
    if updated:
        names = [c for c in updated[0] if c != "visit_id"]
        ctx.session.execute(
            sa.update(table).where(table.c.id == sa.bindparam("visit_id")).values({c: sa.bindparam(c) for c in names}),
            updated,
        )
    # One event per batch naming every patient whose history it wrote, as the patient import does.
    for rows, action, fields in ((created, "create", created_fields), (updated, "update", updated_fields)):
        if rows:
            audit.record(
                ctx,
                audit.Event(
                    action,
                    "external_visit",
                    patient_ids=sorted({r["patient_id"] for r in rows}),
                    fields=sorted(fields),
                    detail=f"import of {len(rows)} visit(s)",
                ),
            )


_VISIT_COLUMNS = ("start_utc", "end_utc", "provider_id", *_VISIT_TEXT)


def _visit_row(run: _Run, rec: fr.Record, pid: int) -> dict[str, Any]:
    provider = run.target(rec, "provider", "Practitioner")
    who = rec.refs.get("provider")
    seen = run.records.get(("Practitioner", who.id)) if who else None
    practitioner = (
        " ".join(x for x in (seen.values.get("first_name"), seen.values.get("last_name")) if x) if seen else None
    )
    where = rec.refs.get("facility")
    org = run.records.get(("Organization", where.id)) if where else None
    text = {
        "status": rec.values.get("status"),
        "visit_class": rec.values.get("visit_class"),
        "kind": rec.values.get("kind"),
        "reason": rec.values.get("reason"),
        "practitioner": practitioner or None,
        "facility": org.values.get("name") if org else None,
    }
    row: dict[str, Any] = {
        "patient_id": pid,
        "provider_id": provider,
        "start_utc": rec.values["start_utc"],
        "end_utc": rec.values.get("end_utc"),
    }
    for k, n in _VISIT_TEXT.items():
        value = v.clean(text[k])
        row[k] = value[: n - 1] + "…" if value and len(value) > n else value
    row["status"] = row["status"] or "unknown"
    return row


_STEPS: tuple[tuple[str, Callable[[_Run, list[fr.Record]], None]], ...] = (
    ("Organization", _payers),
    ("Practitioner", _providers),
    ("Patient", _patients),
    ("Coverage", _coverage),
    ("RelatedPerson", _subscribers),  # counted after the coverages that take them
    ("Encounter", _visits),
)
