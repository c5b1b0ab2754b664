"""Patient statements: one file per patient who owes at least a minimum with an amount open
longer than some days, listing the activity since the previous statement, the amount due and
its aging. Each file holds one patient's data only, is named by its statement id and written
whole (temp file + rename); a `statement` row records it.

An open amount is aged from the day the patient first owed on the visit (the transfer to
patient responsibility or the patient-side charge), in buckets current (0-30 days), 31-60,
61-90 and over 90.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import col

from hpms.errors import ValidationError
from hpms.fileio import check_directory, write_atomically
from hpms.models import Encounter, Location, Organization, Patient
from hpms.models.billing_out import money
from hpms.models.ledger import LedgerEntry
from hpms.models.receivables import STATEMENT_FORMATS, Statement
from hpms.pdf import Document
from hpms.services.lookups import resolve_location
from hpms.services.payments import ledger, payments
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

BUCKETS = ("current", "31-60", "61-90", "90+")
_OLDER = re.compile(r"^\s*(\d{1,4})\s*d\s*$", re.I)


class StatementOut(BaseModel):
    id: int
    patient_id: int
    mrn: str
    patient: str
    period_from: dt.date | None
    period_to: dt.date
    amount_due: Decimal
    format: str
    filename: str
    path: str
    created_at: dt.datetime


class StatementEmailOut(BaseModel):
    """What became of one statement to email: queued (as message `message_id`), already queued
    before (that message), would be queued (a dry run), or skipped for `reason`."""

    statement_id: int
    patient_id: int
    mrn: str
    outcome: str  # queued, already_queued, would_queue, skipped
    reason: str | None = None
    message_id: int | None = None
    recipient: str | None = None


class StatementEmailRunOut(BaseModel):
    dry_run: bool
    queued: int
    already_queued: int
    skipped: int
    statements: list[StatementEmailOut]


class StatementRunOut(BaseModel):
    directory: str
    format: str
    statements: int
    amount_due: Decimal
    files: list[StatementOut]
    emailed: StatementEmailRunOut | None = None  # when the statements were also emailed


# ---- arguments -----------------------------------------------------------------------------


def parse_min_balance(value: Any) -> int:
    """A money amount of at least zero, as cents."""
    return v.parse_money("min_balance", value, sign="not_negative")


def parse_older_than(value: Any) -> int:
    """'30d' -> 30."""
    m = _OLDER.match(str(value if value is not None else ""))
    if not m:
        raise ValidationError("older_than", f"{value!r} is not a number of days such as 30d")
    return int(m.group(1))


# ---- what a statement says -----------------------------------------------------------------


def _postal(code: str | None) -> str | None:
    """A US ZIP+4 kept as nine digits is printed 12345-6789."""
    return f"{code[:5]}-{code[5:]}" if code and len(code) == 9 and code.isdigit() else code


def _address_lines(obj: Location | Patient) -> list[str]:
    city = ", ".join(x for x in (obj.city, " ".join(y for y in (obj.state, _postal(obj.postal_code)) if y)) if x)
    return [x for x in (obj.address_line1, obj.address_line2, city) if x]


def _cents_text(cents: int | None) -> str:
    return "" if cents is None else f"{money(cents):,.2f}"


TRANSFERS = ("transfer_to_patient", "transfer_to_insurance")  # pairs that net to zero on the account


def _bucket(days: int) -> str:
    return "current" if days <= 30 else "31-60" if days <= 60 else "61-90" if days <= 90 else "90+"


def _activity(ctx: Ctx, patient_id: int, since: dt.datetime | None) -> list[dict]:
    """Rows (date, description, amount on the account, the patient's share) of the entries
    posted after `since` (the previous statement), whatever day they are effective."""
    rows = []
    for e, dos, claim_no, code, payer_name in ledger.entry_rows(ctx, patient_id, posted_after=since):
        if e.kind in TRANSFERS and e.responsibility == "insurance":
            continue  # a transfer is shown once, as the change in the patient's share
        patient_side = e.responsibility == "patient"
        on_account = None if e.kind in (*TRANSFERS, *ledger.PAYMENT_KINDS) else e.amount_cents
        rows.append(
            {
                "date": e.effective_date,
                "description": ledger.describe(
                    e.kind,
                    reversal=e.reverses_id is not None,
                    service_date=dos,
                    encounter_id=e.encounter_id,
                    claim=claim_no,
                    code=code,
                    payer=payer_name,
                    method=e.method,
                    brief=True,
                ),
                "amount": on_account,
                "share": e.amount_cents if patient_side else None,
            }
        )
    return rows


def _location(ctx: Ctx, patient_id: int) -> Location:
    """The location of the patient's latest visit (where the bill comes from), else the first."""
    loc_id = ctx.session.execute(
        sa.select(Encounter.location_id)
        .where(Encounter.patient_id == patient_id)
        .order_by(col(Encounter.service_date).desc(), col(Encounter.id).desc())
        .limit(1)
    ).scalar()
    loc = ctx.session.get(Location, loc_id) if loc_id is not None else None
    return loc if loc is not None else resolve_location(ctx, None)


def statement_data(ctx: Ctx, pat: Patient, *, today: dt.date, previous: Statement | None) -> dict:
    """Everything one statement prints, for one patient only."""
    s = ctx.session
    after = previous.period_to if previous else None
    balance, credit = ledger.patient_totals(s, ctx.org_id, pat.id)
    aging = {b: 0 for b in BUCKETS}
    for visit in payments.open_visits(s, ctx.org_id, pat.id):
        if visit.open_cents > 0:
            aging[_bucket((today - visit.since).days)] += visit.open_cents
    prev_balance = None
    if previous is not None:
        prev_balance = s.execute(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_cents), 0)).where(
                LedgerEntry.org_id == ctx.org_id,
                LedgerEntry.patient_id == pat.id,
                LedgerEntry.responsibility == "patient",
                LedgerEntry.posted_at <= previous.created_at,
            )
        ).scalar_one()
    loc = _location(ctx, pat.id)
    practice = s.get(Organization, ctx.org_id)
    assert practice is not None  # the actor's organization
    return {
        "practice": practice.name,
        "location": loc.name,
        "location_address": _address_lines(loc),
        "location_phone": loc.phone,
        "patient": " ".join(x for x in (pat.first_name, pat.middle_name, pat.last_name) if x),
        "patient_address": _address_lines(pat),
        "mrn": pat.mrn,
        "period_from": after + dt.timedelta(days=1) if after else None,
        "period_to": today,
        "previous_balance": prev_balance,
        "activity": _activity(ctx, pat.id, previous.created_at if previous else None),
        "amount_due": max(balance, 0),
        "credit": max(credit, 0),
        "aging": aging,
    }


