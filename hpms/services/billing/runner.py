"""The billing run: signed encounters -> scrubbed, priced claims -> one 837P file per payer and
billing location, safe to run from cron.

- A lock (`job_lock` row) keeps two runs apart: exit 75 while another live run holds it; the
  lock of a run that died (same host, process gone, or no heartbeat for 10 minutes) is taken over.
- Claims are created in chunks, each one transaction that also marks its encounters billed; a
  partial unique index allows one original claim per encounter and payer. A rerun, or a run
  after a crash, finds no signed encounter twice.
- Files: a short transaction records the file (its control numbers) and assigns its claims;
  the file is then written from a read, to a temp name, fsynced and renamed. A recorded file
  whose name is missing (a crash in between) is written again, identically, by the next run.
- A file also takes the claims waiting for one that the run did not build (secondary claims
  queued after an 835, replacements, voids). They pass the scrubber's party rules first
  (addresses, the Medicare secondary type: what the writer reads now); one that fails stays
  ready, out of the file, with a work-list row naming it.
"""

from __future__ import annotations

import datetime as dt
import functools
import glob
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.errors import LockHeldError, NotFoundError, ValidationError
from hpms.models import (
    BillingProfile,
    BillingRun,
    Claim,
    ClaimEvent,
    ClaimLine,
    Coverage,
    Encounter,
    JobLock,
    Location,
    Organization,
    Patient,
    Payer,
    Provider,
    WorklistItem,
    X12File,
)
from hpms.services.billing.scrubber import (
    PARTY_RULES,
    ClaimDraft,
    ClaimParties,
    DraftLine,
    Finding,
    scrub,
    scrub_parties,
)
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.interop.x12 import x837p

LOCK_NAME = "billing_run"
STALE_AFTER = dt.timedelta(minutes=10)
CHUNK = 2000
FILE_CHUNK = 2000
CLAIM_COUNTER = "claim_control"
ISA_COUNTER = "x12_isa"
GS_COUNTER = "x12_gs"


from hpms.models.billing_out import money as cents  # noqa: E402  (integer cents -> two-place Decimal)


@dataclass
class RunSummary:
    run_id: int | None
    dry_run: bool
    encounters: int = 0
    claims: int = 0
    failed: int = 0
    skipped: int = 0
    total: Decimal = Decimal("0.00")
    files: list[dict] = field(default_factory=list)
    recovered_files: int = 0
    findings: list[dict] = field(default_factory=list)  # dry run: what would fail
    # claims written into the files (dry run: would be), the new ones and those waiting for a
    # file (secondary claims, replacements, voids); how many of them are secondary claims; and
    # waiting claims held back for the work list
    written: int = 0
    secondary: int = 0
    held: int = 0


# ---- billing profile -----------------------------------------------------------------------

PROFILE_FIELDS = (
    "tax_id",
    "submitter_id",
    "submitter_name",
    "receiver_id",
    "receiver_name",
    "contact_name",
    "contact_phone",
    "production",
)


def get_profile(ctx) -> dict:
    require(ctx.actor, "billing.read")
    p = ctx.session.get(BillingProfile, ctx.org_id)
    return {f: getattr(p, f) if p else (False if f == "production" else None) for f in PROFILE_FIELDS}


def set_profile(ctx, **data) -> dict:
    """The practice's tax id and X12 identities (submitter, receiver = clearinghouse)."""
    require(ctx.actor, "billing.setup")
    p = ctx.session.get(BillingProfile, ctx.org_id)
    if p is None:
        p = BillingProfile(org_id=ctx.org_id)
        ctx.session.add(p)
    changed = []
    for f, val in data.items():
        if val is None:
            continue
        if f == "tax_id":
            digits = "".join(ch for ch in str(val) if ch.isdigit())
            if len(digits) != 9 or not all(ch.isdigit() or ch in "- " for ch in str(val).strip()):
                raise ValidationError("--tax-id", "must be a 9-digit EIN (12-3456789)")
            val = digits
        elif f in ("submitter_id", "receiver_id"):
            val = v.require_text(f"--{f.replace('_', '-')}", val, 15)
            if not all(ch.isalnum() for ch in val):
                raise ValidationError(f"--{f.replace('_', '-')}", "letters and digits only")
        elif f == "production":
            val = bool(val)
        elif f == "contact_phone":
            val = v.parse_phone("--contact-phone", val)
        else:
            val = v.require_text(f"--{f.replace('_', '-')}", val, 60)
        setattr(p, f, val)
        changed.append(f)
    if not changed:
        raise ValidationError("options", "nothing to change")
    p.updated_at = ctx.now()
    ctx.session.flush()
    audit.record(ctx, audit.Event("update", "billing_profile", ctx.org_id, fields=changed))
    return get_profile(ctx)


# ---- the lock ------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(ctx, name: str = LOCK_NAME) -> None:
    """Take the named lock in the caller's transaction (commit it to hold it)."""
    session = ctx.session
    now = ctx.now()
    host, pid = socket.gethostname(), os.getpid()
    table = JobLock.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING
    res = session.execute(
        insert(table)
        .values(name=name, holder=ctx.actor.username, host=host, pid=pid, acquired_at=now, heartbeat_at=now)
        .on_conflict_do_nothing()
        .returning(table.c.name)
    )
    if res.first() is not None:
        return
    held = session.execute(sa.select(JobLock).where(JobLock.name == name).with_for_update()).scalar_one()
    dead = (held.host == host and not _alive(held.pid)) or now - held.heartbeat_at > STALE_AFTER
    if not dead:
        raise LockHeldError(
            f"another billing run holds the lock ({held.holder}, pid {held.pid} on {held.host}, "
            f"since {held.acquired_at:%Y-%m-%d %H:%M:%S} UTC)",
            hint="cron may retry later",
        )
    held.holder, held.host, held.pid, held.acquired_at, held.heartbeat_at = ctx.actor.username, host, pid, now, now
    if name == LOCK_NAME:  # the run that died is no longer running
        session.execute(
            sa.update(BillingRun)
            .where(BillingRun.org_id == ctx.org_id, BillingRun.status == "running")
            .values(status="abandoned", finished_at=now)
        )
    session.flush()


def heartbeat(ctx, name: str = LOCK_NAME) -> None:
    ctx.session.execute(
        sa.update(JobLock).where(JobLock.name == name, JobLock.pid == os.getpid()).values(heartbeat_at=ctx.now())
    )


def release_lock(ctx, name: str = LOCK_NAME) -> None:
    ctx.session.execute(
        sa.delete(JobLock).where(JobLock.name == name, JobLock.pid == os.getpid(), JobLock.host == socket.gethostname())
    )


