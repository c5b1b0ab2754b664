"""`hpms patients`: register, find, update, deduplicate and import patients."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer

from hpms.commands._common import (
    DEFAULT_LIMIT,
    JsonOpt,
    LimitOpt,
    YesOpt,
    confirm,
    emit_object,
    emit_table,
    info,
    note_cut,
    service_context,
)

app = typer.Typer(help="Patient registration and lookup.", no_args_is_help=True)

COLUMNS = [
    ("mrn", "MRN"),
    ("last_name", "Last"),
    ("first_name", "First"),
    ("preferred_name", "Preferred"),
    ("dob", "DOB"),
    ("phone", "Phone"),
]
SHOW_FIELDS = [
    "id",
    "mrn",
    "first_name",
    "middle_name",
    "last_name",
    "preferred_name",
    "dob",
    "sex_at_birth",
    "gender_identity",
    "phone",
    "phone_alt",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "preferred_channel",
    "consent_sms",
    "consent_email",
    "tz",
    "ssn_masked",
    "active",
    "merged_into_id",
    "version",
    "created_at",
    "updated_at",
    "balance",
    "credit",
]
LEDGER_COLUMNS = [
    ("date", "Date"),
    ("kind", "Kind"),
    ("description", "Description"),
    ("payer", "Payer"),
    ("insurance", "Insurance"),
    ("patient", "Patient"),
    ("balance", "Balance"),
    ("insurance_balance", "Ins. balance"),
    ("patient_balance", "Pat. balance"),
]

PatientArg = Annotated[str, typer.Argument(help="MRN or numeric id of the patient.")]
First = Annotated[str | None, typer.Option("--first-name", help="Given name.")]
Last = Annotated[str | None, typer.Option("--last-name", help="Family name.")]
Middle = Annotated[str | None, typer.Option("--middle-name")]
Preferred = Annotated[str | None, typer.Option("--preferred-name", help="Name the patient goes by.")]
Dob = Annotated[str | None, typer.Option("--dob", help="Date of birth, YYYY-MM-DD.")]
Sex = Annotated[str | None, typer.Option("--sex-at-birth", help="female, male, intersex or unknown.")]
Gender = Annotated[str | None, typer.Option("--gender-identity", help="As the patient states it.")]
Phone = Annotated[str | None, typer.Option("--phone", help="Main phone number.")]
PhoneAlt = Annotated[str | None, typer.Option("--phone-alt", help="Second phone number.")]
Email = Annotated[str | None, typer.Option("--email")]
Line1 = Annotated[str | None, typer.Option("--address-line1")]
Line2 = Annotated[str | None, typer.Option("--address-line2")]
City = Annotated[str | None, typer.Option("--city")]
State = Annotated[str | None, typer.Option("--state")]
Postal = Annotated[str | None, typer.Option("--postal-code")]
Country = Annotated[str | None, typer.Option("--country", help="Two-letter country code.")]
Channel = Annotated[str | None, typer.Option("--preferred-channel", help="phone, sms, email, mail or portal.")]
ConsentSms = Annotated[bool | None, typer.Option("--consent-sms/--no-consent-sms", help="Consent to SMS messages.")]
ConsentEmail = Annotated[bool | None, typer.Option("--consent-email/--no-consent-email", help="Consent to e-mail.")]
Ssn = Annotated[str | None, typer.Option("--ssn", help="Social Security number (stored encrypted).")]
Tz = Annotated[
    str | None, typer.Option("--tz", help="The patient's time zone (IANA), for reminder hours; default the location's.")
]


@app.command("register")
def register(
    first_name: First = None,
    last_name: Last = None,
    dob: Dob = None,
    middle_name: Middle = None,
    preferred_name: Preferred = None,
    sex_at_birth: Sex = None,
    gender_identity: Gender = None,
    phone: Phone = None,
    phone_alt: PhoneAlt = None,
    email: Email = None,
    address_line1: Line1 = None,
    address_line2: Line2 = None,
    city: City = None,
    state: State = None,
    postal_code: Postal = None,
    country: Country = None,
    preferred_channel: Channel = None,
    consent_sms: ConsentSms = None,
    consent_email: ConsentEmail = None,
    tz: Tz = None,
    ssn: Ssn = None,
    mrn: Annotated[
        str | None, typer.Option("--mrn", help="Keep an MRN from a previous system (default: next number).")
    ] = None,
    allow_duplicate: Annotated[
        bool,
        typer.Option(
            "--allow-duplicate",
            help="Register even when a patient with the same date of birth and a similar name, "
            "the same phone or the same SSN is on file (otherwise asked on a TTY, refused without one).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a new patient and print the MRN assigned. A likely duplicate of a patient on
    file is listed and asked about on a TTY, refused (exit 4) without one; with --json the
    refusal prints the candidates on stdout.

    Example: hpms patients register --first-name Ana --last-name Müller --dob 1985-03-14 --phone 555-201-3344
    """
    import sys

    from hpms.services.people import patients

    try:
        out = _register(patients, allow_duplicate, locals())
    except patients.LikelyDuplicate as exc:
        if not (sys.stdin.isatty() and sys.stdout.isatty()) or as_json:
            if as_json:
                emit_table([c.model_dump(mode="json") for c in exc.candidates], [], as_json=True)
            raise
        info("likely the same person as:")
        for c in exc.candidates:
            p = c.patient
            info(
                f"  MRN {p.mrn}  {p.last_name}, {p.first_name}  born {p.dob}  {p.phone or ''}  ({'; '.join(c.reasons)})"
            )
        if not typer.confirm("Register a new patient all the same?", default=False):
            from hpms.errors import UsageError

            raise UsageError("cancelled") from None
        out = _register(patients, True, locals())
    if as_json:
        emit_object(out, as_json=True)
    else:
        typer.echo(out.mrn)
        info(f"registered {out.first_name} {out.last_name} as MRN {out.mrn}")


