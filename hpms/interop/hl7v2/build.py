"""HL7 v2.5.1 messages written from plain records: SIU^S12/S13/S14/S15/S26 (a visit booked,
moved, changed, cancelled, missed), ADT^A04/A08 (a patient registered, changed), ADT^A40 (two
records merged) and the ACK that answers an inbound message.

Segments end with a carriage return; every value is escaped (the separators, the escape
character, line breaks). Times carry their offset (UTC, +0000)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

VERSION = "2.5.1"
UNKNOWN_CONTROL_ID = "UNKNOWN"  # MSA-2 of the answer to a message whose control id cannot be read
ENCODING = "^~\\&"

# SIU trigger event -> (SCH-6 event reason, the visit's state in SCH-25 when it has none)
SIU_EVENTS: dict[str, tuple[str, str]] = {
    "S12": ("BOOKED^New appointment^L", "Booked"),
    "S13": ("RESCHEDULED^Rescheduled^L", "Booked"),
    "S14": ("MODIFIED^Modified^L", "Booked"),
    "S15": ("CANCELLED^Cancelled^L", "Cancelled"),
    "S26": ("NOSHOW^Patient did not show up^L", "Noshow"),
}
ADT_EVENTS = {"A04": "ADT_A01", "A08": "ADT_A01", "A40": "ADT_A39"}


def message_type(event: str) -> str:
    """The message type and trigger event of MSH-9 as people read them: SIU^S12, ADT^A04 (the
    trigger alone when it is of neither)."""
    kind = "SIU" if event.startswith("S") else "ADT" if event.startswith("A") else ""
    return f"{kind}^{event}" if kind else event


# hpms visit status -> HL7 table 0278 filler status code (SCH-25)
FILLER_STATUS = {
    "booked": "Booked",
    "confirmed": "Booked",
    "arrived": "Started",
    "in_room": "Started",
    "completed": "Complete",
    "no_show": "Noshow",
    "cancelled": "Cancelled",
}
# hpms sex at birth -> HL7 table 0001
SEX = {"female": "F", "male": "M", "intersex": "A", "unknown": "U"}


@dataclass(frozen=True)
class Header:
    """MSH: who sends, who receives, the message's control id and time."""

    sending_app: str
    sending_facility: str
    receiving_app: str
    receiving_facility: str
    control_id: str
    at: dt.datetime
    processing_id: str = "P"


@dataclass(frozen=True)
class PatientRecord:
    mrn: str
    assigning_authority: str
    last_name: str
    first_name: str
    dob: dt.date
    middle_name: str | None = None
    sex_at_birth: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class VisitRecord:
    appointment_id: int
    status: str
    start: dt.datetime
    end: dt.datetime
    type_id: int
    type_name: str
    location_name: str
    provider_npi: str | None
    provider_last: str
    provider_first: str
    room: str | None = None
    reason: str | None = None
    entered_by: str = ""  # the user who made the change


def escape(value: object) -> str:
    """A value as HL7 text: the escape character first, then the separators; a line break
    becomes a space (a segment ends at a carriage return)."""
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    text = text.replace("&", "\\T\\").replace("~", "\\R\\")
    return " ".join(text.splitlines()) if ("\r" in text or "\n" in text) else text


def ts(value: dt.datetime) -> str:
    """DTM with seconds and the offset: UTC, 20260110140000+0000."""
    return value.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S+0000")


def _comp(*parts: object) -> str:
    """Components joined with ^, each escaped, trailing empty ones dropped."""
    out = [escape(p) for p in parts]
    while out and not out[-1]:
        out.pop()
    return "^".join(out)


def _segment(name: str, fields: Sequence[str]) -> str:
    items = list(fields)
    while items and not items[-1]:
        items.pop()
    return "|".join([name, *items])


def msh(h: Header, message_type: str) -> str:
    return "|".join(
        [
            "MSH",
            ENCODING,
            escape(h.sending_app),
            escape(h.sending_facility),
            escape(h.receiving_app),
            escape(h.receiving_facility),
            ts(h.at),
            "",
            message_type,
            escape(h.control_id),
            h.processing_id,
            VERSION,
        ]
    )


