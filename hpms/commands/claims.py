"""`hpms claims`: claims after the billing run, the scrubber and the work list."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import (
    DEFAULT_LIMIT,
    JsonOpt,
    LimitOpt,
    display_zone,
    emit_object,
    emit_table,
    info,
    print_json,
    service_context,
)

app = typer.Typer(help="Claims: list, show, scrub, submit, void, resubmit, the work list.", no_args_is_help=True)

COLUMNS = [
    ("id", "ID"),
    ("control_number", "Control #"),
    ("status", "Status"),
    ("frequency", "Freq"),
    ("service_date", "DOS"),
    ("patient", "Patient"),
    ("mrn", "MRN"),
    ("payer_code", "Payer"),
    ("total", "Total"),
    ("file", "File"),
]
WORK_COLUMNS = [
    ("created_at", "Since"),
    ("encounter_id", "Encounter"),
    ("claim_id", "Claim"),
    ("patient", "Patient"),
    ("rule_id", "Rule"),
    ("field", "Field"),
    ("message", "Message"),
]
ClaimArg = Annotated[str, typer.Argument(help="Claim id or control number.")]
Note = Annotated[str | None, typer.Option("--note", help="Why (kept in the claim's history).")]
Pcn = Annotated[str | None, typer.Option("--payer-claim-number", help="The payer's claim number (REF*F8).")]


@app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option("--status", help="ready, submitted, accepted, rejected, paid, ...")
    ] = None,
    payer: Annotated[str | None, typer.Option("--payer", help="X12 payer id or name.")] = None,
    limit: LimitOpt = DEFAULT_LIMIT,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many first.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List claims, newest first, a page at a time (says on stderr when there are more).

    Example: hpms claims list --status ready --limit 100 --json
    """
    from hpms.services.billing import claims

    with service_context() as ctx:
        page = claims.claims_page(ctx, status=status, payer=payer, limit=limit, offset=offset)
    emit_table(page.rows, COLUMNS, as_json=as_json, title="Claims")
    if page.more:
        info(
            f"showing {page.offset + 1}-{page.offset + len(page.rows)} of {page.total} claims (--limit); "
            f"the next page: --offset {page.offset + len(page.rows)}"
        )


@app.command("show")
def show(claim: ClaimArg, as_json: JsonOpt = False) -> None:
    """Show a claim with its lines and history.

    Example: hpms claims show 000000042
    """
    from hpms.services.billing import claims

    with service_context() as ctx:
        out = claims.show(ctx, claim)
    if as_json:
        print_json(out)
        return
    emit_object(out, as_json=False, fields=[f for f in type(out).model_fields if f not in ("lines", "history")])
    for ln in out.lines or []:
        print(
            f"  line {ln.seq}: {ln.code}{':' + ','.join(ln.modifiers) if ln.modifiers else ''} x{ln.units} "
            f"dx {','.join(map(str, ln.pointers))} {ln.charge:.2f} on {ln.service_date}"
        )
    for e in out.history or []:
        print(f"  {e.at:%Y-%m-%d %H:%M} {e.status}{': ' + e.note if e.note else ''}")