# ---- drafts --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Enc:
    id: int
    patient_id: int
    provider_id: int
    location_id: int
    service_date: dt.date
    place_of_service: str

    def __post_init__(self) -> None:
        self.service_date = _date(self.service_date)


@dataclass(slots=True)
class _Meta:
    patient_id: int
    payer_id: int | None
    coverage_id: int | None
    location_id: int


def _split(text: str) -> tuple:
    return tuple(x for x in text.split(",") if x) if text else ()


@functools.lru_cache(maxsize=4096)
def _mods(text: str) -> tuple[str, ...]:
    """Stored modifiers ("25,59") as a tuple; a night's claims repeat a few dozen strings."""
    return _split(text)


@functools.lru_cache(maxsize=4096)
def _ptrs(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in _split(text))


def build_drafts(
    ctx, encounter_ids: list[int], *, fees: dict | None = None, profile: BillingProfile | None = None
) -> list[tuple[ClaimDraft, _Meta]]:
    """Drafts for encounters, read in bulk (a handful of queries per chunk)."""
    session = ctx.session
    if not encounter_ids:
        return []
    conn = session.connection()  # column reads: no ORM row machinery
    from hpms.services.billing.fees import load_schedule, price_in

    fees = load_schedule(session, ctx.org_id) if fees is None else fees
    profile = session.get(BillingProfile, ctx.org_id) if profile is None else profile
    encs = [
        _Enc(*row)
        for row in _raw(
            conn,
            "SELECT id, patient_id, provider_id, location_id, service_date, place_of_service FROM encounter "
            "WHERE id IN ({}) ORDER BY id",
            encounter_ids,
        )
    ]
    if not encs:
        return []
    dx: dict[int, list[str]] = {}
    for encounter_id, code in _raw(
        conn,
        "SELECT encounter_id, code FROM encounter_diagnosis WHERE encounter_id IN ({}) ORDER BY encounter_id, seq",
        encounter_ids,
    ):
        dx.setdefault(encounter_id, []).append(code)
    lines: dict[int, list] = {}
    for encounter_id, seq, code, mods, units, ptrs, dos in _raw(
        conn,
        "SELECT encounter_id, seq, code, modifiers, units, pointers, service_date FROM encounter_line "
        "WHERE encounter_id IN ({}) ORDER BY encounter_id, seq",
        encounter_ids,
    ):
        lines.setdefault(encounter_id, []).append((seq, code, mods, units, ptrs, dos))
    pids = {e.patient_id for e in encs}
    provs = {
        r.id: r.npi
        for r in conn.execute(
            sa.select(Provider.id, Provider.npi).where(Provider.id.in_({e.provider_id for e in encs}))
        )
    }
    locs = {
        r.id: r
        for r in conn.execute(
            sa.select(
                Location.id, Location.npi, Location.postal_code, Location.address_line1, Location.city, Location.state
            ).where(Location.id.in_({e.location_id for e in encs}))
        )
    }
    # (first, last, dob, street, city, state, zip) as plain tuples: read for every draft
    pats = {
        pid: rest
        for pid, *rest in _raw(
            conn,
            "SELECT id, first_name, last_name, dob, address_line1, city, state, postal_code FROM patient "
            "WHERE id IN ({})",
            sorted(pids),
        )
    }
    covs: dict[int, list] = {}
    for r in conn.execute(
        sa.select(
            Coverage.id,
            Coverage.patient_id,
            Coverage.payer_id,
            Coverage.member_id_enc,
            Coverage.relationship,
            Coverage.subscriber_first_name,
            Coverage.subscriber_last_name,
            Coverage.subscriber_dob,
            Coverage.valid_from,
            Coverage.valid_to,
            Coverage.medicare_secondary_type,
        )
        .where(Coverage.patient_id.in_(pids), Coverage.priority == "primary", Coverage.active.is_(True))
        .order_by(Coverage.id)
    ):
        covs.setdefault(r.patient_id, []).append(r)
    payers = {
        r.id: (r.payer_id, r.claim_filing)
        for r in conn.execute(sa.select(Payer.id, Payer.payer_id, Payer.claim_filing).where(Payer.org_id == ctx.org_id))
    }
    today = ctx.now().date()
    tax_id = profile.tax_id if profile else None
    out = []
    for e in encs:
        cov = next(
            (
                c
                for c in covs.get(e.patient_id, ())
                if (c.valid_from is None or c.valid_from <= e.service_date)
                and (c.valid_to is None or e.service_date <= c.valid_to)
            ),
            None,
        )
        first, last, dob, street, city, state, zip_ = pats[e.patient_id]
        payer_id = cov.payer_id if cov else None
        dlines = []
        for seq, code, mods_text, units, ptrs, dos in lines.get(e.id, ()):
            mods = _mods(mods_text)
            unit_price = price_in(fees, code, mods, payer_id)
            dlines.append(
                DraftLine(
                    seq=seq,
                    code=code,
                    modifiers=mods,
                    units=units,
                    pointers=_ptrs(ptrs),
                    charge_cents=None if unit_price is None else unit_price * units,
                    service_date=_date(dos),
                )
            )
        total = sum(dl.charge_cents or 0 for dl in dlines)
        self_ = cov is not None and cov.relationship == "self"
        loc = locs[e.location_id]
        payer_code, filing = payers.get(payer_id, (None, "CI"))
        draft = ClaimDraft(
            encounter_id=e.id,
            service_date=e.service_date,
            place_of_service=e.place_of_service,
            diagnoses=tuple(dx.get(e.id, ())),
            lines=dlines,
            total_cents=total,
            billing_npi=loc.npi,
            billing_zip=loc.postal_code,
            billing_address1=loc.address_line1,
            billing_city=loc.city,
            billing_state=loc.state,
            patient_address1=street,
            patient_city=city,
            patient_state=state,
            patient_zip=zip_,
            tax_id=tax_id,
            rendering_npi=provs.get(e.provider_id),
            payer_id=payer_id,
            payer_code=payer_code,
            payer_filing=filing,
            responsibility="P",
            medicare_secondary_type=cov.medicare_secondary_type if cov else None,
            subscriber_member_id=cov.member_id_enc if cov else None,
            subscriber_last=(last if self_ else cov.subscriber_last_name) if cov else None,
            subscriber_first=(first if self_ else cov.subscriber_first_name) if cov else None,
            subscriber_dob=(_day(dob) if self_ else cov.subscriber_dob) if cov else None,
            today=today,
        )
        out.append(
            (
                draft,
                _Meta(
                    patient_id=e.patient_id,
                    payer_id=payer_id,
                    coverage_id=cov.id if cov else None,
                    location_id=e.location_id,
                ),
            )
        )
    return out