# ---- rendering -----------------------------------------------------------------------------


def _period(d: dict) -> str:
    return (
        f"{d['period_from'].isoformat()} to {d['period_to'].isoformat()}"
        if d["period_from"]
        else f"through {d['period_to'].isoformat()}"
    )


def render_txt(d: dict, number: str) -> bytes:
    w = ["PATIENT STATEMENT", "=" * 78, d["practice"], d["location"], *d["location_address"]]
    if d["location_phone"]:
        w.append(f"Phone {d['location_phone']}")
    w += [
        "",
        f"Statement {number}    Date {d['period_to'].isoformat()}    Activity {_period(d)}",
        "",
        d["patient"],
        *d["patient_address"],
        f"MRN {d['mrn']}",
        "",
    ]
    if d["previous_balance"] is not None:
        w.append(f"Previous balance: {_cents_text(d['previous_balance'])}")
    w.append(f"{'Date':<10}  {'Amount':>10}  {'Your share':>10}  Description")
    for r in d["activity"]:
        w.append(
            f"{r['date'].isoformat():<10}  {_cents_text(r['amount']):>10}  {_cents_text(r['share']):>10}  "
            f"{r['description']}"
        )
    if not d["activity"]:
        w.append("  (no activity)")
    w += ["", f"AMOUNT DUE: {_cents_text(d['amount_due'])}"]
    if d["credit"]:
        w.append(f"Unapplied credit: {_cents_text(d['credit'])}")
    w += ["", "Aging:  " + "   ".join(f"{b} {_cents_text(d['aging'][b])}" for b in BUCKETS)]
    return ("\n".join(w) + "\n").encode("utf-8")


