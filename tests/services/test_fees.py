"""Fee schedules: set (upsert), CSV import (all or nothing), list, and pricing in the documented
lookup order, with every bad input refused by field and nothing written."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from hpms.errors import NotFoundError, PermissionDenied, ValidationError
from tests.services.conftest import fixed_clock
from tests.services.helpers import audit_rows, counts, last_seq

# CPT codes are known by their format; G0439 is on the built-in HCPCS list; A0999 is an HCPCS
# Level II code the practice has not imported.
UNKNOWN = "A0999"


def set_fees(ctx_for, *fees: tuple, user=None) -> None:
    """fees: (code, amount[, payer[, modifier]]) set as the admin."""
    from hpms.services.billing import fees as fee_service

    with ctx_for(user, clock=fixed_clock) as ctx:
        for f in fees:
            code, amount, *rest = f
            fee_service.set_fee(
                ctx, code, amount, payer=rest[0] if rest else None, modifier=rest[1] if len(rest) > 1 else None
            )


def _call(ctx_for, fn, user=None):
    with ctx_for(user, clock=fixed_clock) as ctx:
        return fn(ctx)


# ---- set -----------------------------------------------------------------------------------


def test_set_fee_inserts_then_replaces(settings, ctx_for, payer):
    from hpms.services.billing import fees

    seq = last_seq(settings)
    out = _call(ctx_for, lambda ctx: fees.set_fee(ctx, "99213", "125"))
    assert out.code == "99213" and out.modifier is None and out.payer_id is None and out.payer is None
    assert out.amount == Decimal("125.00") and str(out.amount) == "125.00"
    assert json.loads(out.model_dump_json())["amount"] == "125.00"
    again = _call(ctx_for, lambda ctx: fees.set_fee(ctx, "99213", Decimal("130.5")))
    assert again.id == out.id and again.amount == Decimal("130.50")
    with_mod = _call(ctx_for, lambda ctx: fees.set_fee(ctx, "99213", "$140.00", modifier="25"))
    assert with_mod.id != out.id and with_mod.modifier == "25"
    for_payer = _call(ctx_for, lambda ctx: fees.set_fee(ctx, "99213", "99.99", payer="ACME1"))
    assert for_payer.payer_id == payer.id and for_payer.payer == "Acme Health" and for_payer.payer_code == "ACME1"
    rows = {
        (r["payer_key"], r["modifier"]): r["amount_cents"]
        for r in _rows(settings, "SELECT payer_key, modifier, amount_cents FROM fee")
    }
    assert rows == {(0, ""): 13050, (0, "25"): 14000, (payer.id, ""): 9999}
    events = [e for e in audit_rows(settings, seq) if e["entity"] == "fee"]
    assert [e["action"] for e in events] == ["create", "update", "create", "create"]
    assert all(e["patient_id"] is None for e in events)


def _rows(settings, sql):
    from tests.services.helpers import query

    return query(settings, sql)


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        ("abc", "not an amount"),
        ("-5", "negative"),
        ("0", "more than 0"),
        ("0.00", "more than 0"),
        ("1.234", "two decimal places"),
        ("100000", "less than 100000"),
        ("1e3", "not an amount"),
        ("", "required"),
        ("12,50", "not an amount"),
        ("NaN", "not an amount"),
    ],
)
def test_bad_amounts_are_refused(settings, ctx_for, amount, why):
    from hpms.services.billing import fees

    before = counts(settings, "fee", "audit_event")
    with pytest.raises(ValidationError) as err:
        _call(ctx_for, lambda ctx: fees.set_fee(ctx, "99213", amount))
    assert err.value.field == "amount" and why in err.value.message
    assert err.value.exit_code == 2
    assert counts(settings, "fee", "audit_event") == before


def test_largest_and_smallest_amounts(ctx_for):
    from hpms.services.billing import fees

    assert _call(ctx_for, lambda ctx: fees.set_fee(ctx, "99213", "99999.99")).amount == Decimal("99999.99")
    assert _call(ctx_for, lambda ctx: fees.set_fee(ctx, "99214", ".01")).amount == Decimal("0.01")


def test_unknown_or_malformed_code_modifier_and_payer(settings, ctx_for):
    from hpms.services.billing import fees

    before = counts(settings, "fee", "audit_event")
    with pytest.raises(ValidationError) as err:
        _call(ctx_for, lambda ctx: fees.set_fee(ctx, UNKNOWN, "10"))
    assert err.value.field == "code" and UNKNOWN in err.value.message
    with pytest.raises(ValidationError) as err:
        _call(ctx_for, lambda ctx: fees.set_fee(ctx, "9921", "10"))
    assert err.value.field == "code"
    with pytest.raises(ValidationError) as err:
        _call(ctx_for, lambda ctx: fees.set_fee(ctx, "99213", "10", modifier="2"))
    assert err.value.field == "modifier"
    with pytest.raises(NotFoundError) as err:
        _call(ctx_for, lambda ctx: fees.set_fee(ctx, "99213", "10", payer="NOPE"))
    assert err.value.exit_code == 3 and err.value.field == "payer"
    assert counts(settings, "fee", "audit_event") == before


# ---- import --------------------------------------------------------------------------------


def _csv(tmp_path, text: str, name="fees.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_creates_updates_and_records_one_event(settings, ctx_for, payer, tmp_path):
    from hpms.services.billing import fees

    set_fees(ctx_for, ("99213", "100"), ("99214", "150"))
    path = _csv(
        tmp_path,
        "code,amount,modifier,payer\n99213,110.00,,\n99214,150,,\n99213,120,25,\n"
        "99213,90,,ACME1\n36415,12.5,,default\n\n",
    )
    seq = last_seq(settings)
    dry = _call(ctx_for, lambda ctx: fees.import_fees(ctx, path, dry_run=True))
    assert (dry.rows, dry.created, dry.updated, dry.unchanged, dry.dry_run) == (5, 3, 1, 1, True)
    assert last_seq(settings) == seq and counts(settings, "fee")["fee"] == 2
    out = _call(ctx_for, lambda ctx: fees.import_fees(ctx, path))
    assert (out.rows, out.created, out.updated, out.unchanged, out.dry_run) == (5, 3, 1, 1, False)
    events = audit_rows(settings, seq)
    assert [(e["action"], e["entity"]) for e in events] == [("import", "fee")]
    listed = _call(ctx_for, lambda ctx: fees.list_fees(ctx))
    assert [(f.payer_code, f.code, f.modifier, str(f.amount)) for f in listed] == [
        (None, "36415", None, "12.50"),
        (None, "99213", None, "110.00"),
        (None, "99213", "25", "120.00"),
        (None, "99214", None, "150.00"),
        ("ACME1", "99213", None, "90.00"),
    ]


def test_import_with_payer_option_and_header_in_any_order(settings, ctx_for, payer, tmp_path):
    from hpms.services.billing import fees

    path = _csv(tmp_path, "AMOUNT,Code\n80,99213\n")
    _call(ctx_for, lambda ctx: fees.import_fees(ctx, path, payer="Acme Health"))
    listed = _call(ctx_for, lambda ctx: fees.list_fees(ctx, payer="ACME1"))
    assert [(f.code, f.amount) for f in listed] == [("99213", Decimal("80.00"))]
    assert _call(ctx_for, lambda ctx: fees.list_fees(ctx, payer="default")) == []


def test_import_with_a_bad_row_writes_nothing(settings, ctx_for, payer, tmp_path):
    from hpms.services.billing import fees

    set_fees(ctx_for, ("99213", "100"))
    path = _csv(
        tmp_path,
        "code,amount,modifier,payer\n"
        "99214,150,,\n"  # line 2: good
        "99213,12.345,,\n"  # line 3: bad amount
        "A0999,10,,\n"  # line 4: unknown code
        "36415,10,9,\n"  # line 5: bad modifier
        "36415,10,,NOPE\n"  # line 6: unknown payer
        "99214,151,,\n"  # line 7: the same fee as line 2
        "99213,-1,,\n",
    )  # line 8: negative
    before = counts(settings, "fee", "audit_event")
    amounts = _rows(settings, "SELECT code, amount_cents FROM fee")
    with pytest.raises(fees.InvalidFeeRows) as err:
        _call(ctx_for, lambda ctx: fees.import_fees(ctx, path))
    exc = err.value
    assert exc.exit_code == 2 and exc.field == "file" and exc.rows == 7
    assert "line 3" in exc.message and "amount" in exc.message and "nothing imported" in exc.message
    assert [(e.line, e.field) for e in exc.errors] == [
        (3, "amount"),
        (4, "code"),
        (5, "modifier"),
        (6, "payer"),
        (7, "code"),
        (8, "amount"),
    ]
    assert "line 2" in exc.errors[4].message
    assert counts(settings, "fee", "audit_event") == before
    assert _rows(settings, "SELECT code, amount_cents FROM fee") == amounts


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("code,price\n99213,10\n", "unknown column 'price'"),
        ("code\n99213\n", "'amount'"),
        ("code,amount,code\n99213,1,99213\n", "twice"),
        ("code,amount\n", "no rows"),
    ],
)
def test_import_refuses_a_bad_file(settings, ctx_for, tmp_path, text, why):
    from hpms.services.billing import fees

    path = _csv(tmp_path, text)
    before = counts(settings, "fee", "audit_event")
    with pytest.raises(ValidationError) as err:
        _call(ctx_for, lambda ctx: fees.import_fees(ctx, path))
    # the file argument: "FILE" from the shared CSV reader (platform), "file" from the fee import
    assert err.value.field in ("FILE", "file") and why in err.value.message
    assert counts(settings, "fee", "audit_event") == before


def test_import_of_a_missing_file(ctx_for, tmp_path):
    from hpms.services.billing import fees

    with pytest.raises(ValidationError, match="does not exist"):
        _call(ctx_for, lambda ctx: fees.import_fees(ctx, tmp_path / "nope.csv"))


# ---- pricing -------------------------------------------------------------------------------


def test_price_lookup_order(settings, ctx_for, payer):
    from hpms.services.billing import fees
    from hpms.services.people import coverage

    other = _call(ctx_for, lambda ctx: coverage.add_payer(ctx, name="Other", payer_id="OTH01"))
    set_fees(
        ctx_for,
        ("99213", "100"),
        ("99213", "110", None, "25"),
        ("99213", "90", "ACME1"),
        ("99213", "95", "ACME1", "25"),
        ("99214", "150", None, "25"),
        ("36415", "12", "ACME1"),
    )
    cases = [
        (("99213", ("25", "59"), payer.id), 9500),  # payer + first modifier
        (("99213", ("59", "25"), payer.id), 9000),  # payer, no modifier (only the first counts)
        (("99213", (), payer.id), 9000),
        (("99213", ("25",), None), 11000),  # default + modifier
        (("99213", (), None), 10000),  # default
        (("99213", ("25",), other.id), 11000),  # a payer without a schedule: the default's
        (("99213", "25,59", payer.id), 9500),  # modifiers as stored ("25,59")
        (("99214", (), None), None),  # only a modifier price: no match without it
        (("99214", ("25",), payer.id), 15000),
        (("36415", (), None), None),  # only on a payer's schedule
        (("36415", (), payer.id), 1200),
        (("G0439", (), None), None),
    ]
    with ctx_for() as ctx:
        schedule = fees.load_schedule(ctx.session, ctx.org_id)
        for (code, mods, payer_id), want in cases:
            assert fees.price(ctx.session, ctx.org_id, code, mods, payer_id) == want, (code, mods, payer_id)
            assert fees.price_in(schedule, code, mods, payer_id) == want, (code, mods, payer_id)


def test_list_filters(ctx_for, payer):
    from hpms.services.billing import fees

    set_fees(ctx_for, ("99213", "100"), ("99214", "150"), ("99213", "90", "ACME1"))
    assert [f.amount for f in _call(ctx_for, lambda ctx: fees.list_fees(ctx, code="99213"))] == [
        Decimal("100.00"),
        Decimal("90.00"),
    ]
    assert [f.code for f in _call(ctx_for, lambda ctx: fees.list_fees(ctx, payer="default"))] == ["99213", "99214"]
    with pytest.raises(NotFoundError):
        _call(ctx_for, lambda ctx: fees.list_fees(ctx, payer="NOPE"))


# ---- permissions ---------------------------------------------------------------------------


def test_who_may_read_and_write_fees(settings, ctx_for, make_user, tmp_path):
    from hpms.services.billing import fees

    set_fees(ctx_for, ("99213", "100"))
    for name, role in (("desk", "front_desk"), ("doc", "provider"), ("bill", "biller"), ("audrey", "auditor")):
        make_user(name, role)
    path = _csv(tmp_path, "code,amount\n99214,150\n")
    before = counts(settings, "fee", "audit_event")
    for user in ("desk", "doc", "audrey"):
        with pytest.raises(PermissionDenied) as err:
            _call(ctx_for, lambda ctx: fees.set_fee(ctx, "99213", "1"), user)
        assert err.value.exit_code == 5 and "change fees" in err.value.message
        with pytest.raises(PermissionDenied):
            _call(ctx_for, lambda ctx: fees.import_fees(ctx, path), user)
    with pytest.raises(PermissionDenied) as err:
        _call(ctx_for, lambda ctx: fees.list_fees(ctx), "audrey")
    assert "read fees" in err.value.message
    assert counts(settings, "fee", "audit_event") == before
    for user in ("desk", "doc", "bill"):
        assert [f.code for f in _call(ctx_for, lambda ctx: fees.list_fees(ctx), user)] == ["99213"]
    _call(ctx_for, lambda ctx: fees.set_fee(ctx, "99213", "101"), "bill")
    _call(ctx_for, lambda ctx: fees.import_fees(ctx, path), "bill")
    assert counts(settings, "fee")["fee"] == 2