def scrub_encounters(ctx, encounter_ids: list[int] | None = None) -> list[tuple[int, list[Finding]]]:
    """`hpms claims scrub`: the findings of each encounter (default: every signed one); no write
    but the audit event."""
    require(ctx.actor, "claims.read")
    if encounter_ids is None:
        encounter_ids = list(
            ctx.session.execute(
                sa.select(Encounter.id)
                .where(Encounter.org_id == ctx.org_id, Encounter.status == "signed")
                .order_by(Encounter.id)
            ).scalars()
        )
    drafts = build_drafts(ctx, encounter_ids)
    found = {d.encounter_id for d, _ in drafts}
    missing = [i for i in encounter_ids if i not in found]
    if missing:
        raise NotFoundError(f"no encounter {missing[0]}", hint="see `hpms encounters list`")
    if drafts:
        audit.record(
            ctx,
            audit.Event(
                "read",
                "encounter",
                None,
                patient_ids=sorted({m.patient_id for _, m in drafts}),
                detail=f"scrub of {len(drafts)}",
            ),
        )
    return [(d.encounter_id, scrub(d)) for d, _ in drafts]


# ---- the run -------------------------------------------------------------------------------


def _check_out_dir(out_dir) -> Path:
    if out_dir is None or not str(out_dir).strip():
        raise ValidationError("--out", "is required (the directory the 837P files are written to)")
    path = Path(out_dir).expanduser()
    if not path.is_dir():
        raise ValidationError("--out", f"{path} is not a directory")
    probe = path / f".hpms-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValidationError("--out", f"{path} is not writable ({exc.strerror or exc})") from None
    return path.resolve()


def run(
    settings,
    *,
    through=None,
    payer=None,
    out_dir=None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    env: dict | None = None,
    clock=None,
    chunk: int = CHUNK,
) -> RunSummary:
    """One billing run (see the module docstring). Raises ValidationError (bad options, no
    billing profile), LockHeldError (exit 75), PermissionDenied."""
    from hpms.services.platform.context import open_context, system_clock

    clock = clock or system_clock

    def context(readonly: bool = False):
        return open_context(settings, env=env, clock=clock, readonly=readonly)

    out = None
    with context() as ctx:
        require(ctx.actor, "billing.run")
        out = None if dry_run else _check_out_dir(out_dir)
        from hpms.services.platform.localtime import parse_day

        through_d = parse_day("--through", through, today=ctx.now().date()) if through else ctx.now().date()
        payer_obj = None
        if payer:
            from hpms.services.lookups import find_payer

            try:
                payer_obj = find_payer(ctx, payer)
            except NotFoundError as exc:
                raise NotFoundError(f"--payer: {exc.message}", hint=exc.hint) from None
        profile = ctx.session.get(BillingProfile, ctx.org_id)
        if not dry_run and (profile is None or not profile.submitter_id or not profile.receiver_id):
            raise ValidationError("billing profile", "no submitter/receiver ids: run `hpms billing setup` first")
        if not dry_run:
            acquire_lock(ctx)
            brun = BillingRun(
                org_id=ctx.org_id,
                started_at=ctx.now(),
                through=through_d,
                payer_id=payer_obj.id if payer_obj else None,
                dry_run=False,
                user_id=ctx.actor.user_id,
            )
            ctx.session.add(brun)
            ctx.session.flush()
            run_id = brun.id
        else:
            run_id = None
    summary = RunSummary(run_id=run_id, dry_run=dry_run)
    payer_id = payer_obj.id if payer_obj else None
    try:
        with context() as ctx:
            todo = ctx.session.execute(
                sa.select(sa.func.count())
                .select_from(Encounter)
                .where(
                    Encounter.org_id == ctx.org_id, Encounter.status == "signed", Encounter.service_date <= through_d
                )
            ).scalar_one()
        last_id = 0
        done = 0
        while True:
            with context() as ctx:
                ids = list(
                    ctx.session.execute(
                        sa.select(Encounter.id)
                        .where(
                            Encounter.org_id == ctx.org_id,
                            Encounter.status == "signed",
                            Encounter.service_date <= through_d,
                            Encounter.id > last_id,
                        )
                        .order_by(Encounter.id)
                        .limit(chunk)
                    ).scalars()
                )
                if not ids:
                    break
                last_id = ids[-1]
                _bill_chunk(ctx, ids, run_id, payer_id, summary, dry_run=dry_run)
                if not dry_run:
                    heartbeat(ctx)
            done += len(ids)
            if progress:
                progress(done, todo)
        if dry_run:
            with context() as ctx:
                _check_waiting(ctx, None, payer_id, summary, dry_run=True)
            summary.written += summary.claims
        else:
            summary.recovered_files = _recover_files(context, summary)
            _write_new_files(context, run_id, out, payer_id, summary)
            summary.written = sum(f["claims"] for f in summary.files)
            summary.secondary = sum(f["secondary"] for f in summary.files)
    except BaseException:
        if not dry_run:
            _finish(context, run_id, summary, "failed")
        raise
    if not dry_run:
        _finish(context, run_id, summary, "done")
    return summary


def _finish(context, run_id: int, summary: RunSummary, status: str) -> None:
    try:
        with context() as ctx:
            r = ctx.session.get(BillingRun, run_id)
            r.status, r.finished_at = status, ctx.now()
            r.encounters, r.claims, r.failed = summary.encounters, summary.claims, summary.failed
            r.total_cents = int(summary.total * 100)
            audit.record(
                ctx,
                audit.Event(
                    "run",
                    "billing_run",
                    run_id,
                    detail=(
                        f"{status}: {summary.claims} claims, {summary.failed} failed, {summary.written} written "
                        f"({summary.secondary} secondary, {summary.held} held), {len(summary.files)} files"
                    ),
                ),
            )
            release_lock(ctx)
    except Exception:  # noqa: BLE001 - never hide the original error; a stale lock is taken over later
        if status == "done":
            raise