@app.command("scrub")
def scrub(
    encounters: Annotated[list[int] | None, typer.Argument(help="Encounter ids (default: every signed one).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the claim edits on encounters and list the findings (rule, severity, field, message).

    Exit 0 when clean, 4 when an error was found.

    Example: hpms claims scrub 12 13 --json
    """
    from hpms.errors import ConflictError
    from hpms.services.billing import runner as billing

    with service_context() as ctx:
        results = billing.scrub_encounters(ctx, list(encounters) if encounters else None)
    rows = [
        {"encounter_id": eid, "rule_id": f.rule_id, "severity": f.severity, "field": f.field, "message": f.message}
        for eid, findings in results
        for f in findings
    ]
    emit_table(
        rows,
        [
            ("encounter_id", "Encounter"),
            ("rule_id", "Rule"),
            ("severity", "Severity"),
            ("field", "Field"),
            ("message", "Message"),
        ],
        as_json=as_json,
        title="Findings",
    )
    errors = sum(1 for r in rows if r["severity"] == "error")
    if errors:
        raise ConflictError(
            f"{errors} error(s) in {len({r['encounter_id'] for r in rows})} of {len(results)} encounters"
        )
    if not as_json:
        info(f"{len(results)} encounters scrubbed, no error")


@app.command("rules")
def rules(as_json: JsonOpt = False) -> None:
    """List the claim edits (stable rule ids) of this version.

    Example: hpms claims rules
    """
    from hpms.services.billing import scrubber

    rows = [
        {"rule_id": rid, "description": desc, "version": scrubber.RULESET_VERSION} for rid, desc in scrubber.rules()
    ]
    emit_table(rows, [("rule_id", "Rule"), ("description", "What it checks")], as_json=as_json, title="Claim edits")


@app.command("mark-submitted")
def mark_submitted(
    file: Annotated[str, typer.Argument(help="The 837P file (path, name or id) you uploaded.")],
    as_json: JsonOpt = False,
) -> None:
    """Record that a file was uploaded: its claims become submitted.

    Example: hpms claims mark-submitted /var/spool/hpms/claims/837P-ACME1-L1-000000001.x12
    """
    from hpms.services.billing import claims

    with service_context() as ctx:
        out = claims.mark_submitted(ctx, file)
    if as_json:
        print_json(out)
    else:
        info(f"{out['file']}: {out['claims']} claims submitted")


@app.command("set-status")
def set_status(
    claim: ClaimArg,
    status: Annotated[
        str, typer.Argument(help="accepted, rejected, paid, partially_paid, patient_resp, denied, closed")
    ],
    note: Note = None,
    payer_claim_number: Pcn = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a status the clearinghouse or payer reported (until remittance files are imported).

    Example: hpms claims set-status 42 accepted --payer-claim-number 2026123456789
    """
    from hpms.services.billing import claims

    with service_context() as ctx:
        out = claims.set_status(ctx, claim, status, note=note, payer_claim_number=payer_claim_number)
    emit_object(
        out, as_json=as_json, fields=None if as_json else ["id", "control_number", "status", "payer_claim_number"]
    )


@app.command("void")
def void(claim: ClaimArg, payer_claim_number: Pcn = None, note: Note = None, as_json: JsonOpt = False) -> None:
    """Void a claim: before submission it is dropped; after, a void claim (frequency 8) is queued.

    Example: hpms claims void 42 --payer-claim-number 2026123456789 --note "billed to the wrong payer"
    """
    from hpms.services.billing import claims

    with service_context() as ctx:
        out = claims.void(ctx, claim, payer_claim_number=payer_claim_number, note=note)
    emit_object(out, as_json=as_json, fields=None if as_json else ["id", "control_number", "status", "frequency"])


@app.command("resubmit")
def resubmit(claim: ClaimArg, payer_claim_number: Pcn = None, note: Note = None, as_json: JsonOpt = False) -> None:
    """Queue a corrected claim: a new original after a rejection, a replacement (frequency 7) after adjudication.

    Example: hpms claims resubmit 42 --payer-claim-number 2026123456789
    """
    from hpms.services.billing import claims

    with service_context() as ctx:
        out = claims.resubmit(ctx, claim, payer_claim_number=payer_claim_number, note=note)
    emit_object(out, as_json=as_json, fields=None if as_json else ["id", "control_number", "status", "frequency"])


@app.command("worklist")
def worklist(as_json: JsonOpt = False) -> None:
    """Problems to fix before billing: scrub findings and rejected claims, oldest first.

    Example: hpms claims worklist --json
    """
    from hpms.services.billing import claims

    with service_context() as ctx:
        rows = claims.worklist(ctx)
        zone = display_zone(ctx)
    emit_table(rows, WORK_COLUMNS, as_json=as_json, title="Work list", zone=zone)


DENIAL_COLUMNS = [
    ("claim_id", "Claim"),
    ("control_number", "Control #"),
    ("service_date", "DOS"),
    ("patient", "Patient"),
    ("mrn", "MRN"),
    ("payer_code", "Payer"),
    ("total", "Total"),
    ("reason", "CARC"),
    ("reason_text", "Reason"),
    ("denied_at", "Denied"),
    ("appeals", "Appeals"),
    ("last_follow_up", "Last follow-up"),
]


@app.command("denied")
def denied(
    reason: Annotated[
        str | None, typer.Option("--reason", help="A claim adjustment reason code (CARC), e.g. 50.")
    ] = None,
    payer: Annotated[str | None, typer.Option("--payer", help="X12 payer id or name.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include denials already settled.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The denial work list: claims a payer paid nothing for, oldest first, with the reason.

    Example: hpms claims denied --reason 50 --payer ACME1
    """
    from hpms.services.payments import denials

    with service_context() as ctx:
        rows = denials.denied(ctx, reason=reason, payer=payer, include_settled=all_)
        zone = display_zone(ctx)
    emit_table(rows, DENIAL_COLUMNS, as_json=as_json, title="Denied claims", zone=zone)


@app.command("appeal")
def appeal(
    claim: ClaimArg,
    note: Annotated[str | None, typer.Option("--note", help="What was done (appeal sent, payer called...).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a follow-up on a denied claim (kept in its history and shown in the denial list).

    Example: hpms claims appeal 000000042 --note "appeal letter with records sent"
    """
    from hpms.services.payments import denials

    with service_context() as ctx:
        out = denials.appeal(ctx, claim, note=note)
    if as_json:
        print_json(out)
    else:
        info(f"claim {out.claim_id}: follow-up {out.appeals} recorded")
