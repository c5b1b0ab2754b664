"""`hpms encounters`: charge capture. A visit's diagnoses and procedure lines, drafted, corrected,
signed as ready to bill, and printed as a superbill. Every rule lives in hpms.services.billing.encounters."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hpms.commands._common import (
    DEFAULT_LIMIT,
    JsonOpt,
    LimitOpt,
    emit_object,
    emit_table,
    info,
    note_cut,
    print_json,
    service_context,
)

app = typer.Typer(
    help="Encounters: diagnoses and procedure lines of visits, signing, superbills.", no_args_is_help=True
)

LIST_COLUMNS = [
    ("id", "ID"),
    ("service_date", "Date"),
    ("status", "Status"),
    ("patient", "Patient"),
    ("mrn", "MRN"),
    ("provider", "Provider"),
    ("location", "Location"),
    ("lines", "Lines"),
    ("total", "Total"),
]

IdArg = Annotated[str, typer.Argument(help="Encounter id.")]
Dx = Annotated[
    list[str] | None,
    typer.Option(
        "--dx",
        help="ICD-10-CM diagnoses in order, comma-separated or repeated: E11.9,I10 (dot optional; stored "
        "without it). Billable codes only, at most 12.",
    ),
]
Proc = Annotated[
    list[str] | None,
    typer.Option(
        "--proc",
        help="A procedure line, repeated for each: CODE[:MODS[xUNITS]][:POINTERS]. MODS: up to 4 "
        "modifiers, comma-separated; xUNITS: a lowercase x and the units (default 1); POINTERS: up "
        "to 4 diagnosis positions, comma-separated (default 1). With one colon the rest is POINTERS "
        "when it is only digits and commas, else MODS[xUNITS]. E.g. 99213:25x1:1,2, 99213::1, "
        "99213:x2:1, 99213:1 (= 99213::1), 99213:25:1.",
    ),
]
Pos = Annotated[
    str | None,
    typer.Option("--place-of-service", "--pos", help="CMS place-of-service code (default: the location's, e.g. 11)."),
]
ExpectedVersion = Annotated[
    int | None, typer.Option("--expected-version", help="Refuse (exit 4) if the encounter changed since this version.")
]


def _describe(e: Any) -> str:
    return (
        f"encounter {e.id} ({e.status}): {e.service_date} {e.patient} ({e.mrn}) with {e.provider}, "
        f"{len(e.diagnoses)} diagnoses, {len(e.lines)} lines, total {e.total:.2f}"
    )


def _show_text(e: Any) -> None:
    data = {
        "id": e.id,
        "status": e.status,
        "service_date": e.service_date,
        "place_of_service": e.place_of_service,
        "patient": f"{e.patient} ({e.mrn})",
        "provider": e.provider + (f" NPI {e.provider_npi}" if e.provider_npi else ""),
        "location": e.location,
        "appointment_id": e.appointment_id,
        "total": f"{e.total:.2f}",
        "signed_at": e.signed_at,
        "signed_by": e.signed_by,
        "version": e.version,
    }
    emit_object(data, as_json=False)
    out = sys.stdout
    out.write("diagnoses\n")
    for d in e.diagnoses:
        out.write(f"  {d.seq:>2}  {d.dotted:<8}  {d.description or ''}\n")
    out.write("lines\n")
    for ln in e.lines:
        out.write(
            f"  {ln.seq:>2}  {ln.code:<6} {','.join(ln.modifiers) or '-':<12} x{ln.units:<4} "
            f"dx {','.join(str(p) for p in ln.pointers) or '-':<8} {ln.charge:>10.2f}\n"
        )


@app.command("create")
def create(
    appointment: Annotated[
        str | None,
        typer.Option(
            "--appointment", help="The appointment billed: patient, provider, location and date come from it."
        ),
    ] = None,
    patient: Annotated[
        str | None, typer.Option("--patient", help="Without --appointment: MRN or id of the patient.")
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="Without --appointment: the rendering provider (id, NPI or name).")
    ] = None,
    date: Annotated[
        str | None, typer.Option("--date", help="Without --appointment: date of service, YYYY-MM-DD.")
    ] = None,
    location: Annotated[
        str | None, typer.Option("--location", help="Without --appointment: location (default: the provider's).")
    ] = None,
    dx: Dx = None,
    proc: Proc = None,
    place_of_service: Pos = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a visit's diagnoses and procedure lines as a draft encounter and print its id.
    Lines are priced from the default fee schedule. A cancelled or no-show appointment, or one
    already billed by an encounter, is refused (exit 4).

    Example: hpms encounters create --appointment 42 --dx E11.9,I10 --proc 99213:25x1:1,2 --proc 36415::1
    """
    from hpms.services.billing import encounters

    with service_context() as ctx:
        enc = encounters.create(
            ctx,
            appointment=appointment,
            patient=patient,
            provider=provider,
            date=date,
            location=location,
            dx=dx,
            proc=proc,
            place_of_service=place_of_service,
        )
    if as_json:
        emit_object(enc, as_json=True)
        return
    typer.echo(enc.id)
    info("created " + _describe(enc))