def _bill_chunk(ctx, ids: list[int], run_id, payer_filter, summary: RunSummary, *, dry_run: bool) -> None:
    session = ctx.session
    now = ctx.now()
    drafts = build_drafts(ctx, ids)
    good, bad = [], []
    for draft, meta in drafts:
        if payer_filter is not None and meta.payer_id != payer_filter:
            summary.skipped += 1
            continue
        findings = [f for f in scrub(draft) if f.severity == "error"]
        (bad if findings else good).append((draft, meta, findings))
    summary.encounters += len(good) + len(bad)
    summary.failed += len(bad)
    if dry_run:
        patients = sorted({m.patient_id for _, m, _ in good + bad})
        if patients:
            audit.record(
                ctx,
                audit.Event(
                    "read",
                    "encounter",
                    None,
                    patient_ids=patients,
                    detail=f"billing dry run: {len(good)} would bill, {len(bad)} would fail",
                ),
            )
        summary.claims += len(good)
        summary.total += sum((cents(d.total_cents) for d, _, _ in good), Decimal("0.00"))
        summary.findings.extend(
            {"encounter_id": d.encounter_id, "rule_id": f.rule_id, "field": f.field, "message": f.message}
            for d, _, fs in bad
            for f in fs
        )
        return
    # the work list: a finding still there keeps its item (and its age); one gone is resolved
    touched = [d.encounter_id for d, _, _ in bad] + [d.encounter_id for d, _, _ in good]
    open_items: dict[tuple, int] = {}
    if touched:
        for item in session.execute(
            sa.select(
                WorklistItem.id,
                WorklistItem.encounter_id,
                WorklistItem.rule_id,
                WorklistItem.field,
                WorklistItem.message,
            ).where(WorklistItem.encounter_id.in_(touched), WorklistItem.resolved_at.is_(None))
        ):
            open_items[(item.encounter_id, item.rule_id, item.field, item.message)] = item.id
    current = {(d.encounter_id, f.rule_id, f.field, f.message[:500]): (d, f) for d, _, fs in bad for f in fs}
    gone = [i for key, i in open_items.items() if key not in current]
    if gone:
        session.execute(sa.update(WorklistItem).where(WorklistItem.id.in_(gone)).values(resolved_at=now))
    new_items = [
        dict(
            org_id=ctx.org_id,
            encounter_id=key[0],
            claim_id=None,
            rule_id=f.rule_id,
            severity=f.severity,
            field=f.field,
            message=key[3],
            created_at=now,
            resolved_at=None,
        )
        for key, (d, f) in current.items()
        if key not in open_items
    ]
    if new_items:
        from hpms.db import bulk_insert

        bulk_insert(session, WorklistItem.__table__, new_items)
    if good:
        from hpms.db import bulk_insert
        from hpms.services.platform.counters import reserve

        first = reserve(session, CLAIM_COUNTER, len(good))
        claim_rows = [
            dict(
                org_id=ctx.org_id,
                encounter_id=d.encounter_id,
                patient_id=m.patient_id,
                payer_id=m.payer_id,
                coverage_id=m.coverage_id,
                control_number=f"{first + i:09d}",
                frequency="1",
                original_claim_id=None,
                payer_claim_number=None,
                status="ready",
                total_cents=d.total_cents,
                billing_run_id=run_id,
                x12_file_id=None,
                created_at=now,
                updated_at=now,
            )
            for i, (d, m, _) in enumerate(good)
        ]
        from hpms.db import new_ids

        claim_ids = new_ids(session, Claim.__table__, len(claim_rows))
        for cid, row in zip(claim_ids, claim_rows):
            row["id"] = cid
        bulk_insert(session, Claim.__table__, claim_rows)
        line_rows = [
            dict(
                claim_id=cid,
                seq=ln.seq,
                code=ln.code,
                modifiers=",".join(ln.modifiers),
                units=ln.units,
                pointers=",".join(str(p) for p in ln.pointers),
                charge_cents=ln.charge_cents,
                service_date=ln.service_date,
            )
            for cid, (d, _, _) in zip(claim_ids, good)
            for ln in d.lines
        ]
        for lid, row in zip(new_ids(session, ClaimLine.__table__, len(line_rows)), line_rows):
            row["id"] = lid
        bulk_insert(session, ClaimLine.__table__, line_rows)
        post_charges(ctx, _by_claim(claim_rows, line_rows), batch=f"billing run {run_id}")
        bulk_insert(
            session,
            ClaimEvent.__table__,
            [
                dict(claim_id=cid, at=now, status="ready", note=f"billing run {run_id}", user_id=ctx.actor.user_id)
                for cid in claim_ids
            ],
        )
        good_ids = [d.encounter_id for d, _, _ in good]
        session.execute(
            sa.update(Encounter)
            .where(Encounter.id.in_(good_ids), Encounter.status == "signed")
            .values(status="billed", billed_at=now, updated_at=now, version=Encounter.version + 1)
        )
        summary.claims += len(good)
        summary.total += sum((cents(d.total_cents) for d, _, _ in good), Decimal("0.00"))
    patients = sorted({m.patient_id for _, m, _ in good + bad})
    if patients:
        audit.record(
            ctx,
            audit.Event(
                "bill",
                "encounter",
                None,
                patient_ids=patients,
                detail=f"billing run {run_id}: {len(good)} claims, {len(bad)} to the work list",
            ),
        )


def _by_claim(claim_rows: list[dict], line_rows: list[dict]):
    lines: dict[int, list[dict]] = {}
    for ln in line_rows:
        lines.setdefault(ln["claim_id"], []).append(ln)
    return [(c, lines.get(c["id"], [])) for c in claim_rows]


def post_charges(ctx, claims: list[tuple[dict, list[dict]]], *, batch: str) -> None:
    """The charges of new claims go to the ledger: one entry per claim line, owed by the
    payer billed (the claim's payer), dated the line's date of service. `claims` pairs a claim
    row (id, encounter_id, patient_id, payer_id) with its line rows (id, charge_cents,
    service_date). Lines charged nothing post nothing (the ledger holds no zero entries)."""
    from hpms.db import bulk_insert
    from hpms.models import LedgerEntry

    now = ctx.now()
    bulk_insert(
        ctx.session,
        LedgerEntry.__table__,
        [
            dict(
                org_id=ctx.org_id,
                kind="charge",
                amount_cents=ln["charge_cents"],
                responsibility="insurance",
                patient_id=c["patient_id"],
                encounter_id=c["encounter_id"],
                claim_id=c["id"],
                claim_line_id=ln["id"],
                payer_id=c["payer_id"],
                posted_at=now,
                effective_date=ln["service_date"],
                reverses_id=None,
                pair_id=None,
                reference=None,
                batch=batch,
                created_by=ctx.actor.user_id,
            )
            for c, lines in claims
            for ln in lines
            if ln["charge_cents"]
        ],
    )


# ---- files ---------------------------------------------------------------------------------