def render_html(d: dict, number: str) -> bytes:
    e = html.escape
    rows = "\n".join(
        f"<tr><td>{r['date'].isoformat()}</td><td>{e(r['description'])}</td>"
        f'<td class="num">{_cents_text(r["amount"])}</td>'
        f'<td class="num">{_cents_text(r["share"])}</td></tr>'
        for r in d["activity"]
    )

    def lines(xs: list[str]) -> str:
        return "<br>".join(e(x) for x in xs)

    prev = f"<p>Previous balance: {_cents_text(d['previous_balance'])}</p>" if d["previous_balance"] is not None else ""
    credit = f"<p>Unapplied credit: {_cents_text(d['credit'])}</p>" if d["credit"] else ""
    aging = "".join(f"<th>{b}</th>" for b in BUCKETS)
    aged = "".join(f'<td class="num">{_cents_text(d["aging"][b])}</td>' for b in BUCKETS)
    phone = f"<br>Phone {e(d['location_phone'])}" if d["location_phone"] else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Statement {e(number)}</title>
<style>body{{font-family:sans-serif}} td,th{{padding:2px 8px;text-align:left}} .num{{text-align:right}}</style>
</head><body>
<h1>Patient statement</h1>
<p><strong>{e(d["practice"])}</strong><br>{lines([d["location"], *d["location_address"]])}{phone}</p>
<p>Statement {e(number)} &middot; Date {d["period_to"].isoformat()} &middot; Activity {e(_period(d))}</p>
<p>{lines([d["patient"], *d["patient_address"]])}<br>MRN {e(d["mrn"])}</p>
{prev}<table>
<tr><th>Date</th><th>Description</th><th class="num">Amount</th><th class="num">Your share</th></tr>
{rows}
</table>
<h2>Amount due: {_cents_text(d["amount_due"])}</h2>
{credit}<table><tr>{aging}</tr><tr>{aged}</tr></table>
</body></html>
"""
    return page.encode("utf-8")


def render_pdf(d: dict, number: str, now: dt.datetime) -> bytes:
    doc = Document(f"Statement {number}", now)
    doc.line("PATIENT STATEMENT", size=16, bold=True, h=8)
    doc.line(d["practice"], size=12, bold=True)
    for text in (d["location"], *d["location_address"]):
        doc.line(text)
    if d["location_phone"]:
        doc.line(f"Phone {d['location_phone']}")
    doc.gap()
    doc.line(f"Statement {number}    Date {d['period_to'].isoformat()}    Activity {_period(d)}", bold=True)
    doc.gap()
    doc.line(d["patient"], bold=True)
    for text in d["patient_address"]:
        doc.line(text)
    doc.line(f"MRN {d['mrn']}")
    doc.gap()
    if d["previous_balance"] is not None:
        doc.line(f"Previous balance: {_cents_text(d['previous_balance'])}")
    cols = [("Date", 22, "L"), ("Description", 122, "L"), ("Amount", 25, "R"), ("Your share", 25, "R")]
    doc.table(
        cols,
        [
            [r["date"].isoformat(), r["description"][:68], _cents_text(r["amount"]), _cents_text(r["share"])]
            for r in d["activity"]
        ],
        total=("Amount due", _cents_text(d["amount_due"])),
    )
    if d["credit"]:
        doc.line(f"Unapplied credit: {_cents_text(d['credit'])}")
    doc.gap()
    doc.table([(b, 30, "R") for b in BUCKETS], [[_cents_text(d["aging"][b]) for b in BUCKETS]])
    return doc.output()


def _render(fmt: str, d: dict, number: str, now: dt.datetime) -> bytes:
    if fmt == "pdf":
        return render_pdf(d, number, now)
    if fmt == "html":
        return render_html(d, number)
    return render_txt(d, number)


# ---- runs ----------------------------------------------------------------------------------


def _due(ctx: Ctx, min_cents: int, older_days: int, today: dt.date) -> list[Patient]:
    """Patients owing at least `min_cents` with a visit open for at least `older_days` days."""
    e = LedgerEntry
    owing = (
        sa.select(e.patient_id)
        .where(e.org_id == ctx.org_id, e.responsibility == "patient")
        .group_by(e.patient_id)
        .having(sa.func.sum(e.amount_cents) >= max(min_cents, 1))
    )
    rows = (
        ctx.session.execute(sa.select(Patient).where(col(Patient.id).in_(owing)).order_by(Patient.id)).scalars().all()
    )
    cutoff = today - dt.timedelta(days=older_days)
    return [
        p
        for p in rows
        if any(v.open_cents > 0 and v.since <= cutoff for v in payments.open_visits(ctx.session, ctx.org_id, p.id))
    ]


def file_of(st: Statement) -> Path:
    """Where a statement's file was written (the statement as it was sent)."""
    return Path(st.directory) / st.filename


