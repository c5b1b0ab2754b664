"""One parser for every amount: plain decimals with at most two places, as integer cents."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hpms.errors import ExitCode, ValidationError
from hpms.services.platform.validation import parse_money


@pytest.mark.parametrize(
    "value, cents",
    [("125", 12500), ("125.5", 12550), ("125.50", 12550), (".50", 50), ("$140.00", 14000), (7, 700)],
)
def test_plain_decimals_are_cents(value, cents):
    assert parse_money("amount", value) == cents


@pytest.mark.parametrize(
    "value", ["1e5", "NaN", "Infinity", "1,000.00", "12.345", "+5", "-5", "0", "", " ", 1.5, Decimal("1.005")]
)
def test_anything_else_is_refused_naming_the_field(value):
    with pytest.raises(ValidationError) as err:
        parse_money("amount", value)
    assert err.value.field == "amount" and err.value.exit_code == ExitCode.USAGE and err.value.message


def test_signs_and_bounds_as_asked():
    assert parse_money("amount", "-5.00", sign="not_zero") == -500
    assert parse_money("min_balance", "0", sign="not_negative") == 0
    with pytest.raises(ValidationError):
        parse_money("amount", "100000.00", below_cents=100_000_00)