PARTY_RULE_IDS = tuple(rid for rid, _, _ in PARTY_RULES)


def _check_waiting(
    ctx, run_id: int | None, payer_filter: int | None, summary: RunSummary, *, dry_run: bool
) -> list[int]:
    """The party rules (addresses, Medicare secondary type) on the claims waiting for a file
    that this run did not build: secondary claims queued after an 835, replacements, voids, a
    crashed run's claims. The writer reads those facts when it writes the file, and a secondary
    claim was never scrubbed as one. A claim failing them is held: no file, a work-list row
    naming it, until a run finds it fixed. Returns the held claims' ids; the dry run only
    reports them."""
    session = ctx.session
    q = (
        sa.select(
            Claim.id,
            Claim.encounter_id,
            Claim.patient_id,
            Claim.primary_claim_id,
            Payer.claim_filing,
            Coverage.medicare_secondary_type,
            Location.postal_code.label("loc_zip"),
            Location.address_line1.label("loc_street"),
            Location.city.label("loc_city"),
            Location.state.label("loc_state"),
            Patient.address_line1,
            Patient.city,
            Patient.state,
            Patient.postal_code,
        )
        .join(Encounter, Encounter.id == Claim.encounter_id)
        .join(Location, Location.id == Encounter.location_id)
        .join(Patient, Patient.id == Claim.patient_id)
        .join(Payer, Payer.id == Claim.payer_id)
        .outerjoin(Coverage, Coverage.id == Claim.coverage_id)
        .where(Claim.org_id == ctx.org_id, Claim.status == "ready", Claim.x12_file_id.is_(None))
        .order_by(Claim.id)
    )
    if run_id is not None:  # this run's own claims were scrubbed whole a moment ago
        q = q.where(sa.or_(Claim.billing_run_id.is_(None), Claim.billing_run_id != run_id))
    if payer_filter is not None:
        q = q.where(Claim.payer_id == payer_filter)
    rows = session.execute(q).all()
    held = []
    for r in rows:
        found = [
            f
            for f in scrub_parties(
                ClaimParties(
                    billing_zip=r.loc_zip,
                    billing_address1=r.loc_street,
                    billing_city=r.loc_city,
                    billing_state=r.loc_state,
                    patient_address1=r.address_line1,
                    patient_city=r.city,
                    patient_state=r.state,
                    patient_zip=r.postal_code,
                    payer_filing=r.claim_filing,
                    responsibility="S" if r.primary_claim_id else "P",
                    medicare_secondary_type=r.medicare_secondary_type,
                )
            )
            if f.severity == "error"
        ]
        if found:
            held.append((r, found))
    summary.held += len(held)
    if dry_run:
        held_ids = {r.id for r, _ in held}
        summary.written += len(rows) - len(held)
        summary.secondary += sum(1 for r in rows if r.primary_claim_id and r.id not in held_ids)
        summary.findings.extend(
            {
                "encounter_id": r.encounter_id,
                "claim_id": r.id,
                "rule_id": f.rule_id,
                "field": f.field,
                "message": f.message,
            }
            for r, fs in held
            for f in fs
        )
        if held:
            audit.record(
                ctx,
                audit.Event(
                    "read",
                    "claim",
                    None,
                    patient_ids=sorted({r.patient_id for r, _ in held}),
                    detail=f"billing dry run: {len(held)} waiting claims would be held",
                ),
            )
        return sorted(held_ids)
    now = ctx.now()
    checked = {r.id for r in rows}
    current = {(r.id, f.rule_id, f.field, f.message[:500]): (r, f) for r, fs in held for f in fs}
    kept, gone = set(), []
    # the open items of held claims: still failing -> kept (with their age); fixed, or the claim
    # no longer waits (voided, written) -> resolved
    for item in session.execute(
        sa.select(
            WorklistItem.id,
            WorklistItem.claim_id,
            WorklistItem.rule_id,
            WorklistItem.field,
            WorklistItem.message,
            Claim.status,
            Claim.x12_file_id,
        )
        .join(Claim, Claim.id == WorklistItem.claim_id)
        .where(
            WorklistItem.org_id == ctx.org_id,
            WorklistItem.resolved_at.is_(None),
            WorklistItem.rule_id.in_(PARTY_RULE_IDS),
        )
    ):
        key = (item.claim_id, item.rule_id, item.field, item.message)
        if key in current:
            kept.add(key)
        elif item.claim_id in checked or item.status != "ready" or item.x12_file_id is not None:
            gone.append(item.id)
    if gone:
        session.execute(sa.update(WorklistItem).where(WorklistItem.id.in_(gone)).values(resolved_at=now))
    new_items = [
        dict(
            org_id=ctx.org_id,
            encounter_id=r.encounter_id,
            claim_id=r.id,
            rule_id=f.rule_id,
            severity=f.severity,
            field=f.field,
            message=key[3],
            created_at=now,
            resolved_at=None,
        )
        for key, (r, f) in current.items()
        if key not in kept
    ]
    if new_items:
        from hpms.db import bulk_insert

        bulk_insert(session, WorklistItem.__table__, new_items)
    if held:
        audit.record(
            ctx,
            audit.Event(
                "hold",
                "claim",
                None,
                patient_ids=sorted({r.patient_id for r, _ in held}),
                detail=f"billing run {run_id}: {len(held)} claims held for the work list",
            ),
        )
    return sorted(r.id for r, _ in held)


def _file_groups(ctx, payer_filter, held: list[int]) -> list[tuple[int, int]]:
    """(payer id, billing location id) pairs with claims waiting for a file (the held ones aside)."""
    q = (
        sa.select(Claim.payer_id, Encounter.location_id)
        .join(Encounter, Encounter.id == Claim.encounter_id)
        .where(Claim.org_id == ctx.org_id, Claim.status == "ready", Claim.x12_file_id.is_(None))
        .group_by(Claim.payer_id, Encounter.location_id)
        .order_by(Claim.payer_id, Encounter.location_id)
    )
    if payer_filter is not None:
        q = q.where(Claim.payer_id == payer_filter)
    if held:
        q = q.where(Claim.id.not_in(held))
    return [(r[0], r[1]) for r in ctx.session.execute(q)]