@app.command("show")
def show(encounter: IdArg, as_json: JsonOpt = False) -> None:
    """Show an encounter with its diagnoses (with descriptions) and lines.

    Example: hpms encounters show 7 --json
    """
    from hpms.services.billing import encounters

    with service_context() as ctx:
        enc = encounters.show(ctx, encounter)
    if as_json:
        emit_object(enc, as_json=True)
    else:
        _show_text(enc)


@app.command("update")
def update(
    encounter: IdArg,
    dx: Dx = None,
    proc: Proc = None,
    place_of_service: Pos = None,
    expected_version: ExpectedVersion = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a draft's diagnoses (--dx) and/or all its lines (--proc), or its place of service.
    A signed encounter is refused (exit 4).

    Example: hpms encounters update 7 --dx E11.9,I10,E78.5 --proc 99214::1,2,3
    """
    from hpms.services.billing import encounters

    with service_context() as ctx:
        enc = encounters.update(
            ctx, encounter, dx=dx, proc=proc, place_of_service=place_of_service, expected_version=expected_version
        )
    if as_json:
        emit_object(enc, as_json=True)
        return
    info("updated " + _describe(enc))


@app.command("sign")
def sign(encounter: IdArg, expected_version: ExpectedVersion = None, as_json: JsonOpt = False) -> None:
    """Sign a draft encounter: it is ready to bill. It needs a diagnosis and a line, and every
    line a diagnosis pointer.

    Example: hpms encounters sign 7
    """
    from hpms.services.billing import encounters

    with service_context() as ctx:
        enc = encounters.sign(ctx, encounter, expected_version=expected_version)
    if as_json:
        emit_object(enc, as_json=True)
        return
    info("signed " + _describe(enc))


@app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option("--status", help="Only these statuses, comma-separated (draft, signed, billed, void).")
    ] = None,
    patient: Annotated[str | None, typer.Option("--patient", help="Only this patient (MRN or id).")] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider.")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Dates of service from this day (YYYY-MM-DD, today, -30).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Dates of service up to this day (YYYY-MM-DD).")] = None,
    limit: LimitOpt = DEFAULT_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Encounters by date of service, oldest first. Totals in --json are strings ("125.00").

    Example: hpms encounters list --status signed --from -30
    """
    from hpms.services.billing import encounters

    with service_context() as ctx:
        rows = encounters.list_encounters(
            ctx, status=status, patient=patient, provider=provider, since=start, until=end, limit=limit
        )
    if as_json:
        emit_table(rows, [], as_json=True)
        return
    emit_table(rows, LIST_COLUMNS, as_json=False, title="Encounters")
    note_cut(len(rows), limit, what="encounters")


@app.command("superbill")
def superbill(
    encounter: IdArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (replaced atomically) instead of stdout.")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="text or pdf (default: from the file suffix, .pdf, else text).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a superbill: practice, location, provider with NPI, patient with DOB and MRN,
    insurance, date of service, diagnoses, lines with modifiers, units and charges, and the total.
    A PDF goes to a file (-o), or to stdout when it is not a terminal.

    Example: hpms encounters superbill 7 -o superbill-7.pdf
    """
    from hpms.errors import UsageError
    from hpms.services.billing import superbill

    kind = fmt
    if kind is None:
        kind = "pdf" if output is not None and output.suffix.lower() == ".pdf" else "text"
    kind = kind.strip().lower()
    if kind == "pdf" and output is None and not as_json and sys.stdout.isatty():
        raise UsageError("--format pdf to a terminal", hint="write it to a file with -o FILE.pdf")
    with service_context() as ctx:
        data = superbill.superbill(ctx, encounter, fmt=kind)
    if output is not None:
        from hpms.fileio import write_atomically

        write_atomically(output, data, field="output")
        if as_json:
            print_json({"path": str(output), "format": kind, "bytes": len(data)})
        else:
            info(f"wrote the {kind} superbill of encounter {encounter} to {output}")
        return
    if as_json:
        if kind == "pdf":
            import base64

            print_json(
                {"path": None, "format": kind, "bytes": len(data), "pdf_base64": base64.b64encode(data).decode()}
            )
        else:
            print_json({"path": None, "format": kind, "bytes": len(data), "text": data.decode("utf-8")})
        return
    if kind == "pdf":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        typer.echo(data.decode("utf-8"), nl=False)
