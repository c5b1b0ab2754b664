"""`hpms billing`: the practice's claim identities, the nightly billing run and its files."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import (
    JsonOpt,
    display_zone,
    emit_object,
    emit_table,
    info,
    print_json,
    service_context,
    settings,
)

app = typer.Typer(help="The billing run (837P claim files) and the practice's billing profile.", no_args_is_help=True)

FILE_COLUMNS = [
    ("id", "ID"),
    ("file", "File"),
    ("payer", "Payer"),
    ("claims", "Claims"),
    ("total", "Total"),
    ("status", "Status"),
    ("created_at", "Written"),
]


@app.command("setup")
def setup(
    tax_id: Annotated[str | None, typer.Option("--tax-id", help="The practice's EIN (12-3456789).")] = None,
    submitter_id: Annotated[
        str | None, typer.Option("--submitter-id", help="Submitter id at the clearinghouse (ISA06).")
    ] = None,
    submitter_name: Annotated[
        str | None, typer.Option("--submitter-name", help="Submitter name (default: the practice).")
    ] = None,
    receiver_id: Annotated[str | None, typer.Option("--receiver-id", help="The clearinghouse's id (ISA08).")] = None,
    receiver_name: Annotated[str | None, typer.Option("--receiver-name", help="The clearinghouse's name.")] = None,
    contact_name: Annotated[str | None, typer.Option("--contact-name", help="Billing contact (PER).")] = None,
    contact_phone: Annotated[str | None, typer.Option("--contact-phone", help="Billing contact phone.")] = None,
    production: Annotated[
        bool | None, typer.Option("--production/--test", help="Mark files as production (P) or test (T) data.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or set the billing profile: tax id, submitter and receiver (clearinghouse) ids.

    Example: hpms billing setup --tax-id 12-3456789 --submitter-id RIVERSIDE01 --receiver-id CLEARHOUSE
    """
    from hpms.services.billing import runner as billing

    data = dict(
        tax_id=tax_id,
        submitter_id=submitter_id,
        submitter_name=submitter_name,
        receiver_id=receiver_id,
        receiver_name=receiver_name,
        contact_name=contact_name,
        contact_phone=contact_phone,
        production=production,
    )
    with service_context() as ctx:
        profile = (
            billing.set_profile(ctx, **data) if any(v is not None for v in data.values()) else billing.get_profile(ctx)
        )
    emit_object(profile, as_json=as_json)


@app.command("run")
def run(
    through: Annotated[
        str | None, typer.Option("--through", help="Bill visits up to this date (default: today).")
    ] = None,
    payer: Annotated[str | None, typer.Option("--payer", help="Only this payer (X12 payer id or name).")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Directory the 837P files are written to.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Scrub and price, write nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Bill signed encounters: scrub, price, create claims and write one 837P file per payer.

    Takes a lock (exit 75 while another run holds it); a rerun bills nothing twice and finishes
    the files a crashed run left. The files also carry the claims waiting for one (secondary
    claims, replacements, voids). Failures go to `hpms claims worklist`.

    Example: hpms billing run --out /var/spool/hpms/claims --json
    """
    from hpms.commands._progress import progress_for
    from hpms.services.billing import runner as billing

    summary = billing.run(
        settings(), through=through, payer=payer, out_dir=out, dry_run=dry_run, progress=progress_for("billing")
    )
    data = {
        "run_id": summary.run_id,
        "dry_run": summary.dry_run,
        "encounters": summary.encounters,
        "claims": summary.claims,
        "failed": summary.failed,
        "skipped_other_payers": summary.skipped,
        "total": summary.total,
        "written": summary.written,
        "secondary": summary.secondary,
        "held": summary.held,
        "files": summary.files,
        "recovered_files": summary.recovered_files,
    }
    if dry_run:
        data["findings"] = summary.findings
    if as_json:
        print_json(data)
        return
    what, wrote = ("would bill", "would write") if dry_run else ("billed", "wrote")
    held = f", {summary.held} held for the work list" if summary.held else ""
    info(
        f"billing run{'' if dry_run else ' ' + str(summary.run_id)}: {what} {summary.claims} claims "
        f"({summary.total:.2f}), {summary.failed} to the work list; {wrote} {summary.written} claims "
        f"({summary.secondary} secondary{held}) in {len(summary.files)} files"
    )
    for f in summary.files:
        print(f["path"])


@app.command("files")
def files(as_json: JsonOpt = False) -> None:
    """List the 837P files written, newest first.

    Example: hpms billing files --json
    """
    from hpms.services.billing import claims

    with service_context(readonly=True) as ctx:
        rows = claims.list_files(ctx)
        zone = display_zone(ctx)
    emit_table(rows, FILE_COLUMNS, as_json=as_json, title="837P files", zone=zone)