def _out(st: Statement, pat: Patient) -> StatementOut:
    return StatementOut(
        id=st.id,
        patient_id=pat.id,
        mrn=pat.mrn,
        patient=f"{pat.first_name} {pat.last_name}",
        period_from=st.period_from,
        period_to=st.period_to,
        amount_due=money(st.amount_due_cents),
        format=st.format,
        filename=st.filename,
        path=str(file_of(st)),
        created_at=st.created_at,
    )


def generate(
    ctx: Ctx,
    *,
    out: str | Path | None,
    min_balance: Any = "5.00",
    older_than: Any = "30d",
    fmt: str | None = "pdf",
    progress: Callable[[int, int], None] | None = None,
    email: bool = False,
) -> StatementRunOut:
    """Write one statement file per patient due one and record it; with `email`, also queue
    each to its patient by email in the same transaction (see `email_statements`). Raises
    ValidationError (min balance not money, older-than not like 30d, unknown format, a text
    statement to email, output directory missing or not writable) before anything is written;
    PermissionDenied."""
    require(ctx.actor, "statements.run")
    min_cents = parse_min_balance(min_balance)
    days = parse_older_than(older_than)
    kind = v.parse_choice("fmt", fmt, STATEMENT_FORMATS) or "pdf"
    if email and kind not in EMAIL_TYPES:
        raise ValidationError("fmt", f"a {kind} statement does not go by email (one of: {', '.join(EMAIL_TYPES)})")
    template = _statement_template(ctx) if email else None
    directory = check_directory(out, field="out")
    now = ctx.now()
    today = now.date()
    s = ctx.session
    due = _due(ctx, min_cents, days, today)
    written: list[Path] = []
    made: list[StatementOut] = []
    mailed: list[StatementEmailOut] = []
    try:
        for n, pat in enumerate(due, 1):
            previous = (
                s.execute(
                    sa.select(Statement)
                    .where(Statement.org_id == ctx.org_id, Statement.patient_id == pat.id)
                    .order_by(col(Statement.period_to).desc(), col(Statement.id).desc())
                    .limit(1)
                )
                .scalars()
                .first()
            )
            data = statement_data(ctx, pat, today=today, previous=previous)
            st = Statement(
                org_id=ctx.org_id,
                patient_id=pat.id,
                period_from=data["period_from"],
                period_to=today,
                amount_due_cents=data["amount_due"],
                format=kind,
                filename="",
                directory=str(directory.resolve())[:500],
                created_at=now,
                created_by=ctx.actor.user_id,
            )
            s.add(st)
            s.flush()
            number = f"{st.id:06d}"
            st.filename = f"statement-{number}.{kind}"
            s.flush()
            path = directory / st.filename
            content = _render(kind, data, number, now)
            write_atomically(path, content, field="out", mode=0o600)
            written.append(path)
            if template is not None:
                mailed.append(_email_one(ctx, st, pat, template, content=content, dry_run=False))
            made.append(_out(st, pat))
            if progress:
                progress(n, len(due))
    except BaseException:
        for path in written:  # the rows roll back; so do the files
            try:
                path.unlink()
            except OSError:
                pass
        raise
    if made:
        audit.record(
            ctx,
            audit.Event(
                "create",
                "statement",
                None,
                patient_ids=[m.patient_id for m in made],
                fields=["name", "address", "mrn", "ledger"],
                detail=f"{len(made)} statement(s) as {kind}",
            ),
        )
    return StatementRunOut(
        directory=str(directory),
        format=kind,
        statements=len(made),
        amount_due=sum((m.amount_due for m in made), Decimal("0.00")),
        files=made,
        emailed=_email_run(mailed, dry_run=False) if email else None,
    )