def pid(p: PatientRecord) -> str:
    phones = []
    if p.phone:
        phones.append(_comp(p.phone, "PRN", "PH"))
    if p.email:
        phones.append(_comp("", "NET", "Internet", p.email))
    address = _comp(p.address_line1, p.address_line2, p.city, p.state, p.postal_code, p.country)
    return _segment(
        "PID",
        [
            "1",
            "",
            _comp(p.mrn, "", "", p.assigning_authority, "MR"),
            "",
            _comp(p.last_name, p.first_name, p.middle_name),
            "",
            p.dob.strftime("%Y%m%d"),
            SEX.get(p.sex_at_birth or "", ""),
            "",
            "",
            address,
            "",
            "~".join(phones),
        ],
    )


def _visit_segments(v: VisitRecord, p: PatientRecord, event: str, app: str) -> list[str]:
    reason, default_status = SIU_EVENTS[event]
    minutes = max(int((v.end - v.start).total_seconds() // 60), 0)
    status = FILLER_STATUS.get(v.status, default_status)
    appt = _comp(v.appointment_id, app)
    provider = _comp(v.provider_npi or "", v.provider_last, v.provider_first)
    sch = _segment(
        "SCH",
        [
            appt,
            appt,
            "",
            "",
            "",
            reason,
            _comp("", v.reason) if v.reason else "",
            _comp(v.type_id, v.type_name, "L"),
            str(minutes),
            "min",
            "",
            "",
            "",
            "",
            "",
            provider,
            "",
            "",
            "",
            _comp(v.entered_by or "hpms"),
            "",
            "",
            "",
            "",
            status,
        ],
    )
    tq1 = _segment("TQ1", ["1", "", "", "", "", "", ts(v.start), ts(v.end)])
    ais = _segment("AIS", ["1", "", _comp(v.type_id, v.type_name, "L"), ts(v.start), "", "", str(minutes), "min"])
    ail = _segment(
        "AIL", ["1", "", _comp(v.location_name, v.room or ""), "", "", ts(v.start), "", "", str(minutes), "min"]
    )
    aip = _segment("AIP", ["1", "", provider, "PHYS^Physician^L", "", ts(v.start), "", "", str(minutes), "min"])
    return [sch, tq1, pid(p), "PV1|1|O", "RGS|1", ais, ail, aip]


def siu(h: Header, event: str, visit: VisitRecord, patient: PatientRecord) -> str:
    """SIU^{event} (S12, S13, S14, S15 or S26) of one visit, segments ended by CR."""
    if event not in SIU_EVENTS:
        raise ValueError(f"{event!r} is not an SIU event hpms writes")
    segments = [msh(h, f"SIU^{event}^SIU_S12"), *_visit_segments(visit, patient, event, h.sending_app)]
    return "\r".join(segments) + "\r"


def adt(h: Header, event: str, patient: PatientRecord, *, merged_mrn: str | None = None) -> str:
    """ADT^A04 / ADT^A08 of a patient, or ADT^A40 (`merged_mrn`: the record merged into it)."""
    structure = ADT_EVENTS.get(event)
    if structure is None:
        raise ValueError(f"{event!r} is not an ADT event hpms writes")
    segments = [msh(h, f"ADT^{event}^{structure}"), _segment("EVN", [event, ts(h.at)]), pid(patient)]
    if event == "A40":
        if not merged_mrn:
            raise ValueError("an A40 names the merged record")
        segments.append(_segment("MRG", [_comp(merged_mrn, "", "", patient.assigning_authority, "MR")]))
    else:
        segments.append("PV1|1|O")
    return "\r".join(segments) + "\r"


def ack(h: Header, *, code: str, answers: str, trigger: str = "", text: str | None = None) -> str:
    """ACK (original mode): MSA-1 `code` (AA, AE, AR), MSA-2 the control id it answers
    (UNKNOWN when it could not be read), MSA-3 the reason of a refusal."""
    message_type = f"ACK^{escape(trigger)}^ACK"
    said = escape((text or "")[:80])
    segments = [msh(h, message_type), _segment("MSA", [code, escape(answers) or UNKNOWN_CONTROL_ID, said])]
    if code != "AA" and text:
        # ERR-3 HL7 error code (table 0357): 100 segment sequence error, 207 application error
        segments.append(
            _segment("ERR", ["", "", "207^Application internal error^HL70357", "E", "", "", "", escape(text[:250])])
        )
    return "\r".join(segments) + "\r"