def _write_new_files(context, run_id, out: Path, payer_filter, summary: RunSummary) -> None:
    from hpms.services.platform.counters import reserve

    with context() as ctx:
        held = _check_waiting(ctx, run_id, payer_filter, summary, dry_run=False)
        groups = _file_groups(ctx, payer_filter, held)
    for payer_id, location_id in groups:
        with context() as ctx:
            session = ctx.session
            isa = reserve(session, ISA_COUNTER, 1)
            gs = reserve(session, GS_COUNTER, 1)
            code = session.get(Payer, payer_id).payer_id
            safe = "".join(ch for ch in code if ch.isalnum())[:20] or str(payer_id)
            f = X12File(
                org_id=ctx.org_id,
                run_id=run_id,
                payer_id=payer_id,
                kind="837P",
                filename=f"837P-{safe}-L{location_id}-{isa:09d}.x12",
                directory=str(out),
                isa_control=isa,
                gs_control=gs,
                status="pending",
                created_at=ctx.now(),
            )
            session.add(f)
            session.flush()
            assign = sa.update(Claim).where(
                Claim.org_id == ctx.org_id,
                Claim.payer_id == payer_id,
                Claim.status == "ready",
                Claim.x12_file_id.is_(None),
                Claim.encounter_id.in_(sa.select(Encounter.id).where(Encounter.location_id == location_id)),
            )
            if held:
                assign = assign.where(Claim.id.not_in(held))
            res = session.execute(assign.values(x12_file_id=f.id, updated_at=ctx.now()))
            file_id = f.id
            f.claims = res.rowcount
        info = _materialize(context, file_id)
        summary.files.append(info)


def _recover_files(context, summary: RunSummary) -> int:
    """Files a crashed run recorded but did not finish (status pending): mark the ones renamed
    into place, write the others again (same control numbers, same claims). A written file that
    is gone later was moved by someone (e.g. after upload) and is never written again."""
    with context() as ctx:
        pending = list(
            ctx.session.execute(
                sa.select(X12File.id, X12File.directory, X12File.filename)
                .where(X12File.org_id == ctx.org_id, X12File.status == "pending")
                .order_by(X12File.id)
            )
        )
    count = 0
    for fid, directory, filename in pending:
        path = Path(directory) / filename
        for tmp in Path(directory).glob(f".{glob.escape(filename)}.*.tmp"):  # the dead run's (we hold the lock)
            tmp.unlink(missing_ok=True)
        if path.exists():  # renamed, then the process died before it was marked
            with context() as ctx:
                f = ctx.session.get(X12File, fid)
                f.status = "written"
                f.total_cents = ctx.session.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(Claim.total_cents), 0)).where(Claim.x12_file_id == fid)
                ).scalar_one()
            count += 1
            continue
        info = _materialize(context, fid)
        info["recovered"] = True
        summary.files.append(info)
        count += 1
    return count


def _materialize(context, file_id: int) -> dict:
    """Write a recorded file: temp name, fsync, rename; then mark it written."""
    from hpms.interop.x12 import x837p

    # written from a read transaction: the database stays open to other writers meanwhile
    with context(readonly=True) as ctx:
        f = ctx.session.get(X12File, file_id)
        directory, filename = Path(f.directory), f.filename
        final = directory / filename
        tmp = directory / f".{filename}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="ascii", newline="") as out:
                written = x837p.write_837p(
                    out,
                    **_file_parties(ctx, f),
                    claims=_claims_of_file(ctx, f),
                    created=f.created_at,
                    isa_control=f.isa_control,
                    gs_control=f.gs_control,
                    max_claims_per_st=5000,
                )
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
        payer_code = ctx.session.get(Payer, f.payer_id).payer_id
        isa = f.isa_control
        secondary = ctx.session.execute(
            sa.select(sa.func.count())
            .select_from(Claim)
            .where(Claim.x12_file_id == file_id, Claim.primary_claim_id.is_not(None))
        ).scalar_one()
    with context() as ctx:
        f = ctx.session.get(X12File, file_id)
        f.status, f.claims, f.total_cents = "written", written.claims, written.total_cents
        audit.record(ctx, audit.Event("export", "x12_file", f.id, detail=f"{filename}: {written.claims} claims"))
    return {
        "id": file_id,
        "path": str(final),
        "payer": payer_code,
        "claims": written.claims,
        "secondary": secondary,
        "total": cents(written.total_cents),
        "isa_control": isa,
    }


def _file_parties(ctx, f: X12File) -> dict:
    from hpms.interop.x12 import x837p

    session = ctx.session
    profile = session.get(BillingProfile, ctx.org_id)
    org = session.get(Organization, ctx.org_id)
    loc_id = session.execute(
        sa.select(Encounter.location_id)
        .join(Claim, Claim.encounter_id == Encounter.id)
        .where(Claim.x12_file_id == f.id)
        .limit(1)
    ).scalar_one_or_none()
    loc = (
        session.get(Location, loc_id)
        if loc_id
        else session.execute(sa.select(Location).where(Location.org_id == ctx.org_id).order_by(Location.id))
        .scalars()
        .first()
    )
    payer = session.get(Payer, f.payer_id)
    return dict(
        submitter=x837p.Submitter(
            name=profile.submitter_name or org.name,
            id=profile.submitter_id,
            contact_name=profile.contact_name or org.name,
            contact_phone="".join(ch for ch in (profile.contact_phone or loc.phone or "0000000000") if ch.isdigit()),
        ),
        receiver=x837p.Receiver(name=profile.receiver_name or "CLEARINGHOUSE", id=profile.receiver_id),
        billing_provider=x837p.BillingProvider(
            name=org.name,
            npi=loc.npi or "",
            tax_id=profile.tax_id or "",
            address1=loc.address_line1 or "",
            address2=loc.address_line2,
            city=loc.city or "",
            state=loc.state or "",
            zip="".join(ch for ch in (loc.postal_code or "") if ch.isdigit()),
        ),
        payer=x837p.Payer(name=payer.name, payer_id=payer.payer_id, claim_filing=payer.claim_filing),
        production=bool(profile.production),
    )


def _raw(conn, sql: str, ids: list[int]) -> list[tuple]:
    """Rows of `sql` (one IN list of integer ids) through the DBAPI cursor: no per-row work."""
    dbapi = conn.connection.driver_connection
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cur = dbapi.cursor()
    try:
        cur.execute(sql.format(", ".join([mark] * len(ids))), ids)
        return cur.fetchall()
    finally:
        cur.close()