def _register(patients: ModuleType, allow_duplicate: bool, given: dict[str, Any]) -> Any:
    """One registration transaction with the command's options."""
    from hpms.models.patients import PATIENT_FIELDS  # deferred: the models cost every command

    fields = {k: given[k] for k in (*PATIENT_FIELDS, "ssn", "mrn", "tz")}
    fields["consent_sms"] = bool(fields["consent_sms"])
    fields["consent_email"] = bool(fields["consent_email"])
    with service_context() as ctx:
        return patients.register(ctx, allow_duplicate=allow_duplicate, **fields)


@app.command("show")
def show(
    patient: PatientArg,
    reveal_ssn: Annotated[
        bool, typer.Option("--reveal-ssn", help="Show the whole SSN (admin, biller; audited).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a patient's demographics and balance (with the unapplied credit).

    Example: hpms patients show 0100001 --json
    """
    from hpms.services.people import patients

    with service_context() as ctx:
        out = patients.show(ctx, patient, reveal_ssn=reveal_ssn, account=True)
    emit_object(out, as_json=as_json, fields=SHOW_FIELDS)


@app.command("ledger")
def ledger(patient: PatientArg, as_json: JsonOpt = False) -> None:
    """Itemise a patient's account: every charge, payment, adjustment and transfer with the
    insurance and patient sides and the running balances (reading it is audited).

    Example: hpms patients ledger 0100001 --json
    """
    from hpms.services.payments import ledger as ledger_service

    with service_context() as ctx:
        rows = ledger_service.entries(ctx, patient)
    emit_table(rows, LEDGER_COLUMNS, as_json=as_json, title="Patient ledger")


@app.command("list")
def list_(
    limit: LimitOpt = DEFAULT_LIMIT,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many first.")] = 0,
    include_inactive: Annotated[
        bool, typer.Option("--include-inactive", help="Also merged/inactive patients.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List patients by name.

    Example: hpms patients list --limit 20 --offset 40
    """
    from hpms.services.people import patients

    with service_context() as ctx:
        rows = patients.list_patients(ctx, limit=limit, offset=offset, include_inactive=include_inactive)
    emit_table(rows, COLUMNS, as_json=as_json, title="Patients")
    note_cut(len(rows), limit, what="patients", as_json=as_json)


@app.command("search")
def search(
    query: Annotated[
        str | None, typer.Argument(help="Name prefix ('mül', 'smith jo', 'Smith, John'), DOB, phone or MRN.")
    ] = None,
    ssn: Annotated[str | None, typer.Option("--ssn", help="Exact SSN instead of QUERY (admin, biller).")] = None,
    member_id: Annotated[
        str | None, typer.Option("--member-id", help="Exact insurance member id instead of QUERY.")
    ] = None,
    limit: LimitOpt = DEFAULT_LIMIT,
    include_inactive: Annotated[
        bool, typer.Option("--include-inactive", help="Also merged/inactive patients.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Find patients by name (accent- and case-insensitive prefix), date of birth, phone or MRN,
    or by exact SSN (123-45-6789, admin and biller) or insurance member id.

    Example: hpms patients search "muller an"
    """
    from hpms.errors import UsageError
    from hpms.services.people import patients

    if (query is None) == (ssn is None and member_id is None):
        raise UsageError("give QUERY, or one of --ssn and --member-id")
    with service_context() as ctx:
        if query is None:
            rows = patients.search_identifier(ctx, ssn=ssn, member_id=member_id, limit=limit)
        else:
            rows = patients.search(ctx, query, limit=limit, include_inactive=include_inactive)
    emit_table(rows, COLUMNS, as_json=as_json, title="Patients found")
    note_cut(len(rows), limit, what="patients", as_json=as_json)


@app.command("update")
def update(
    patient: PatientArg,
    first_name: First = None,
    last_name: Last = None,
    dob: Dob = None,
    middle_name: Middle = None,
    preferred_name: Preferred = None,
    sex_at_birth: Sex = None,
    gender_identity: Gender = None,
    phone: Phone = None,
    phone_alt: PhoneAlt = None,
    email: Email = None,
    address_line1: Line1 = None,
    address_line2: Line2 = None,
    city: City = None,
    state: State = None,
    postal_code: Postal = None,
    country: Country = None,
    preferred_channel: Channel = None,
    consent_sms: ConsentSms = None,
    consent_email: ConsentEmail = None,
    tz: Tz = None,
    ssn: Ssn = None,
    expected_version: Annotated[
        int | None, typer.Option("--expected-version", help="Refuse (exit 4) if the record changed since this version.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a patient's details; give only what changes ("" clears an optional field).

    Example: hpms patients update 0100001 --phone 555-201-9999 --consent-sms
    """
    from hpms.services.people import patients

    with service_context() as ctx:
        out = patients.update(
            ctx,
            patient,
            expected_version=expected_version,
            first_name=first_name,
            last_name=last_name,
            dob=dob,
            middle_name=middle_name,
            preferred_name=preferred_name,
            sex_at_birth=sex_at_birth,
            gender_identity=gender_identity,
            phone=phone,
            phone_alt=phone_alt,
            email=email,
            address_line1=address_line1,
            address_line2=address_line2,
            city=city,
            state=state,
            postal_code=postal_code,
            country=country,
            preferred_channel=preferred_channel,
            consent_sms=consent_sms,
            consent_email=consent_email,
            tz=tz,
            ssn=ssn,
        )
    emit_object(out, as_json=as_json, fields=SHOW_FIELDS)


@app.command("duplicates")
def duplicates(
    limit: LimitOpt = DEFAULT_LIMIT,
    min_score: Annotated[
        int, typer.Option("--min-score", min=1, max=100, help="Only pairs scoring at least this.")
    ] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List likely duplicate patients, best match first (same DOB and similar name, same phone...).

    Example: hpms patients duplicates --json
    """
    from hpms.services.people import patients

    with service_context() as ctx:
        rows = patients.duplicates(ctx, limit=limit, min_score=min_score)
    if as_json:
        emit_table(rows, [], as_json=True)
        return
    flat = [
        {
            "score": r.score,
            "keep": r.keep.mrn,
            "keep_name": f"{r.keep.last_name}, {r.keep.first_name}",
            "duplicate": r.duplicate.mrn,
            "dup_name": f"{r.duplicate.last_name}, {r.duplicate.first_name}",
            "dob": r.keep.dob,
            "reasons": "; ".join(r.reasons),
        }
        for r in rows
    ]
    emit_table(
        flat,
        [
            ("score", "Score"),
            ("keep", "MRN"),
            ("keep_name", "Name"),
            ("duplicate", "MRN 2"),
            ("dup_name", "Name 2"),
            ("reasons", "Why"),
        ],
        as_json=False,
        title="Likely duplicates",
    )
    note_cut(len(rows), limit, what="pairs")


@app.command("merge")
def merge(
    keep: Annotated[str, typer.Argument(help="MRN or id of the record to keep.")],
    duplicate: Annotated[str, typer.Argument(help="MRN or id of the duplicate to fold into KEEP.")],
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Merge DUPLICATE into KEEP: coverage and history move to KEEP, DUPLICATE is retired.

    Example: hpms patients merge 0100001 0100245 --yes
    """
    from hpms.services.people import patients

    confirm(f"merge patient {duplicate} into {keep}?", yes)
    with service_context() as ctx:
        out = patients.merge(ctx, keep, duplicate)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"merged {duplicate} into {out.mrn}")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV file, UTF-8, columns as in docs/import.md.")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the good rows, report the bad ones.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; write nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import patients from a CSV file: every row is checked first; any bad row means nothing is
    written (unless --skip-invalid).

    Example: hpms patients import examples/patients.csv
    """
    from hpms.commands._progress import progress_for
    from hpms.errors import ValidationError
    from hpms.services.people import patient_import

    try:
        with service_context() as ctx:
            result = patient_import.import_csv(
                ctx, file, skip_invalid=skip_invalid, dry_run=dry_run, progress=progress_for("importing patients")
            )
    except patient_import.InvalidRows as exc:
        if as_json:
            # The shape of a successful import's --json, with nothing imported.
            emit_object(
                {
                    "imported": 0,
                    "rows": exc.rows,
                    "skipped": 0,
                    "errors": [e.as_dict() for e in exc.errors],
                    "first_mrn": None,
                    "last_mrn": None,
                    "dry_run": dry_run,
                },
                as_json=True,
            )
        for err in exc.errors[:200]:
            info(f"{file}:{err.line}: {err.field}: {err.message}")
        if len(exc.errors) > 200:
            info(f"... and {len(exc.errors) - 200} more")
        raise
    except ValidationError:
        raise
    if as_json:
        emit_object(result.as_dict(), as_json=True)
        return
    for err in result.errors[:200]:
        info(f"{file}:{err.line}: {err.field}: {err.message} (skipped)")
    verb = "would import" if dry_run else "imported"
    info(f"{verb} {result.imported} patient(s); {len(result.errors)} row(s) skipped")
