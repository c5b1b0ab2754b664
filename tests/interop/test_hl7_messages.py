"""The HL7 v2.5.1 writer and reader: every SIU and ADT message hpms writes (and its ACKs)
parses with hl7apy in strict validation and validates against the message structure; values
with HL7's separators are escaped and read back; another system's ADT (v2.8, LF line ends)
is read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from hpms.interop.hl7v2 import build
from hpms.interop.hl7v2 import parse as hl7parse

DATA = Path(__file__).resolve().parents[1] / "data" / "hl7"
AT = dt.datetime(2026, 6, 15, 14, 30, tzinfo=dt.UTC)
HEADER = build.Header("HPMS", "Riverside & Co", "EHR", "GENERAL", "4711", AT)
PATIENT = build.PatientRecord(
    mrn="0100001",
    assigning_authority="HPMS",
    last_name="O'Brien|Smith",
    first_name="Ana^Maria",
    middle_name="J",
    dob=dt.date(1980, 1, 2),
    sex_at_birth="female",
    address_line1="1 Main St\nApt 2",
    city="Springfield",
    state="IL",
    postal_code="62701",
    country="US",
    phone="+12175550100",
    email="ana@example.org",
)
VISIT = build.VisitRecord(
    appointment_id=42,
    status="booked",
    start=dt.datetime(2026, 6, 16, 13, 0, tzinfo=dt.UTC),
    end=dt.datetime(2026, 6, 16, 13, 30, tzinfo=dt.UTC),
    type_id=3,
    type_name="Follow-up",
    location_name="Main",
    provider_npi="1234567893",
    provider_last="Lovelace",
    provider_first="Ada",
    room="Exam 1",
    reason="Knee ~ back",
    entered_by="frontdesk",
)


def strict(message: str):
    """hl7apy's strict parse, then its validation of the whole structure (raises on any error)."""
    parsed = parse_message(message, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert parsed.validate() is True
    return parsed


@pytest.mark.parametrize("event", sorted(build.SIU_EVENTS))
def test_every_siu_event_parses_strictly(event):
    text = build.siu(HEADER, event, VISIT, PATIENT)
    msg = strict(text)
    assert msg.msh.msh_9.to_er7() == f"SIU^{event}^SIU_S12"
    assert msg.msh.msh_10.to_er7() == "4711"
    assert msg.msh.msh_12.to_er7() == "2.5.1"
    assert text.endswith("\r") and "\n" not in text
    segments = [s.split("|")[0] for s in text.strip("\r").split("\r")]
    assert segments == ["MSH", "SCH", "TQ1", "PID", "PV1", "RGS", "AIS", "AIL", "AIP"]


def test_siu_carries_the_visit_the_patient_and_the_resources():
    p = hl7parse.split(build.siu(HEADER, "S15", VISIT, PATIENT))
    assert p.value("SCH", 1) == "42" and p.value("SCH", 1, 2) == "HPMS"
    assert p.value("SCH", 25) == "Booked"  # the visit's own status wins over the event's
    assert p.value("SCH", 6) == "CANCELLED"
    assert p.value("TQ1", 7) == "20260616130000+0000" and p.value("TQ1", 8) == "20260616133000+0000"
    assert p.value("AIP", 3) == "1234567893" and p.value("AIP", 3, 2) == "Lovelace"
    assert p.value("AIL", 3) == "Main" and p.value("AIL", 3, 2) == "Exam 1"
    assert p.value("AIS", 3, 2) == "Follow-up"
    assert p.value("PID", 3) == "0100001" and p.value("PID", 3, 4) == "HPMS" and p.value("PID", 3, 5) == "MR"


def test_separators_in_values_are_escaped_and_read_back():
    text = build.siu(HEADER, "S12", VISIT, PATIENT)
    strict(text)
    p = hl7parse.split(text)
    assert p.value("PID", 5) == "O'Brien|Smith" and p.value("PID", 5, 2) == "Ana^Maria"
    assert p.value("MSH", 4) == "Riverside & Co"
    assert p.value("SCH", 7, 2) == "Knee ~ back"
    assert p.value("PID", 11) == "1 Main St Apt 2"  # a line break inside a value becomes a space


@pytest.mark.parametrize("event", ["A04", "A08", "A40"])
def test_every_adt_event_parses_strictly(event):
    text = build.adt(HEADER, event, PATIENT, merged_mrn="0100002" if event == "A40" else None)
    msg = strict(text)
    structure = "ADT_A39" if event == "A40" else "ADT_A01"
    assert msg.msh.msh_9.to_er7() == f"ADT^{event}^{structure}"
    p = hl7parse.split(text)
    assert p.value("EVN", 1) == event and p.value("EVN", 2) == "20260615143000+0000"
    if event == "A40":
        assert p.value("MRG", 1) == "0100002" and p.value("MRG", 1, 4) == "HPMS"


def test_an_a40_without_the_merged_record_is_refused():
    with pytest.raises(ValueError, match="merged"):
        build.adt(HEADER, "A40", PATIENT)
    with pytest.raises(ValueError, match="S99"):
        build.siu(HEADER, "S99", VISIT, PATIENT)


@pytest.mark.parametrize("code", ["AA", "AE", "AR"])
def test_acks_parse_strictly_and_answer_the_control_id(code):
    text = build.ack(HEADER, code=code, answers="MSG00001", trigger="A04", text=None if code == "AA" else "no PID-5")
    strict(text)
    ack = hl7parse.ack(text)
    assert (ack.code, ack.control_id) == (code, "MSG00001")
    assert ack.text == ("" if code == "AA" else "no PID-5")


def test_the_writer_matches_the_reference_message_segment_by_segment():
    """The hand-written reference SIU^S12 and hpms's carry the same segments in the same order
    (the reference parses strictly too)."""
    reference = (DATA / "handmade_siu_s12_v251.hl7").read_text().replace("\n", "\r")
    strict(reference)
    ours = build.siu(HEADER, "S12", VISIT, PATIENT)
    names = lambda t: [s[:3] for s in t.strip("\r").split("\r")]  # noqa: E731
    assert [n for n in names(ours) if n in names(reference)] == names(reference)


def test_another_systems_adt_is_read():
    p = hl7parse.split((DATA / "ADT-A04-01.hl7").read_text())  # v2.8, LF line ends
    head = hl7parse.header(p)
    assert (head.message_type, head.trigger, head.control_id, head.version) == ("ADT", "A04", "MSG00001", "2.8")
    pat = hl7parse.adt_patient(p)
    assert (pat.last_name, pat.first_name, pat.middle_name) == ("EVERYMAN", "ADAM", "A")
    assert pat.dob == dt.date(1988, 8, 18) and pat.sex_at_birth == "male"
    assert pat.address_line1 == "1000 Hospital Lane" and pat.city == "Ann Arbor" and pat.state == "MI"
    assert hl7parse.Identifier("PATID1234", "test1", "MR") in pat.identifiers
    assert pat.country is None  # "USA" is not a two-letter country code


@pytest.mark.parametrize(
    "text, said",
    [
        ("", "MSH"),
        ("hello world", "MSH"),
        ("MSH", "MSH"),
        ("MSHabcdefgh", "separators"),
        ("MSH|^~\\&|A|B\rP!D|1", "not a segment"),
    ],
)
def test_what_is_not_hl7_is_refused_with_the_reason(text, said):
    with pytest.raises(hl7parse.ParseError, match=said):
        hl7parse.split(text)


def test_an_adt_without_a_name_is_refused():
    with pytest.raises(hl7parse.ParseError, match="PID-5"):
        hl7parse.adt_patient(hl7parse.split("MSH|^~\\&|A|B|C|D|20260101||ADT^A04|1|P|2.5.1\rPID|1||X^^^Y^MR||^\r"))
    with pytest.raises(hl7parse.ParseError, match="PID"):
        hl7parse.adt_patient(hl7parse.split("MSH|^~\\&|A|B|C|D|20260101||ADT^A04|1|P|2.5.1\r"))