@functools.lru_cache(maxsize=4096)
def _date(value) -> dt.date:
    """A DATE as the driver returns it (text on SQLite, a date on PostgreSQL)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _day(value: dt.date | str) -> dt.date:
    """`_date` for values that rarely repeat (dates of birth): not cached, so they do not push
    the dates of service out of its cache."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _claims_of_file(ctx, f: X12File) -> Iterator:
    """The claims of a file as writer input, read FILE_CHUNK at a time (memory stays flat)."""
    from hpms.interop.x12 import x837p

    session = ctx.session
    conn = session.connection()
    crypto = ctx.crypto
    members: dict[int, str] = {}
    renderings: dict[int, object] = {}
    # SBR05 goes with Medicare as a payer that is not primary
    medicare = session.get(Payer, f.payer_id).claim_filing in x837p.MEDICARE_FILING

    def member_of(cov_id: int, enc: str) -> str:
        member = members.get(cov_id)
        if member is None:
            member = members[cov_id] = crypto.decrypt(enc, "member_id")
        return member

    last = 0
    while True:
        rows = conn.execute(
            sa.select(
                Claim.id,
                Claim.control_number,
                Claim.total_cents,
                Claim.frequency,
                Claim.payer_claim_number,
                Claim.encounter_id,
                Claim.patient_id,
                Claim.coverage_id,
                Claim.primary_claim_id,
                Encounter.service_date,
                Encounter.place_of_service,
                Encounter.provider_id,
                Patient.first_name,
                Patient.last_name,
                Patient.dob,
                Patient.sex_at_birth,
                Patient.address_line1,
                Patient.address_line2,
                Patient.city,
                Patient.state,
                Patient.postal_code,
            )
            .join(Encounter, Encounter.id == Claim.encounter_id)
            .join(Patient, Patient.id == Claim.patient_id)
            .where(Claim.x12_file_id == f.id, Claim.id > last)
            .order_by(Claim.id)
            .limit(FILE_CHUNK)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        cids = [r.id for r in rows]
        eids = [r.encounter_id for r in rows]
        # secondary claims: the primary payer's adjudication (COB loops)
        cob = _cob(ctx, sorted({r.primary_claim_id for r in rows if r.primary_claim_id}), members)
        adjudicated = {r.id: cob[r.primary_claim_id][1] for r in rows if r.primary_claim_id in cob}
        # the two biggest reads (every line, every diagnosis) straight from the driver
        lines: dict[int, list] = {}
        for claim_id, seq, code, mods, units, ptrs, charge, dos in _raw(
            conn,
            "SELECT claim_id, seq, code, modifiers, units, pointers, charge_cents, service_date "
            "FROM claim_line WHERE claim_id IN ({}) ORDER BY claim_id, seq",
            cids,
        ):
            lines.setdefault(claim_id, []).append(
                x837p.Line(
                    code=code,
                    modifiers=_mods(mods),
                    charge_cents=charge,
                    units=units,
                    pointers=_ptrs(ptrs),
                    service_date=_date(dos),
                    adjudication=adjudicated.get(claim_id, {}).get(seq),
                )
            )
        dx: dict[int, list[str]] = {}
        for encounter_id, code in _raw(
            conn,
            "SELECT encounter_id, code FROM encounter_diagnosis WHERE encounter_id IN ({}) ORDER BY encounter_id, seq",
            eids,
        ):
            dx.setdefault(encounter_id, []).append(code)
        covs = {
            c.id: c
            for c in conn.execute(
                sa.select(
                    Coverage.id,
                    Coverage.member_id_enc,
                    Coverage.relationship,
                    Coverage.group_number,
                    Coverage.subscriber_first_name,
                    Coverage.subscriber_last_name,
                    Coverage.subscriber_dob,
                    Coverage.priority,
                    Coverage.medicare_secondary_type,
                ).where(Coverage.id.in_({r.coverage_id for r in rows if r.coverage_id}))
            )
        }
        seconds = _secondary_coverages(conn, f.payer_id, {r.patient_id for r in rows if not r.primary_claim_id})
        need = {r.provider_id for r in rows} - renderings.keys()
        provs = (
            {
                p.id: p
                for p in conn.execute(
                    sa.select(
                        Provider.id, Provider.last_name, Provider.first_name, Provider.npi, Provider.taxonomy
                    ).where(Provider.id.in_(need))
                )
            }
            if need
            else {}
        )
        for r in rows:
            cov = covs.get(r.coverage_id)
            sex = {"female": "F", "male": "M"}.get(r.sex_at_birth or "", "U")
            addr = dict(
                address1=r.address_line1 or "",
                address2=r.address_line2,
                city=r.city or "",
                state=r.state or "",
                zip="".join(ch for ch in (r.postal_code or "") if ch.isdigit()),
            )
            member = ""
            if cov is not None:
                member = members.get(cov.id)
                if member is None:
                    member = members[cov.id] = crypto.decrypt(cov.member_id_enc, "member_id")
            responsibility = "S" if r.primary_claim_id else "P"
            insurance_type = (
                cov.medicare_secondary_type if medicare and cov is not None and r.primary_claim_id else None
            )
            if cov is None or cov.relationship == "self":
                subscriber = x837p.Subscriber(
                    last=r.last_name,
                    first=r.first_name,
                    member_id=member,
                    dob=r.dob,
                    sex=sex,
                    relationship="18",
                    group_number=cov.group_number if cov else None,
                    payer_responsibility=responsibility,
                    insurance_type=insurance_type,
                    **addr,
                )
                patient = None
            else:
                subscriber = x837p.Subscriber(
                    last=cov.subscriber_last_name or r.last_name,
                    first=cov.subscriber_first_name or "",
                    member_id=member,
                    dob=cov.subscriber_dob,
                    sex="U",
                    relationship="",
                    group_number=cov.group_number,
                    payer_responsibility=responsibility,
                    insurance_type=insurance_type,
                    **addr,
                )
                rel = {"spouse": "01", "child": "19"}.get(cov.relationship, "G8")
                patient = x837p.Patient(
                    last=r.last_name, first=r.first_name, dob=r.dob, sex=sex, relationship=rel, **addr
                )
            other = None
            if r.primary_claim_id:
                if r.primary_claim_id in cob:
                    other = cob[r.primary_claim_id][0]
            elif r.patient_id in seconds and (cov is None or cov.priority == "primary"):
                other = _next_payer(seconds[r.patient_id], r, member_of)
            rendering = renderings.get(r.provider_id)
            if rendering is None:
                prov = provs[r.provider_id]
                rendering = renderings[r.provider_id] = x837p.RenderingProvider(
                    last=prov.last_name, first=prov.first_name, npi=prov.npi or "", taxonomy=prov.taxonomy
                )
            yield x837p.Claim(
                control_number=r.control_number,
                total_cents=r.total_cents,
                place_of_service=r.place_of_service,
                frequency=r.frequency,
                payer_claim_number=r.payer_claim_number,
                diagnoses=tuple(dx.get(r.encounter_id, ())),
                service_date=r.service_date,
                rendering=rendering,
                subscriber=subscriber,
                patient=patient,
                lines=tuple(lines.get(r.id, ())),
                other_payer=other,
            )


def _secondary_coverages(conn, payer_id: int, patient_ids: set[int]) -> dict[int, list]:
    """The active secondary coverages (with another payer) of the patients of primary claims, in
    one read: a primary claim names the payer that comes next (2320/2330)."""
    if not patient_ids:
        return {}
    out: dict[int, list] = {}
    for c in conn.execute(
        sa.select(
            Coverage.id,
            Coverage.patient_id,
            Coverage.member_id_enc,
            Coverage.relationship,
            Coverage.group_number,
            Coverage.subscriber_first_name,
            Coverage.subscriber_last_name,
            Coverage.valid_from,
            Coverage.valid_to,
            Coverage.medicare_secondary_type,
            Payer.name.label("payer_name"),
            Payer.payer_id.label("payer_code"),
            Payer.claim_filing,
        )
        .join(Payer, Payer.id == Coverage.payer_id)
        .where(
            Coverage.patient_id.in_(patient_ids),
            Coverage.priority == "secondary",
            Coverage.active.is_(True),
            Coverage.payer_id != payer_id,
        )
        .order_by(Coverage.id)
    ):
        out.setdefault(c.patient_id, []).append(c)
    return out


def _next_payer(
    coverages: Iterable[sa.Row], r: sa.Row, member_of: Callable[[int, str], str]
) -> x837p.OtherPayer | None:
    """The 2320/2330 loops of a primary claim: the patient's secondary coverage on the date of
    service (the first, as `secondary` bills it), not adjudicated yet; None without one."""
    from hpms.interop.x12 import x837p

    day = _date(r.service_date)
    c = next(
        (
            c
            for c in coverages
            if (c.valid_from is None or c.valid_from <= day) and (c.valid_to is None or day <= c.valid_to)
        ),
        None,
    )
    if c is None:
        return None
    self_ = c.relationship == "self"
    return x837p.OtherPayer(
        payer_name=c.payer_name,
        payer_id=c.payer_code,
        subscriber_last=r.last_name if self_ else (c.subscriber_last_name or r.last_name),
        subscriber_first=r.first_name if self_ else c.subscriber_first_name,
        member_id=member_of(c.id, c.member_id_enc),
        relationship=RELATIONSHIP_CODES.get(c.relationship, "G8"),
        group_number=c.group_number,
        responsibility="S",
        claim_filing=c.claim_filing,
        insurance_type=c.medicare_secondary_type if c.claim_filing in x837p.MEDICARE_FILING else None,
    )


RELATIONSHIP_CODES = {"self": "18", "spouse": "01", "child": "19"}  # else G8 (other)


def _cob(ctx, primary_ids: list[int], members: dict[int, str]) -> dict[int, tuple]:
    """For secondary claims: how each primary claim was adjudicated, from its latest posted
    remittance (not a reversal) -> {primary claim id: (OtherPayer, {line seq: LineAdjudication})}.
    A primary claim without a posted remittance is left out (its secondary is written without
    the COB loops)."""
    from hpms.interop.x12 import x837p
    from hpms.models import LedgerEntry, RemitAdjustment, RemitClaim, RemitFile, Remittance

    session = ctx.session
    out: dict[int, tuple] = {}
    for pid in primary_ids:
        found = session.execute(
            sa.select(RemitClaim, Remittance.payment_date, RemitFile.imported_at)
            .join(Remittance, Remittance.id == RemitClaim.remittance_id)
            .join(RemitFile, RemitFile.id == Remittance.remit_file_id)
            .where(RemitClaim.claim_id == pid, RemitClaim.posted_at.is_not(None), RemitClaim.status_code != "22")
            .order_by(RemitClaim.id.desc())
            .limit(1)
        ).first()
        primary = session.get(Claim, pid)
        cov = session.get(Coverage, primary.coverage_id) if primary.coverage_id else None
        if found is None or cov is None:
            continue
        rc, paid_on, imported = found
        day = paid_on or imported.date()
        payer = session.get(Payer, primary.payer_id)
        pat = session.get(Patient, primary.patient_id)
        member = members.get(cov.id)
        if member is None:
            member = members[cov.id] = ctx.crypto.decrypt(cov.member_id_enc, "member_id")
        self_ = cov.relationship == "self"
        paid: dict[int | None, int] = {}
        for line_id, cents_ in session.execute(
            sa.select(LedgerEntry.claim_line_id, sa.func.sum(LedgerEntry.amount_cents))
            .where(
                LedgerEntry.batch == f"835:{rc.id}",
                LedgerEntry.kind == "insurance_payment",
                LedgerEntry.claim_id == pid,
                LedgerEntry.reverses_id.is_(None),
            )
            .group_by(LedgerEntry.claim_line_id)
        ):
            paid[line_id] = -int(cents_)
        adjustments: dict[int | None, list] = {}
        for a in session.execute(
            sa.select(RemitAdjustment).where(RemitAdjustment.remit_claim_id == rc.id).order_by(RemitAdjustment.id)
        ).scalars():
            adjustments.setdefault(a.claim_line_id, []).append(
                x837p.Adjustment(a.group_code, a.reason_code, a.amount_cents)
            )
        by_seq = {}
        for ln in session.execute(
            sa.select(ClaimLine).where(ClaimLine.claim_id == pid).order_by(ClaimLine.seq)
        ).scalars():
            if ln.id not in paid and ln.id not in adjustments:
                continue  # the payer said nothing of this line
            by_seq[ln.seq] = x837p.LineAdjudication(
                paid_cents=paid.get(ln.id, 0),
                code=ln.code,
                date=day,
                modifiers=_mods(ln.modifiers),
                units=ln.units,
                adjustments=tuple(adjustments.get(ln.id, ())),
            )
        other = x837p.OtherPayer(
            payer_name=payer.name,
            payer_id=payer.payer_id,
            subscriber_last=pat.last_name if self_ else (cov.subscriber_last_name or pat.last_name),
            subscriber_first=pat.first_name if self_ else cov.subscriber_first_name,
            member_id=member,
            relationship=RELATIONSHIP_CODES.get(cov.relationship, "G8"),
            group_number=cov.group_number,
            responsibility="P",
            claim_filing=payer.claim_filing,
            paid_cents=rc.paid_cents,
            remaining_patient_cents=rc.patient_resp_cents,
            adjustments=tuple(adjustments.get(None, ())),
        )
        out[pid] = (other, by_seq)
    return out