def list_statements(ctx: Ctx, *, patient: Any = None) -> list[StatementOut]:
    """Statements sent (of one patient), newest first. Audited. Raises NotFoundError,
    PermissionDenied."""
    require(ctx.actor, "statements.run")
    q = (
        sa.select(Statement, Patient)
        .join(Patient, Patient.id == Statement.patient_id)
        .where(Statement.org_id == ctx.org_id)
        .order_by(col(Statement.created_at).desc(), col(Statement.id).desc())
    )
    if patient is not None and str(patient).strip():
        q = q.where(Statement.patient_id == payments._patient(ctx, patient).id)
    out = [_out(st, pat) for st, pat in ctx.session.execute(q).all()]
    audit.record_list(ctx, "statement", (o.patient_id for o in out), len(out))
    return out


# ---- by email ------------------------------------------------------------------------------

EMAIL_TYPES = {"pdf": "application/pdf", "html": "text/html"}
CONTENT_TYPES = {**EMAIL_TYPES, "txt": "text/plain"}


def _statement_template(ctx: Ctx) -> Any:
    from hpms.services.messages import templates

    return templates.get_template(ctx, "statement", "email")


def _email_values(ctx: Ctx, st: Statement, pat: Patient) -> dict[str, str]:
    practice = ctx.session.get(Organization, ctx.org_id)
    assert practice is not None  # the actor's organization
    loc = _location(ctx, pat.id)
    day = st.period_to
    return {
        "first_name": pat.preferred_name or pat.first_name,
        "last_name": pat.last_name,
        "practice": practice.name,
        "amount_due": _cents_text(st.amount_due_cents),
        "statement_date": f"{day.day} {day:%b %Y}",
        "statement_number": f"{st.id:06d}",
        "location": loc.name,
        "location_phone": loc.phone or "",
    }


def _email_one(
    ctx: Ctx, st: Statement, pat: Patient, template: Any, *, content: bytes | None, dry_run: bool
) -> StatementEmailOut:
    """Queue one statement to its patient (its file attached, the practice's wording around it),
    or say why not. `content`: the file just written, else it is read from where it was."""
    from hpms.models import Message
    from hpms.services.messages import outbox
    from hpms.services.messages import templates as t
    from hpms.services.messages.reminders import address_on

    assert st.id is not None and pat.id is not None
    base = {"statement_id": st.id, "patient_id": pat.id, "mrn": pat.mrn}
    key = f"statement:{st.id}"
    earlier = ctx.session.execute(
        sa.select(Message.id, Message.recipient).where(Message.org_id == ctx.org_id, Message.dedupe_key == key)
    ).first()
    if earlier is not None:
        return StatementEmailOut(**base, outcome="already_queued", message_id=earlier[0], recipient=earlier[1])
    if st.format not in EMAIL_TYPES:
        reason = f"a {st.format} statement does not go by email (only {', '.join(EMAIL_TYPES)})"
        return StatementEmailOut(**base, outcome="skipped", reason=reason)
    recipient, why = address_on(pat, "email")
    if recipient is None:
        return StatementEmailOut(**base, outcome="skipped", reason=why)
    try:
        recipient = v.parse_email("email", recipient)
    except ValidationError as exc:
        return StatementEmailOut(**base, outcome="skipped", reason=f"the patient's email address is unusable: {exc}")
    if content is None:
        path = file_of(st)
        try:
            content = path.read_bytes()
        except OSError as exc:
            reason = f"its file {path} cannot be read ({exc.strerror or exc})"
            return StatementEmailOut(**base, outcome="skipped", reason=reason)
    if dry_run:
        return StatementEmailOut(**base, outcome="would_queue", recipient=recipient)
    subject, body = t.render(template, _email_values(ctx, st, pat))
    msg = outbox.enqueue(
        ctx,
        channel="email",
        recipient=recipient or "",
        subject=subject,
        body=body,
        template="statement",
        patient_id=pat.id,
        dedupe_key=key,
        attachments=[(st.filename, EMAIL_TYPES[st.format], content)],
    )
    audit.record(
        ctx,
        audit.Event(
            "email",
            "statement",
            st.id,
            patient_id=pat.id,
            fields=["email", *t.placeholders_in("body", template.body, "statement")],
            detail=f"queued as message {msg.id}",
        ),
    )
    return StatementEmailOut(**base, outcome="queued", message_id=msg.id, recipient=recipient)


