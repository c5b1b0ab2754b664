"""Fee schedules: the default schedule and one schedule per payer, one price per procedure code
and (optional) modifier.

Amounts come in as text or Decimal with at most two decimal places, more than 0 and less than
100000, and are stored as integer cents (Fee.amount_cents); they go out as Decimal.

Pricing looks a line up in this order (the first price found wins):
  1. the payer's schedule, code with the line's first modifier
  2. the payer's schedule, code without modifier
  3. the default schedule, code with the line's first modifier
  4. the default schedule, code without modifier
`price()` asks the database for one line; `load_schedule()` + `price_in()` price any number
of lines from one read (the billing run prices 100,000 encounters).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.codes.procedures import check_modifier, check_procedure
from hpms.errors import NotFoundError, ValidationError
from hpms.models import Payer
from hpms.models.billing import Fee
from hpms.models.billing_out import FeeImportOut, FeeOut, FeeRowError, money
from hpms.services.billing.codes import procedure_known
from hpms.services.lookups import find_payer
from hpms.services.platform import audit
from hpms.services.platform.csvrows import InvalidRows, read_rows
from hpms.services.platform.permissions import require
from hpms.services.platform.validation import parse_money

MAX_FEE_CENTS = 100_000_00
DEFAULT = 0  # payer_key of the default schedule
COLUMNS = ("code", "amount", "modifier", "payer")
REQUIRED = ("code", "amount")
DEFAULT_WORDS = frozenset({"default", "-"})

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

Schedule = dict[tuple[int, str, str], int]


# ---- parsing -------------------------------------------------------------------------------


def parse_amount(field: str, value: object) -> int:
    """A fee ("125", "125.50", "$125.50" or a Decimal) as integer cents: more than 0 and less than
    100000 (validation.parse_money says what else is refused)."""
    return parse_money(field, value, below_cents=MAX_FEE_CENTS)


def parse_code(ctx: Ctx, field: str, value: object) -> str:
    """A procedure code (HCPCS/CPT format, and known to the practice's code sets)."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise ValidationError(field, "is required")
    try:
        code = check_procedure(text)
    except ValueError as exc:
        raise ValidationError(field, str(exc)) from None
    if not procedure_known(ctx, code):
        raise ValidationError(field, f"unknown procedure code {code!r} (not in the HCPCS or CPT code sets imported)")
    return code


def parse_modifier(field: str, value: object) -> str:
    """A modifier ('' when none given)."""
    text = "" if value is None else str(value).strip()
    if not text:
        return ""
    try:
        return check_modifier(text)
    except ValueError as exc:
        raise ValidationError(field, str(exc)) from None


def _payer(ctx: Ctx, ref: str | int | None, field: str = "payer") -> Payer | None:
    """The payer named, or None for the default schedule (nothing, 'default' or '-')."""
    text = "" if ref is None else str(ref).strip()
    if not text or text.lower() in DEFAULT_WORDS:
        return None
    return find_payer(ctx, text, field=field)


def _payer_key(payer: Payer | None) -> int:
    """The schedule's key: the payer's id, DEFAULT for the default schedule."""
    return payer.id if payer is not None and payer.id is not None else DEFAULT


def _schedule_name(payer: Payer | None) -> str:
    return "the default schedule" if payer is None else f"{payer.name}'s schedule"


def _out(fee: Fee, payer: Payer | None) -> FeeOut:
    return FeeOut(
        id=fee.id,
        code=fee.code,
        modifier=fee.modifier or None,
        payer_id=fee.payer_id,
        payer=payer.name if payer else None,
        payer_code=payer.payer_id if payer else None,
        amount=money(fee.amount_cents),
        updated_at=fee.updated_at,
    )


# ---- writing -------------------------------------------------------------------------------


def set_fee(
    ctx: Ctx, code: str, amount: str | Decimal, payer: str | None = None, modifier: str | None = None
) -> FeeOut:
    """Set (insert or replace) the price of CODE [with MODIFIER] in the default schedule or in
    PAYER's. Raises ValidationError (code, amount, modifier), NotFoundError (payer),
    PermissionDenied."""
    require(ctx.actor, "fee.write")
    code = parse_code(ctx, "code", code)
    cents = parse_amount("amount", amount)
    mod = parse_modifier("modifier", modifier)
    p = _payer(ctx, payer)
    key = _payer_key(p)
    session = ctx.session
    fee = session.execute(
        sa.select(Fee).where(Fee.org_id == ctx.org_id, Fee.payer_key == key, Fee.code == code, Fee.modifier == mod)
    ).scalar_one_or_none()
    now = ctx.now()
    if fee is None:
        fee = Fee(
            org_id=ctx.org_id,
            payer_key=key,
            payer_id=p.id if p else None,
            code=code,
            modifier=mod,
            amount_cents=cents,
            updated_at=now,
        )
        session.add(fee)
        action = "create"
    else:
        fee.amount_cents = cents
        fee.updated_at = now
        action = "update"
    session.flush()
    audit.record(
        ctx,
        audit.Event(
            action, "fee", fee.id, fields=["amount"], detail=f"{code}{'-' + mod if mod else ''} in {_schedule_name(p)}"
        ),
    )
    return _out(fee, p)


class InvalidFeeRows(InvalidRows):
    """Some rows of a fee schedule file are invalid: nothing was written."""


def _read_rows(path: Path) -> list[tuple[int, dict[str, str] | None]]:
    return read_rows(path, columns=COLUMNS, required=REQUIRED, expected="code,amount[,modifier][,payer]")


def import_fees(ctx: Ctx, path: str | Path, payer: str | None = None, dry_run: bool = False) -> FeeImportOut:
    """Import prices from a CSV file with the header code,amount[,modifier][,payer]. A row
    without a payer goes to PAYER's schedule (or to the default one when PAYER is not given;
    'default' in the payer column names it too). Every row is checked first: any bad row (or
    the same fee twice) raises InvalidFeeRows (exit 2, each error with its line and column) and
    nothing is written. Then every price is inserted or replaced in one transaction, with one
    audit event. With dry_run, checks only."""
    require(ctx.actor, "fee.write")
    path = Path(path)
    base = _payer(ctx, payer)
    rows = _read_rows(path)
    payers: dict[str, Payer | None] = {}
    unknown: set[str] = set()  # payer column values that name no payer
    errors: list[FeeRowError] = []
    seen: dict[tuple[int, str, str], int] = {}
    good: list[tuple[int, int | None, str, str, int]] = []  # (payer_key, payer_id, code, modifier, cents)
    known: dict[str, str | ValidationError] = {}

    def err(line: int, field: str, message: str) -> None:
        errors.append(FeeRowError(line=line, field=field, message=message))

    for line, row in rows:
        if row is None:
            err(line, "FILE", "more cells than columns in the header")
            continue
        bad = False
        code_text = row.get("code", "").strip()
        if code_text not in known:
            try:
                known[code_text] = parse_code(ctx, "code", code_text)
            except ValidationError as exc:
                known[code_text] = exc
        code = ""
        known_code = known[code_text]
        if isinstance(known_code, ValidationError):
            err(line, "code", known_code.message)
            bad = True
        else:
            code = known_code
        cents = mod = None
        try:
            cents = parse_amount("amount", row.get("amount"))
        except ValidationError as exc:
            err(line, "amount", exc.message)
            bad = True
        try:
            mod = parse_modifier("modifier", row.get("modifier"))
        except ValidationError as exc:
            err(line, "modifier", exc.message)
            bad = True
        ref = (row.get("payer") or "").strip()
        p = base
        if ref:
            if ref not in payers and ref not in unknown:
                try:
                    payers[ref] = _payer(ctx, ref, "payer")
                except NotFoundError:
                    unknown.add(ref)
            if ref in unknown:
                err(line, "payer", f"no payer {ref!r}")
                bad = True
            else:
                p = payers[ref]
        if bad or cents is None or mod is None:
            continue
        key = (_payer_key(p), code, mod)
        if key in seen:
            err(
                line, "code", f"{code}{'-' + mod if mod else ''} for {_schedule_name(p)} is already on line {seen[key]}"
            )
            continue
        seen[key] = line
        good.append((key[0], p.id if p else None, code, mod, cents))
    if errors:
        raise InvalidFeeRows(errors, len(rows))
    if not rows:
        raise ValidationError("file", f"{path} has no rows")

    session = ctx.session
    table = Fee.__table__
    existing = {
        (r.payer_key, r.code, r.modifier): (r.id, r.amount_cents)
        for r in session.execute(
            sa.select(table.c.id, table.c.payer_key, table.c.code, table.c.modifier, table.c.amount_cents).where(
                table.c.org_id == ctx.org_id
            )
        )
    }
    now = ctx.now()
    inserts: list[dict] = []
    updates: list[dict] = []
    unchanged = 0
    for payer_key, payer_id, fee_code, fee_mod, fee_cents in good:
        old = existing.get((payer_key, fee_code, fee_mod))
        if old is None:
            inserts.append(
                {
                    "org_id": ctx.org_id,
                    "payer_key": payer_key,
                    "payer_id": payer_id,
                    "code": fee_code,
                    "modifier": fee_mod,
                    "amount_cents": fee_cents,
                    "updated_at": now,
                }
            )
        elif old[1] != fee_cents:
            updates.append({"fee_id": old[0], "cents": fee_cents})
        else:
            unchanged += 1
    result = FeeImportOut(
        rows=len(rows), created=len(inserts), updated=len(updates), unchanged=unchanged, dry_run=dry_run
    )
    if dry_run:
        return result
    if inserts:
        session.execute(sa.insert(table), inserts)
    if updates:
        session.connection().execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("fee_id"))
            .values(amount_cents=sa.bindparam("cents"), updated_at=now),
            updates,
        )
    audit.record(
        ctx,
        audit.Event(
            "import",
            "fee",
            None,
            fields=["amount"],
            detail=f"{path.name}: {len(inserts)} created, {len(updates)} updated, {unchanged} unchanged",
        ),
    )
    return result


