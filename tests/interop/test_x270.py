"""Tests for the 270 eligibility request writer (hpms.interop.x12.x270)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

import pytest

from hpms.interop.x12.segments import _segments
from hpms.interop.x12.x270 import Dependent, Inquiry, PayerInquiries, Receiver, Subscriber, write_270
from tests.conftest import TEST_DATA

X12 = TEST_DATA / "x12"
CREATED = datetime(2026, 6, 15, 14, 30, tzinfo=UTC)


def segs(text: str) -> list[list[str]]:
    return [list(s.elements) for s in _segments(text)]


def write(*payers: PayerInquiries, **kw) -> str:
    kw.setdefault("isa_control", 907)
    kw.setdefault("gs_control", 1)
    return write_270(
        sender_id="SUB01",
        receiver_id="CH01",
        receiver=Receiver(name="Bone and Joint Clinic", npi="1234567893"),
        payers=list(payers),
        created=CREATED,
        production=False,
        trace_originator="9877281234",
        **kw,
    )


ROBERT = Inquiry(
    trace="93175-012547",
    service_date=date(2006, 5, 1),
    subscriber=Subscriber(member_id="11122333301", last="Smith", first="Robert", dob=date(1943, 5, 19)),
)
MARY = Inquiry(
    trace="93175-012548",
    service_date=date(2006, 5, 1),
    subscriber=Subscriber(member_id="11122333301", last="Smith", first="Robert"),
    dependent=Dependent(last="Smith", first="Mary", dob=date(1978, 10, 14), sex="F"),
)


def test_module_imports_no_database_code():
    code = (
        "import sys, hpms.interop.x12.x270, hpms.interop.x12.x271; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel') "
        "or m.startswith(('hpms.services', 'hpms.models', 'hpms.db'))]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_subscriber_request_has_the_shape_of_the_published_example():
    ours = segs(write(PayerInquiries(name="ABC Company", payer_id="842610001", inquiries=(ROBERT,))))
    sample = segs((X12 / "270_005010X279A1__subscriber-health-benefit-check.270").read_text())
    # the same segments in the same order from HL*1 to EQ (ids, loop codes, qualifiers)
    body = lambda rows: [r for r in rows if r[0] not in ("ISA", "GS", "ST", "BHT", "SE", "GE", "IEA")]  # noqa: E731
    assert [r[0] for r in body(ours)] == [r[0] for r in body(sample)]
    assert [r for r in body(ours) if r[0] == "HL"] == [r for r in body(sample) if r[0] == "HL"]
    assert ["TRN", "1", "93175-012547", "9877281234"] in ours
    assert ["NM1", "PR", "2", "ABC COMPANY", "", "", "", "", "PI", "842610001"] in ours
    assert ["NM1", "1P", "2", "BONE AND JOINT CLINIC", "", "", "", "", "XX", "1234567893"] in ours
    assert ["NM1", "IL", "1", "SMITH", "ROBERT", "", "", "", "MI", "11122333301"] in ours
    assert ["DMG", "D8", "19430519"] in ours and ["DTP", "291", "D8", "20060501"] in ours and ["EQ", "30"] in ours


def test_dependent_request_puts_the_trace_and_date_in_2000d():
    rows = segs(write(PayerInquiries(name="ABC Company", payer_id="842610001", inquiries=(MARY,))))
    ids = [r[0] for r in rows]
    sample = segs((X12 / "270_005010X279A1__dependent-health-benefit-check.270").read_text())
    assert [r for r in rows if r[0] == "HL"] == [r for r in sample if r[0] == "HL"]
    dep_at = rows.index(["HL", "4", "3", "23", "0"])
    assert ids.index("TRN") > dep_at and ids.index("DTP") > dep_at and ids.index("EQ") > dep_at
    assert rows[dep_at + 1 : dep_at + 6] == [
        ["TRN", "1", "93175-012548", "9877281234"],
        ["NM1", "03", "1", "SMITH", "MARY"],
        ["DMG", "D8", "19781014", "F"],
        ["DTP", "291", "D8", "20060501"],
        ["EQ", "30"],
    ]


def test_envelope_counts_and_control_numbers():
    text = write(
        PayerInquiries(name="ABC", payer_id="P1", inquiries=(ROBERT, MARY)),
        PayerInquiries(name="XYZ", payer_id="P2", inquiries=(ROBERT,)),
        isa_control=42,
        gs_control=7,
    )
    rows = segs(text)
    assert rows[0][13] == "000000042" and rows[0][16] == ":" and rows[0][11] == "^" and rows[0][15] == "T"
    assert rows[1] == ["GS", "HS", "SUB01", "CH01", "20260615", "1430", "7", "X", "005010X279A1"]
    st = next(i for i, r in enumerate(rows) if r[0] == "ST")
    se = next(i for i, r in enumerate(rows) if r[0] == "SE")
    assert rows[se] == ["SE", str(se - st + 1), "0001"]
    assert rows[-2:] == [["GE", "1", "7"], ["IEA", "1", "000000042"]]
    hls = [r for r in rows if r[0] == "HL"]
    assert [h[3] for h in hls] == ["20", "21", "22", "22", "23", "20", "21", "22"]
    assert hls[5] == ["HL", "6", "", "20", "1"] and hls[7] == ["HL", "8", "7", "22", "0"]
    assert text.endswith("IEA*1*000000042~\n")


def test_text_is_cleaned_of_delimiters_and_upper_cased():
    inq = Inquiry(
        trace="T1", service_date=date(2026, 1, 2), subscriber=Subscriber(member_id="ab*1", last="O'Brien~", first="Zoë")
    )
    rows = segs(write(PayerInquiries(name="Acme: Health", payer_id="A1", inquiries=(inq,))))
    assert ["NM1", "IL", "1", "O'BRIEN", "ZOE", "", "", "", "MI", "AB1"] in rows
    assert ["NM1", "PR", "2", "ACME HEALTH", "", "", "", "", "PI", "A1"] in rows


def test_bad_input_is_refused():
    payer = PayerInquiries(name="A", payer_id="A1", inquiries=(ROBERT,))
    with pytest.raises(ValueError, match="no inquiry"):
        write(PayerInquiries(name="A", payer_id="A1", inquiries=()))
    with pytest.raises(ValueError, match="isa_control"):
        write(payer, isa_control=0)
    with pytest.raises(ValueError, match="trace number"):
        write(
            PayerInquiries(
                name="A",
                payer_id="A1",
                inquiries=(Inquiry(trace="x" * 51, service_date=date(2026, 1, 1), subscriber=ROBERT.subscriber),),
            )
        )


@pytest.mark.parametrize("name", ["demo-file__demo.270", "demo-file__demo-single-line.270"])
def test_demo_requests_match_the_subscriber_example(name):
    """With or without line breaks, the demo 270s are the subscriber example: the writer's
    shape is checked against one reference."""
    assert segs((X12 / name).read_text()) == segs(
        (X12 / "270_005010X279A1__subscriber-health-benefit-check.270").read_text()
    )