def _email_run(rows: list[StatementEmailOut], *, dry_run: bool) -> StatementEmailRunOut:
    return StatementEmailRunOut(
        dry_run=dry_run,
        queued=sum(r.outcome in ("queued", "would_queue") for r in rows),
        already_queued=sum(r.outcome == "already_queued" for r in rows),
        skipped=sum(r.outcome == "skipped" for r in rows),
        statements=rows,
    )


def email_statements(
    ctx: Ctx, *, statement_ids: list[int] | None = None, patient: Any = None, dry_run: bool = False
) -> StatementEmailRunOut:
    """Queue statements by email, one message per patient to the patient's address with the
    statement's file attached and the practice's `statement` wording as the body: the given
    statements, else the latest of `patient`, else those of the latest run. A statement queued
    before is not queued again; a patient without an email address or consent to email is
    skipped, with the reason. Audited per statement queued. Raises ValidationError,
    NotFoundError (an unknown statement or patient, a patient without statements),
    PermissionDenied."""
    from hpms.errors import NotFoundError

    require(ctx.actor, "statements.run")
    ids = sorted(set(statement_ids or []))
    who = patient if patient is not None and str(patient).strip() else None
    if ids and who is not None:
        raise ValidationError("patient", "give statements or a patient, not both")
    q = sa.select(Statement, Patient).join(Patient, Patient.id == Statement.patient_id)
    q = q.where(Statement.org_id == ctx.org_id)
    if ids:
        rows = ctx.session.execute(q.where(col(Statement.id).in_(ids)).order_by(Statement.id)).all()
        missing = sorted(set(ids) - {st.id for st, _ in rows})
        if missing:
            raise NotFoundError(f"no statement {', '.join(str(m) for m in missing)}", field="statement_ids")
    elif who is not None:
        pat = payments._patient(ctx, who)
        rows = ctx.session.execute(
            q.where(Statement.patient_id == pat.id)
            .order_by(col(Statement.created_at).desc(), col(Statement.id).desc())
            .limit(1)
        ).all()
        if not rows:
            raise NotFoundError(f"patient {pat.mrn} has no statement", field="patient")
    else:
        latest = ctx.session.execute(
            sa.select(sa.func.max(Statement.created_at)).where(Statement.org_id == ctx.org_id)
        ).scalar()
        rows = (
            ctx.session.execute(q.where(Statement.created_at == latest).order_by(Statement.id)).all()
            if latest is not None
            else []
        )
    template = _statement_template(ctx)
    out = [_email_one(ctx, st, pat, template, content=None, dry_run=dry_run) for st, pat in rows]
    if dry_run:
        audit.record_list(ctx, "statement", (o.patient_id for o in out), len(out), detail="email dry run")
    return _email_run(out, dry_run=dry_run)