# ---- reading -------------------------------------------------------------------------------


def list_fees(ctx: Ctx, payer: str | None = None, code: str | None = None) -> list[FeeOut]:
    """Prices, default schedule first then by payer, code and modifier. `payer`: only that
    payer's schedule ('default' for the default one); `code`: only that code."""
    require(ctx.actor, "fee.read")
    q = (
        sa.select(Fee, Payer)
        .outerjoin(Payer, Payer.id == Fee.payer_id)
        .where(Fee.org_id == ctx.org_id)
        .order_by(Fee.payer_key, Fee.code, Fee.modifier)
    )
    if payer is not None and str(payer).strip():
        p = _payer(ctx, payer)
        q = q.where(Fee.payer_key == _payer_key(p))
    if code is not None and str(code).strip():
        q = q.where(Fee.code == str(code).strip().upper())
    return [_out(fee, p) for fee, p in ctx.session.execute(q)]


def _first(modifiers: Sequence[str] | str | None) -> str:
    if not modifiers:
        return ""
    if isinstance(modifiers, str):
        return modifiers.split(",", 1)[0].strip()
    return modifiers[0] or ""


def price(
    session, org_id: int, code: str, modifiers: Sequence[str] | str = (), payer_id: int | None = None
) -> int | None:
    """The unit price in cents of CODE (with its modifiers, first one counts) for PAYER, or None
    when no schedule has it. One indexed query (uq_fee leads with org_id, payer_key, code)."""
    mod = _first(modifiers)
    keys = [DEFAULT] if payer_id is None else [payer_id, DEFAULT]
    mods = [""] if not mod else [mod, ""]
    rows = session.execute(
        sa.select(Fee.payer_key, Fee.modifier, Fee.amount_cents).where(
            Fee.org_id == org_id, Fee.payer_key.in_(keys), Fee.code == code, Fee.modifier.in_(mods)
        )
    ).all()
    found = {(r.payer_key, r.modifier): r.amount_cents for r in rows}
    for key in keys:
        for m in mods:
            if (key, m) in found:
                return found[(key, m)]
    return None


def load_schedule(session, org_id: int) -> Schedule:
    """Every price of the practice in one read: {(payer_key, code, modifier): cents}, payer_key 0
    for the default schedule. Price lines from it with price_in()."""
    table = Fee.__table__
    return {
        (r.payer_key, r.code, r.modifier): r.amount_cents
        for r in session.execute(
            sa.select(table.c.payer_key, table.c.code, table.c.modifier, table.c.amount_cents).where(
                table.c.org_id == org_id
            )
        )
    }


def price_in(
    schedule: Schedule, code: str, modifiers: Sequence[str] | str = (), payer_id: int | None = None
) -> int | None:
    """price() from a schedule loaded with load_schedule(): no database access."""
    mod = _first(modifiers)
    for key in (DEFAULT,) if payer_id is None else (payer_id, DEFAULT):
        if mod:
            cents = schedule.get((key, code, mod))
            if cents is not None:
                return cents
        cents = schedule.get((key, code, ""))
        if cents is not None:
            return cents
    return None
