"""The 837P files of a billing run: one per payer and billing location, recorded (control
numbers, claims assigned) in a short transaction, then written from a read to a temp name,
fsynced and renamed; a recorded file a crash left unwritten is written again, identically. The
claims waiting for a file that the run did not build pass the scrubber's party rules first."""

from __future__ import annotations

import glob
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlmodel import col

from hpms.fileio import atomic_file
from hpms.interop.x12 import x837p
from hpms.models import (
    Claim,
    Coverage,
    Encounter,
    Location,
    Organization,
    Patient,
    Payer,
    WorklistItem,
    X12File,
)
from hpms.models.billing_out import money
from hpms.services.billing import worklist
from hpms.services.billing.control import GS_COUNTER, ISA_COUNTER
from hpms.services.billing.file_claims import claims_of_file
from hpms.services.billing.profile import for_sending
from hpms.services.billing.rows import referenced
from hpms.services.billing.scrubber import PARTY_RULES, ClaimParties, Finding, scrub_parties
from hpms.services.platform import audit
from hpms.services.platform.counters import reserve

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

PARTY_RULE_IDS = tuple(rid for rid, _, _ in PARTY_RULES)


class Transaction(Protocol):
    """Opens one transaction of the run (`readonly`: a read that leaves the database open to
    writers)."""

    def __call__(self, readonly: bool = False) -> AbstractContextManager[Ctx]: ...


@dataclass(slots=True)
class Waiting:
    """The claims waiting for a file that a run did not build: how many, how many of the ones
    not held are secondary claims, the ids of those held and their findings."""

    claims: int = 0
    secondary: int = 0
    held: list[int] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)


def hold_waiting(ctx: Ctx, run_id: int | None, payer_filter: int | None, *, dry_run: bool) -> Waiting:
    """The party rules (addresses, Medicare secondary type) on the claims waiting for a file
    that this run did not build: secondary claims queued after an 835, replacements, voids, a
    crashed run's claims. The writer reads those facts when it writes the file, and a secondary
    claim was never scrubbed as one. A claim failing them is held: no file, a work-list row
    naming it, until a run finds it fixed. The dry run only reports them."""
    session = ctx.session
    q = (
        sa.select(
            col(Claim.id),
            Claim.encounter_id,
            Claim.patient_id,
            col(Claim.primary_claim_id),
            Payer.claim_filing,
            col(Coverage.medicare_secondary_type),
            col(Location.postal_code).label("loc_zip"),
            col(Location.address_line1).label("loc_street"),
            col(Location.city).label("loc_city"),
            col(Location.state).label("loc_state"),
            col(Patient.address_line1),
            col(Patient.city),
            col(Patient.state),
            col(Patient.postal_code),
        )
        .join(Encounter, Encounter.id == Claim.encounter_id)
        .join(Location, Location.id == Encounter.location_id)
        .join(Patient, Patient.id == Claim.patient_id)
        .join(Payer, Payer.id == Claim.payer_id)
        .outerjoin(Coverage, Coverage.id == Claim.coverage_id)
        .where(Claim.org_id == ctx.org_id, Claim.status == "ready", col(Claim.x12_file_id).is_(None))
        .order_by(Claim.id)
    )
    if run_id is not None:  # this run's own claims were scrubbed whole a moment ago
        q = q.where(sa.or_(col(Claim.billing_run_id).is_(None), Claim.billing_run_id != run_id))
    if payer_filter is not None:
        q = q.where(Claim.payer_id == payer_filter)
    rows = session.execute(q).all()
    held: list[tuple[sa.Row, list[Finding]]] = []
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
    held_ids = {r.id for r, _ in held}
    out = Waiting(
        claims=len(rows),
        secondary=sum(1 for r in rows if r.primary_claim_id and r.id not in held_ids),
        held=sorted(held_ids),
        findings=[
            {
                "encounter_id": r.encounter_id,
                "claim_id": r.id,
                "rule_id": f.rule_id,
                "field": f.field,
                "message": f.message,
            }
            for r, fs in held
            for f in fs
        ],
    )
    if dry_run:
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
        return out
    now = ctx.now()
    checked = {r.id for r in rows}
    current = {worklist.key_of(r.id, f): worklist.Owned(r.encounter_id, r.id, f) for r, fs in held for f in fs}
    kept: set[tuple] = set()
    gone: list[int] = []
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
            col(WorklistItem.resolved_at).is_(None),
            WorklistItem.rule_id.in_(PARTY_RULE_IDS),
        )
    ):
        key = (item.claim_id, item.rule_id, item.field, item.message)
        if key in current:
            kept.add(key)
        elif item.claim_id in checked or item.status != "ready" or item.x12_file_id is not None:
            gone.append(item.id)
    worklist.reconcile(session, ctx.org_id, now, current, kept, gone)
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
    return out


