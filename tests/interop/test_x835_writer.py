"""The 835 writer: what it writes reads back to the same remittances (every published sample
parsed, written and parsed again), and balances when the input does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hpms.interop.x12.x835 import balance_problems, parse_835
from hpms.interop.x12.x835_writer import write_835

DATA = Path(__file__).resolve().parents[1] / "data" / "x12"
SAMPLES = sorted(p.name for p in DATA.iterdir() if p.name.startswith("835"))


def _claim_key(c):
    return (
        c.patient_control_number,
        c.status_code,
        c.charge_amount,
        c.paid_amount,
        c.patient_responsibility,
        c.payer_claim_control_number,
        c.adjustments,
        c.service_date_from,
        (c.patient.name, c.patient.first, c.patient.id) if c.patient else None,
        [
            (
                ln.procedure.qualifier,
                ln.procedure.code,
                ln.procedure.modifiers,
                ln.charge_amount,
                ln.paid_amount,
                ln.units,
                ln.service_date_from,
                ln.adjustments,
                ln.remark_codes,
            )
            for ln in c.lines
        ],
    )


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_round_trip(name):
    original = parse_835((DATA / name).read_text())
    text = write_835(
        original, sender_id="PAYER", receiver_id="CLINIC", isa_control=42, created=dt.datetime(2026, 11, 27, 9, 30)
    )
    again = parse_835(text)
    assert len(again) == len(original)
    for a, b in zip(original, again):
        assert (b.payment_amount, b.trace_number, b.payer_name, b.payer_id, b.payment_date, b.handling_code) == (
            a.payment_amount,
            a.trace_number,
            a.payer_name,
            a.payer_id,
            a.payment_date,
            a.handling_code,
        )
        assert [_claim_key(c) for c in b.claims] == [_claim_key(c) for c in a.claims]
        assert [(p.reason, p.reference, p.amount) for p in b.provider_adjustments] == [
            (p.reason, p.reference, p.amount) for p in a.provider_adjustments
        ]
        assert balance_problems(b) == balance_problems(a)
        assert b.isa_control == "000000042"


def test_a_bad_control_number_is_refused():
    with pytest.raises(ValueError, match="control number"):
        write_835([], sender_id="P", receiver_id="C", isa_control=10**9, created=dt.datetime(2026, 1, 1))
