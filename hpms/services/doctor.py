"""Pre-flight checks of an installation: the database and its schema, the key file and its
backup, the audit trail, what claims need from the practice's set-up, and the age of the last
billing run and backup. Each check gives one status (ok, warn, fail, skipped) and one line."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.config import Settings, redact_url
from hpms.errors import Action, EncryptionKeyError, HpmsError, ValidationError
from hpms.services.platform.context import Clock, Ctx, system_clock

if TYPE_CHECKING:
    from hpms.services.platform.crypto import KeyRing

OK, WARN, FAIL, SKIPPED = "ok", "warn", "fail", "skipped"

# A nightly backup and a weekly billing run at the least; older ones are warned about.
BACKUP_WARN_DAYS = 2
KEY_EXPORT_WARN_DAYS = 365
BILLING_RUN_WARN_DAYS = 7
# The output folders of the claim files written lately are checked too.
RECENT_FILE_FOLDERS = 20


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    action: Action | None = None  # the step that fixes it, for the faces to show

    def as_dict(self) -> dict[str, object]:
        return {"check": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    def as_dict(self) -> dict[str, object]:
        counts = {s: sum(1 for c in self.checks if c.status == s) for s in (OK, WARN, FAIL, SKIPPED)}
        return {"ok": self.ok, "counts": counts, "checks": [c.as_dict() for c in self.checks]}


DB_CHECKS = ("key in use", "key export", "audit trail", "practice", "providers", "payers", "locations", "billing run")


def run(settings: Settings, *, folders: Sequence[Path] = (), clock: Clock = system_clock) -> Report:
    """Every check, in order. A database that cannot be opened fails its line and skips the
    lines that need it. Raises PermissionDenied (the checks take an admin, auditor or the
    service account), nothing else."""
    from hpms.db import check_schema, get_engine, head_revision

    checks: list[Check] = []
    where = redact_url(settings.database_url)
    engine = None
    try:
        engine = get_engine(settings)
        check_schema(engine)
        checks.append(Check("database", OK, f"{where} reachable, schema {head_revision()} (current)"))
    except HpmsError as exc:
        checks.append(Check("database", FAIL, f"{where}: {exc.message}", exc.action))
    checks.append(_key_file(settings))
    if checks[0].status == OK and engine is not None:
        from hpms.services.platform.context import open_context

        with open_context(settings, readonly=True, clock=clock) as ctx:
            from hpms.services.platform.permissions import require

            require(ctx.actor, "doctor.run")
            checks.extend(_with_database(ctx))
            checks.append(_backup(ctx))
            folders = [*folders, *_recent_folders(ctx)]
    else:
        checks.extend(Check(name, SKIPPED, "the database cannot be opened") for name in DB_CHECKS)
        checks.append(_backup_unchecked(settings))
    checks.append(_folders(settings, folders))
    return Report(tuple(checks))


def _key_file(settings: Settings) -> Check:
    if settings.key_from_env:
        return Check("key file", OK, "the key comes from HPMS_KEY (the environment)")
    path = settings.key_file
    if not path.exists():
        return Check("key file", FAIL, f"{path} does not exist: encrypted fields cannot be read")
    mode = path.stat().st_mode & 0o777
    if os.name == "posix" and mode & 0o077:
        return Check("key file", FAIL, f"{path} is readable by others (mode {mode:04o}); it must be 0600")
    return Check("key file", OK, f"{path} present, mode {mode:04o}")


def _with_database(ctx: Ctx) -> list[Check]:
    ring: KeyRing | None
    try:
        ring = ctx.key_ring
    except EncryptionKeyError as exc:
        ring = None
        key = Check("key in use", FAIL, exc.message)
    else:
        key = _key_in_use(ctx, ring)
    return [
        key,
        _key_export(ctx, ring),
        _audit(ctx),
        _practice(ctx),
        _providers(ctx),
        _payers(ctx),
        _locations(ctx),
        _billing_run(ctx),
    ]


def _key_in_use(ctx: Ctx, ring: KeyRing) -> Check:
    from hpms.models import KeyState

    state = ctx.session.get(KeyState, 1)
    active = state.active_kid if state else None
    if active is not None and active not in ring.keys:
        return Check("key in use", FAIL, f"the data is encrypted under key {active}, which {ring.source} does not hold")
    return Check("key in use", OK, f"the data is encrypted under key {active or ring.active}, held by {ring.source}")


def _last_event(ctx: Ctx, action: str, entity: str) -> tuple[dt.datetime, str | None] | None:
    from hpms.models import AuditEvent

    row = ctx.session.execute(
        sa.select(AuditEvent.at, AuditEvent.entity_id)
        .where(AuditEvent.action == action, AuditEvent.entity == entity)
        .order_by(col(AuditEvent.seq).desc())
        .limit(1)
    ).first()
    return (_aware(row[0]), row[1]) if row else None


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _age(ctx: Ctx, at: dt.datetime) -> tuple[int, str]:
    days = (ctx.now() - at).days
    when = "today" if days < 1 else ("1 day ago" if days == 1 else f"{days} days ago")
    return days, f"{at:%Y-%m-%d %H:%M} UTC ({when})"


def _key_export(ctx: Ctx, ring: KeyRing | None) -> Check:
    export = Action("keys", "export", give=(("to", "FILE"),), purpose="make one with")
    last = _last_event(ctx, "export", "key")
    if last is None:
        if ctx.settings.key_from_env:
            return Check("key export", WARN, "no export recorded; keep a copy of HPMS_KEY apart from the database")
        return Check(
            "key export", WARN, "the key was never exported: a lost key file makes the data unreadable", export
        )
    at, kid = last
    days, when = _age(ctx, at)
    if ring is not None and kid and kid != ring.active:
        return Check(
            "key export",
            FAIL,
            f"the last export ({when}) holds key {kid}, but the data is now under key {ring.active}",
            export,
        )
    status = WARN if days > KEY_EXPORT_WARN_DAYS else OK
    return Check("key export", status, f"last exported {when}", export if status != OK else None)


def _audit(ctx: Ctx) -> Check:
    from hpms.services.platform import audit

    result = audit.verify(ctx)
    if result.ok:
        return Check("audit trail", OK, f"{result.events} event(s), chain verified")
    at = f" at event {result.first_bad_seq}" if result.first_bad_seq is not None else ""
    return Check("audit trail", FAIL, f"broken{at}: {result.problem}", Action("audit", "verify"))


def _problems(findings: Iterable[object]) -> list[str]:
    return [getattr(f, "message", str(f)) for f in findings]


def _practice(ctx: Ctx) -> Check:
    from hpms.models import BillingProfile
    from hpms.services.billing.scrubber import setup_findings

    profile = ctx.session.get(BillingProfile, ctx.org_id)
    problems = _problems(setup_findings(tax_id=profile.tax_id if profile else None))
    if profile is None or not profile.submitter_id or not profile.receiver_id:
        problems.append("the billing profile has no submitter and receiver (clearinghouse) ids")
    if problems or profile is None:
        return Check("practice", FAIL, "; ".join(problems), Action("billing", "setup", purpose="set it with"))
    return Check("practice", OK, f"tax id, submitter {profile.submitter_id} and receiver {profile.receiver_id} set")


def _providers(ctx: Ctx) -> Check:
    from hpms.models import Provider
    from hpms.services.billing.scrubber import setup_findings
    from hpms.services.platform import validation as v

    rows = ctx.session.execute(
        sa.select(Provider.first_name, Provider.last_name, Provider.npi, Provider.taxonomy)
        .where(Provider.org_id == ctx.org_id, col(Provider.active).is_(True))
        .order_by(Provider.last_name, Provider.first_name)
    ).all()
    bad: list[str] = []
    no_taxonomy: list[str] = []
    for first, last, npi, taxonomy in rows:
        name = f"{first} {last}"
        problems = _problems(setup_findings(rendering_npi=npi))
        try:
            v.parse_taxonomy("taxonomy", taxonomy)
        except ValidationError as exc:
            problems.append(exc.message)
        if problems:
            bad.append(f"{name}: {'; '.join(problems)}")
        elif not taxonomy:
            no_taxonomy.append(name)
    if not rows:
        return Check("providers", WARN, "no active provider", Action("providers", "add", purpose="add one with"))
    if bad:
        return Check("providers", FAIL, _list(bad), Action("providers", "list"))
    if no_taxonomy:
        return Check("providers", WARN, f"{len(rows)} active; without a taxonomy code: {_list(no_taxonomy)}")
    return Check("providers", OK, f"{len(rows)} active, NPIs and taxonomy codes valid")


def _payers(ctx: Ctx) -> Check:
    from hpms.models import Payer
    from hpms.services.people.coverage import parse_claim_filing

    rows = ctx.session.execute(
        sa.select(Payer.name, Payer.payer_id, Payer.claim_filing).where(Payer.org_id == ctx.org_id).order_by(Payer.name)
    ).all()
    bad: list[str] = []
    for name, payer_id, filing in rows:
        problems = [] if (payer_id or "").strip() else ["no payer id"]
        try:
            if parse_claim_filing("claim_filing", filing) is None:
                problems.append("no claim filing indicator")
        except ValidationError as exc:
            problems.append(exc.message)
        if problems:
            bad.append(f"{name}: {'; '.join(problems)}")
    if not rows:
        return Check("payers", WARN, "no payer yet", Action("payers", "add", purpose="add one with"))
    if bad:
        return Check("payers", FAIL, _list(bad), Action("payers", "list"))
    return Check("payers", OK, f"{len(rows)} payer(s), each with a payer id and a claim filing indicator")


def _locations(ctx: Ctx) -> Check:
    from hpms.models import Location
    from hpms.services.billing.scrubber import setup_findings

    rows = ctx.session.scalars(sa.select(Location).where(Location.org_id == ctx.org_id).order_by(Location.name)).all()
    bad: list[str] = []
    for loc in rows:
        problems = _problems(
            setup_findings(
                billing_npi=loc.npi,
                address1=loc.address_line1,
                city=loc.city,
                state=loc.state,
                postal_code=loc.postal_code,
            )
        )
        if problems:
            bad.append(f"{loc.name}: {'; '.join(problems)}")
    if bad:
        return Check("locations", FAIL, _list(bad), Action("locations", "update", purpose="complete them with"))
    return Check("locations", OK, f"{len(rows)} location(s), each with an NPI and a complete address")


def _billing_run(ctx: Ctx) -> Check:
    from hpms.models import BillingRun

    run = ctx.session.execute(
        sa.select(BillingRun)
        .where(BillingRun.org_id == ctx.org_id, col(BillingRun.dry_run).is_(False))
        .order_by(col(BillingRun.started_at).desc())
        .limit(1)
    ).scalar_one_or_none()
    if run is None:
        return Check("billing run", WARN, "no billing run yet", Action("billing", "run", purpose="start one with"))
    days, when = _age(ctx, _aware(run.started_at))
    what = f"last run {when}: {run.status}, {run.claims} claim(s), {run.failed} failed"
    if run.status != "done":  # still running, or abandoned by a run that died
        return Check("billing run", WARN, what, Action("billing", "run", purpose="run it again with"))
    return Check("billing run", WARN if days > BILLING_RUN_WARN_DAYS else OK, what)


def _backup(ctx: Ctx) -> Check:
    if not ctx.settings.is_sqlite:
        return _backup_unchecked(ctx.settings)
    backup = Action("db", "backup", target="FILE", purpose="make one with")
    last = _last_event(ctx, "backup", "database")
    if last is None:
        return Check("backup", WARN, "no backup made yet", backup)
    days, when = _age(ctx, last[0])
    if days > BACKUP_WARN_DAYS:
        return Check("backup", WARN, f"last backup {when}", backup)
    return Check("backup", OK, f"last backup {when}")


def _backup_unchecked(settings: Settings) -> Check:
    if settings.is_sqlite:
        return Check("backup", SKIPPED, "the database cannot be opened")
    return Check("backup", SKIPPED, "PostgreSQL is backed up with pg_dump, outside hpms: not checked here")


def _recent_folders(ctx: Ctx) -> list[Path]:
    from hpms.models import X12File

    rows = ctx.session.execute(
        sa.select(X12File.directory).order_by(col(X12File.id).desc()).limit(RECENT_FILE_FOLDERS)
    ).all()
    return [Path(r[0]) for r in rows if r[0]]


def _folders(settings: Settings, folders: Sequence[Path]) -> Check:
    from hpms.fileio import check_directory

    wanted = ([settings.home] if settings.home.exists() or settings.is_sqlite else []) + list(folders)
    seen: list[Path] = []
    for folder in wanted:
        folder = Path(folder).expanduser()
        if folder not in seen:
            seen.append(folder)
    bad: list[str] = []
    for folder in seen:
        try:
            check_directory(folder, field="folder")
        except ValidationError as exc:
            bad.append(exc.message)
    if bad:
        return Check("folders", FAIL, _list(bad))
    return Check("folders", OK, f"writable: {', '.join(str(f) for f in seen)}")


def _list(items: Sequence[str], most: int = 5) -> str:
    shown = "; ".join(items[:most])
    return shown if len(items) <= most else f"{shown}; and {len(items) - most} more"


__all__ = ["Check", "Report", "run", "OK", "WARN", "FAIL", "SKIPPED"]
