"""The billing run: signed encounters -> scrubbed, priced claims -> one 837P file per payer and
billing location, safe to run from cron.

- A lock (`job_lock` row, `lock`) keeps two runs apart: exit 75 while another live run holds
  it; the lock of a run that died is taken over.
- Claims are created in chunks of drafts (`drafts`), each one transaction that also marks its
  encounters billed; a partial unique index allows one original claim per encounter and payer.
  A rerun, or a run after a crash, finds no signed encounter twice.
- Files (`files`): a short transaction records the file (its control numbers) and assigns its
  claims; the file is then written from a read, to a temp name, fsynced and renamed. A recorded
  file whose name is missing (a crash in between) is written again, identically, by the next run.
- A file also takes the claims waiting for one that the run did not build (secondary claims
  queued after an 835, replacements, voids). They pass the scrubber's party rules first
  (addresses, the Medicare secondary type: what the writer reads now); one that fails stays
  ready, out of the file, with a work-list row naming it.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
from array import array
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.db import insert_rows, new_ids
from hpms.errors import ValidationError
from hpms.fileio import check_directory
from hpms.models import BillingRun, Claim, ClaimEvent, ClaimLine, Encounter
from hpms.services.billing import files, worklist
from hpms.services.billing.control import CLAIM_COUNTER
from hpms.services.billing.drafts import DraftMeta, build_drafts, scrub_encounters
from hpms.services.billing.lock import acquire_lock, heartbeat, release_lock
from hpms.services.billing.profile import for_sending, get_profile, set_profile
from hpms.services.billing.rows import select_in
from hpms.services.billing.scrubber import ClaimDraft, Finding, scrub
from hpms.services.lookups import find_payer
from hpms.services.platform import audit
from hpms.services.platform.context import Clock, open_context, system_clock
from hpms.services.platform.counters import reserve
from hpms.services.platform.localtime import parse_day
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.config import Settings
    from hpms.services.platform.context import Ctx

# what the faces, the demo and the benchmarks call here besides the run
__all__ = ["RunSummary", "get_profile", "post_charges", "run", "scrub_encounters", "set_profile"]

CHUNK = 2000

_CLAIM_COLUMNS = [
    "id",
    "org_id",
    "encounter_id",
    "patient_id",
    "payer_id",
    "coverage_id",
    "control_number",
    "frequency",
    "original_claim_id",
    "payer_claim_number",
    "status",
    "total_cents",
    "billing_run_id",
    "x12_file_id",
    "created_at",
    "updated_at",
]
_LINE_COLUMNS = ["claim_id", "seq", "code", "modifiers", "units", "pointers", "charge_cents", "service_date"]

# A chunk's claims: this run's, between the first and the last id drawn for them (ids are drawn
# in increasing order, a chunk at a time).
_C = Claim.__table__
_IN_CHUNK = sa.and_(
    _C.c.billing_run_id == sa.bindparam("run_id"), _C.c.id.between(sa.bindparam("first"), sa.bindparam("last"))
)
_HISTORY_OF_CHUNK = ClaimEvent.__table__.insert().from_select(
    ["claim_id", "at", "status", "note", "user_id"],
    sa.select(
        _C.c.id,
        sa.bindparam("now", type_=ClaimEvent.__table__.c.at.type),
        sa.literal("ready"),
        sa.bindparam("note", type_=sa.String),
        sa.bindparam("user_id", type_=sa.Integer),
    )
    .where(_IN_CHUNK)
    .order_by(_C.c.id),
)
_E = Encounter.__table__
_BILL_ENCOUNTERS = (
    _E.update()
    .where(_E.c.id.in_(sa.select(_C.c.encounter_id).where(_IN_CHUNK)), _E.c.status == "signed")
    .values(
        status="billed",
        billed_at=sa.bindparam("now", type_=_E.c.billed_at.type),
        updated_at=sa.bindparam("now", type_=_E.c.updated_at.type),
        version=_E.c.version + 1,
    )
)


_ONE_CLAIM = _C.c.id == sa.bindparam("claim_id")


@functools.cache
def _charges_insert(which: str) -> sa.Insert:
    """The ledger's charges of new claims, from their lines as written: one entry per claim
    line, owed by the payer billed (the claim's payer), dated the line's date of service; lines
    charged nothing post nothing (the ledger holds no zero entries). `which` claims: "chunk", a
    billing run's chunk (binds run_id, first, last), or "claim" (binds claim_id); and now, note
    (the entries' batch), user_id. Built on first use: the ledger tables load then."""
    from hpms.models import LedgerEntry

    ledger, lines = LedgerEntry.__table__, ClaimLine.__table__
    return ledger.insert().from_select(
        [
            "org_id",
            "kind",
            "amount_cents",
            "responsibility",
            "patient_id",
            "encounter_id",
            "claim_id",
            "claim_line_id",
            "payer_id",
            "posted_at",
            "effective_date",
            "batch",
            "created_by",
        ],
        sa.select(
            _C.c.org_id,
            sa.literal("charge"),
            lines.c.charge_cents,
            sa.literal("insurance"),
            _C.c.patient_id,
            _C.c.encounter_id,
            _C.c.id,
            lines.c.id,
            _C.c.payer_id,
            sa.bindparam("now", type_=ledger.c.posted_at.type),
            lines.c.service_date,
            sa.bindparam("note", type_=sa.String),
            sa.bindparam("user_id", type_=sa.Integer),
        )
        .join_from(lines, _C, _C.c.id == lines.c.claim_id)
        .where({"chunk": _IN_CHUNK, "claim": _ONE_CLAIM}[which], lines.c.charge_cents != 0)
        .order_by(_C.c.id, lines.c.seq),
    )


@functools.lru_cache(maxsize=4096)
def _joined(values: tuple) -> str:
    """Modifiers or pointers as stored ("25,59", "1,2")."""
    return ",".join(map(str, values))


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


def _check_out_dir(out_dir: str | Path | None) -> Path:
    if out_dir is None or not str(out_dir).strip():
        raise ValidationError("out", "is required (the directory the 837P files are written to)")
    return check_directory(out_dir, field="out").resolve()


def run(
    settings: Settings,
    *,
    through: str | dt.date | None = None,
    payer: str | None = None,
    out_dir: str | Path | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    env: dict[str, str] | None = None,
    clock: Clock | None = None,
    chunk: int = CHUNK,
) -> RunSummary:
    """One billing run (see the module docstring). Raises ValidationError (bad options, no
    billing profile), NotFoundError (unknown payer), LockHeldError (exit 75), PermissionDenied."""
    run_clock = clock or system_clock

    def context(readonly: bool = False) -> AbstractContextManager[Ctx]:
        return open_context(settings, env=env, clock=run_clock, readonly=readonly)

    with context() as ctx:
        require(ctx.actor, "billing.run")
        out = None if dry_run else _check_out_dir(out_dir)
        through_d = parse_day("through", through, today=ctx.now().date()) if through else ctx.now().date()
        payer_obj = find_payer(ctx, payer, field="payer") if payer else None
        if not dry_run:
            for_sending(ctx)
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
    # the run allocates millions of short-lived rows, tuples and strings and frees them by
    # reference counting; the cyclic collector, triggered by those allocations, would walk every
    # object of the process (the code sets, the mapped classes) again and again: off meanwhile
    collecting = gc.isenabled()
    gc.disable()
    try:
        with context(readonly=True) as ctx:
            # the encounters due, listed once (8 bytes each): paging through the signed ones in id
            # order instead sorts all that are left of them again for every chunk
            listed = array(
                "q",
                ctx.session.execute(
                    sa.select(Encounter.id)
                    .where(
                        Encounter.org_id == ctx.org_id,
                        Encounter.status == "signed",
                        Encounter.service_date <= through_d,
                    )
                    .order_by(Encounter.id)
                ).scalars(),
            )
        todo = len(listed)
        done = 0
        for start in range(0, todo, chunk):
            part = list(listed[start : start + chunk])
            with context() as ctx:
                # still signed and due, in the chunk's transaction: an encounter changed since the
                # list was read is left alone
                ids = list(
                    ctx.session.execute(
                        sa.select(Encounter.id)
                        .where(
                            col(Encounter.id).in_(part),
                            Encounter.status == "signed",
                            Encounter.service_date <= through_d,
                        )
                        .order_by(Encounter.id)
                    ).scalars()
                )
                if ids:
                    _bill_chunk(ctx, ids, run_id, payer_id, summary, dry_run=dry_run)
                if not dry_run:
                    heartbeat(ctx)
            done += len(part)
            if progress:
                progress(done, todo)
        if dry_run:
            with context() as ctx:
                waiting = files.hold_waiting(ctx, None, payer_id, dry_run=True)
            summary.held += len(waiting.held)
            summary.written += waiting.claims - len(waiting.held) + summary.claims
            summary.secondary += waiting.secondary
            summary.findings.extend(waiting.findings)
        else:
            assert run_id is not None and out is not None  # a run that writes has both
            summary.recovered_files, recovered = files.recover_files(context)
            summary.files.extend(recovered)
            with context() as ctx:
                waiting = files.hold_waiting(ctx, run_id, payer_id, dry_run=False)
                groups = files.file_groups(ctx, payer_id, waiting.held)
            summary.held += len(waiting.held)
            for file_payer, location_id in groups:
                summary.files.append(files.write_file(context, run_id, out, file_payer, location_id, waiting.held))
            summary.written = sum(f["claims"] for f in summary.files)
            summary.secondary = sum(f["secondary"] for f in summary.files)
    except BaseException:
        if run_id is not None:
            _finish(context, run_id, summary, "failed")
        raise
    finally:
        if collecting:
            gc.enable()
    if run_id is not None:
        _finish(context, run_id, summary, "done")
    return summary


def _finish(context: files.Transaction, run_id: int, summary: RunSummary, status: str) -> None:
    try:
        with context() as ctx:
            r = ctx.session.get(BillingRun, run_id)
            assert r is not None  # recorded by this run
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


def _bill_chunk(
    ctx: Ctx, ids: list[int], run_id: int | None, payer_filter: int | None, summary: RunSummary, *, dry_run: bool
) -> None:
    """Scrub the drafts of a chunk of encounters: the clean ones become claims (lines, charges,
    history; their encounters billed), the others go to the work list. The dry run only counts."""
    session = ctx.session
    now = ctx.now()
    drafts = build_drafts(ctx, ids)
    good: list[tuple[ClaimDraft, DraftMeta, list[Finding]]] = []
    bad: list[tuple[ClaimDraft, DraftMeta, list[Finding]]] = []
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
        summary.total += _amount(d.total_cents for d, _, _ in good)
        summary.findings.extend(
            {"encounter_id": d.encounter_id, "rule_id": f.rule_id, "field": f.field, "message": f.message}
            for d, _, fs in bad
            for f in fs
        )
        return
    # the work list: a finding still there keeps its item (and its age); one gone is resolved
    touched = [d.encounter_id for d, _, _ in bad] + [d.encounter_id for d, _, _ in good]
    open_items: dict[tuple[int, str, str | None, str], int] = {}
    if touched:
        for item_id, encounter_id, rule_id, field_, message in select_in(
            session.connection(),
            "SELECT id, encounter_id, rule_id, field, message FROM worklist_item "
            "WHERE encounter_id IN ({}) AND resolved_at IS NULL",
            touched,
        ):
            open_items[(encounter_id, rule_id, field_, message)] = item_id
    current = {
        worklist.key_of(d.encounter_id, f): worklist.Owned(d.encounter_id, None, f) for d, _, fs in bad for f in fs
    }
    gone = [i for key, i in open_items.items() if key not in current]
    worklist.reconcile(session, ctx.org_id, now, current, open_items, gone)
    if good:
        first = reserve(session, CLAIM_COUNTER, len(good))
        claim_ids = new_ids(session, Claim.__table__, len(good))
        org_id = ctx.org_id
        insert_rows(
            session,
            Claim.__table__,
            _CLAIM_COLUMNS,
            [
                [cid, org_id, d.encounter_id, m.patient_id, m.payer_id, m.coverage_id, f"{first + i:09d}", "1"]
                + [None, None, "ready", d.total_cents, run_id, None, now, now]
                for i, (cid, (d, m, _)) in enumerate(zip(claim_ids, good))
            ],
        )
        insert_rows(
            session,
            ClaimLine.__table__,
            _LINE_COLUMNS,
            [
                [cid, ln.seq, ln.code, _joined(ln.modifiers), ln.units, _joined(ln.pointers), ln.charge_cents]
                + [ln.service_date]
                for cid, (d, _, _) in zip(claim_ids, good)
                for ln in d.lines
            ],
        )
        # the charges, the claims' history and the encounters billed follow from the rows just
        # written: set-based, one statement each, nothing built per row in Python
        chunk = {
            "run_id": run_id,
            "first": min(claim_ids),
            "last": max(claim_ids),
            "now": now,
            "user_id": ctx.actor.user_id,
            "note": f"billing run {run_id}",
        }
        conn = session.connection()
        conn.execute(_charges_insert("chunk"), chunk)
        conn.execute(_HISTORY_OF_CHUNK, chunk)
        conn.execute(_BILL_ENCOUNTERS, chunk)
        summary.claims += len(good)
        summary.total += _amount(d.total_cents for d, _, _ in good)
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


def post_charges(ctx: Ctx, claim_id: int, *, batch: str) -> None:
    """The charges of a new claim, whose lines are written, go to the ledger (as a billing
    run posts them: see `_charges_insert`)."""
    ctx.session.connection().execute(
        _charges_insert("claim"),
        {"claim_id": claim_id, "now": ctx.now(), "note": batch, "user_id": ctx.actor.user_id},
    )


def _amount(cents: Iterable[int]) -> Decimal:
    """A sum of integer cents as a two-place Decimal."""
    return Decimal(sum(cents)).scaleb(-2)