def file_groups(ctx: Ctx, payer_filter: int | None, held: list[int]) -> list[tuple[int, int]]:
    """(payer id, billing location id) pairs with claims waiting for a file (the held ones aside)."""
    q = (
        sa.select(Claim.payer_id, Encounter.location_id)
        .join(Encounter, Encounter.id == Claim.encounter_id)
        .where(Claim.org_id == ctx.org_id, Claim.status == "ready", col(Claim.x12_file_id).is_(None))
        .group_by(Claim.payer_id, Encounter.location_id)
        .order_by(Claim.payer_id, Encounter.location_id)
    )
    if payer_filter is not None:
        q = q.where(Claim.payer_id == payer_filter)
    if held:
        q = q.where(col(Claim.id).not_in(held))
    return [(r[0], r[1]) for r in ctx.session.execute(q)]


def write_file(
    transaction: Transaction, run_id: int, out: Path, payer_id: int, location_id: int, held: list[int]
) -> dict[str, Any]:
    """Record the file of one payer and billing location, assign it the claims waiting for one
    (the held ones aside), then write it."""
    with transaction() as ctx:
        session = ctx.session
        isa = reserve(session, ISA_COUNTER, 1)
        gs = reserve(session, GS_COUNTER, 1)
        code = referenced(session, Payer, payer_id).payer_id
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
        # on the table, not the mapped class: nothing of the session needs the claims updated
        assign = sa.update(Claim.__table__).where(
            Claim.org_id == ctx.org_id,
            Claim.payer_id == payer_id,
            Claim.status == "ready",
            col(Claim.x12_file_id).is_(None),
            Claim.encounter_id.in_(sa.select(Encounter.id).where(Encounter.location_id == location_id)),
        )
        if held:
            assign = assign.where(col(Claim.id).not_in(held))
        res = session.connection().execute(assign.values(x12_file_id=f.id, updated_at=ctx.now()))
        file_id = f.id
        f.claims = res.rowcount
    return _materialize(transaction, file_id)


def recover_files(transaction: Transaction) -> tuple[int, list[dict[str, Any]]]:
    """Files a crashed run recorded but did not finish (status pending): mark the ones renamed
    into place, write the others again (same control numbers, same claims). A written file that
    is gone later was moved by someone (e.g. after upload) and is never written again. Returns
    how many were finished, and the files written again."""
    with transaction() as ctx:
        pending = list(
            ctx.session.execute(
                sa.select(X12File.id, X12File.directory, X12File.filename)
                .where(X12File.org_id == ctx.org_id, X12File.status == "pending")
                .order_by(X12File.id)
            )
        )
    count = 0
    written = []
    for fid, directory, filename in pending:
        path = Path(directory) / filename
        for tmp in Path(directory).glob(f".{glob.escape(filename)}.*.tmp"):  # the dead run's (we hold the lock)
            tmp.unlink(missing_ok=True)
        if path.exists():  # renamed, then the process died before it was marked
            with transaction() as ctx:
                f = referenced(ctx.session, X12File, fid)
                f.status = "written"
                f.total_cents = ctx.session.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(Claim.total_cents), 0)).where(Claim.x12_file_id == fid)
                ).scalar_one()
            count += 1
            continue
        info = _materialize(transaction, fid)
        info["recovered"] = True
        written.append(info)
        count += 1
    return count, written


def _materialize(transaction: Transaction, file_id: int) -> dict[str, Any]:
    """Write a recorded file: temp name, fsync, rename; then mark it written."""
    # written from a read transaction: the database stays open to other writers meanwhile
    with transaction(readonly=True) as ctx:
        f = referenced(ctx.session, X12File, file_id)
        directory, filename = Path(f.directory), f.filename
        final = directory / filename
        with atomic_file(final, field="out", encoding="ascii", newline="") as out:
            written = x837p.write_837p(
                out,
                **_file_parties(ctx, f),
                claims=claims_of_file(ctx, f),
                created=f.created_at,
                isa_control=f.isa_control,
                gs_control=f.gs_control,
                max_claims_per_st=5000,
            )
        payer_code = referenced(ctx.session, Payer, f.payer_id).payer_id
        isa = f.isa_control
        secondary = ctx.session.execute(
            sa.select(sa.func.count())
            .select_from(Claim)
            .where(Claim.x12_file_id == file_id, col(Claim.primary_claim_id).is_not(None))
        ).scalar_one()
    with transaction() as ctx:
        f = referenced(ctx.session, X12File, file_id)
        f.status, f.claims, f.total_cents = "written", written.claims, written.total_cents
        audit.record(ctx, audit.Event("export", "x12_file", f.id, detail=f"{filename}: {written.claims} claims"))
    return {
        "id": file_id,
        "path": str(final),
        "payer": payer_code,
        "claims": written.claims,
        "secondary": secondary,
        "total": money(written.total_cents),
        "isa_control": isa,
    }


def _file_parties(ctx: Ctx, f: X12File) -> dict[str, Any]:
    """The submitter, receiver, billing provider (the location of the file's claims) and payer
    of a file."""
    session = ctx.session
    profile = for_sending(ctx)
    org = referenced(session, Organization, ctx.org_id)
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
    assert loc is not None  # a practice has a location (the set-up adds the first)
    payer = referenced(session, Payer, f.payer_id)
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
