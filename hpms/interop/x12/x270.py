"""A writer for the ASC X12 5010 270 Health Care Eligibility Benefit Inquiry (005010X279A1).

The writer is a pure formatter: plain frozen dataclasses in, the text of one interchange
(ISA/GS/ST ... SE/GE/IEA) out. One transaction set holds one 2000A information source loop
per payer, each with one 2000B information receiver (the practice, by NPI) and, under it, one
2000C subscriber loop per question, with a 2000D dependent loop when the patient is not the
subscriber. The trace number (TRN*1) of each question goes to the loop of the person asked
about (2000C, or 2000D for a dependent); the payer echoes it in the 271 (TRN*2).

Output conventions are those of the 837P writer (:mod:`hpms.interop.x12.x837p`): element
separator ``*``, component ``:``, repetition ``^``, segment terminator ``~`` and a newline,
text upper-cased ASCII without delimiter characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from hpms.interop.x12.x837p import _d8, _o, _t

__all__ = ["Dependent", "Inquiry", "PayerInquiries", "Receiver", "Subscriber", "write_270"]

VERSION = "005010X279A1"


@dataclass(frozen=True, slots=True)
class Receiver:
    """Loop 2100B: the practice asking (NM1*1P ... XX npi). With ``first`` a person (NM102=1)."""

    name: str
    npi: str
    first: str | None = None


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Loop 2100C: the insured. ``member_id`` goes to NM1*IL ... MI."""

    member_id: str
    last: str | None = None
    first: str | None = None
    dob: date | None = None
    sex: str | None = None  # "F", "M" or None
    group_number: str | None = None


@dataclass(frozen=True, slots=True)
class Dependent:
    """Loop 2100D: the patient when not the subscriber (NM1*03)."""

    last: str
    first: str | None
    dob: date | None = None
    sex: str | None = None


@dataclass(frozen=True, slots=True)
class Inquiry:
    """One question: is this person covered on ``service_date``? ``trace`` (TRN02, at most 50
    characters) is how the answer is matched back; ``service_types`` are EQ01 codes
    ("30" health benefit plan coverage)."""

    trace: str
    service_date: date
    subscriber: Subscriber
    dependent: Dependent | None = None
    service_types: tuple[str, ...] = ("30",)


@dataclass(frozen=True, slots=True)
class PayerInquiries:
    """Loop 2000A/2100A: one payer (NM1*PR ... PI payer id) and the questions to it."""

    name: str
    payer_id: str
    inquiries: tuple[Inquiry, ...]


def _nm1(code: str, last: str | None, first: str | None, qual: str | None, ident: str | None, person: bool) -> str:
    seg = f"NM1*{code}*{'1' if person else '2'}*{_o(last)}*{_o(first)}"
    if ident:
        return f"{seg}****{qual}*{_t(ident)}"
    return seg.rstrip("*")


def _dmg(dob: date | None, sex: str | None) -> list[str]:
    if dob is None:
        return []
    return [f"DMG*D8*{_d8(dob)}" + (f"*{_t(sex)}" if sex in ("F", "M") else "")]


def write_270(
    *,
    isa_control: int,
    gs_control: int,
    sender_id: str,
    receiver_id: str,
    receiver: Receiver,
    payers: Sequence[PayerInquiries],
    created: datetime,
    production: bool,
    trace_originator: str,
    reference: str | None = None,
    sender_qualifier: str = "ZZ",
    receiver_qualifier: str = "ZZ",
) -> str:
    """The text of one 270 interchange. ``sender_id``/``receiver_id`` are the ISA06/ISA08 and
    GS02/GS03 identities (submitter and clearinghouse); ``trace_originator`` is TRN03 (10
    characters: "1" + the EIN, or "9" + a number of the practice's choosing); BHT03 is
    ``reference`` (default: the ISA control number). Raises ValueError when there is nothing to
    ask or a control number does not fit."""
    if not 0 < isa_control <= 999_999_999:
        raise ValueError("isa_control must be 1..999999999 (ISA13 is 9 digits)")
    if not 0 < gs_control <= 999_999_999:
        raise ValueError("gs_control must be 1..999999999 (GS06 is at most 9 digits)")
    if not any(p.inquiries for p in payers):
        raise ValueError("no inquiry to write")
    for p in payers:
        for q in p.inquiries:
            if not q.trace or len(q.trace) > 50:
                raise ValueError(f"trace number {q.trace!r} must be 1-50 characters")
    sender = _t(sender_id)[:15]
    recv = _t(receiver_id)[:15]
    originator = _t(trace_originator)[:10]
    segs: list[str] = [
        f"ST*270*0001*{VERSION}",
        f"BHT*0022*13*{_t(reference) if reference else isa_control}*{created:%Y%m%d}*{created:%H%M}",
    ]
    add = segs.append
    hl = 0
    for p in payers:
        if not p.inquiries:
            continue
        hl += 1
        source_hl = hl
        add(f"HL*{source_hl}**20*1")
        add(_nm1("PR", p.name, None, "PI", p.payer_id, person=False))
        hl += 1
        receiver_hl = hl
        add(f"HL*{receiver_hl}*{source_hl}*21*1")
        add(_nm1("1P", receiver.name, receiver.first, "XX", receiver.npi, person=receiver.first is not None))
        for q in p.inquiries:
            sub, dep = q.subscriber, q.dependent
            hl += 1
            sub_hl = hl
            add(f"HL*{sub_hl}*{receiver_hl}*22*{'1' if dep else '0'}")
            asked = [f"TRN*1*{_t(q.trace)}*{originator}"]
            asked_tail = [f"DTP*291*D8*{_d8(q.service_date)}"] + [f"EQ*{_t(code)}" for code in q.service_types]
            if dep is None:
                segs.extend(asked)
            add(_nm1("IL", sub.last, sub.first, "MI", sub.member_id, person=True))
            if sub.group_number:
                add(f"REF*6P*{_t(sub.group_number)}")
            if dep is None:
                segs.extend(_dmg(sub.dob, sub.sex))
                segs.extend(asked_tail)
                continue
            segs.extend(_dmg(sub.dob, sub.sex))
            hl += 1
            add(f"HL*{hl}*{sub_hl}*23*0")
            segs.extend(asked)
            add(_nm1("03", dep.last, dep.first, None, None, person=True))
            segs.extend(_dmg(dep.dob, dep.sex))
            segs.extend(asked_tail)
    add(f"SE*{len(segs) + 1}*0001")
    yymmdd, hhmm = created.strftime("%y%m%d"), created.strftime("%H%M")
    head = (
        f"ISA*00*{'':10}*00*{'':10}*{_t(sender_qualifier)[:2]:2}*{sender:15}*{_t(receiver_qualifier)[:2]:2}"
        f"*{recv:15}*{yymmdd}*{hhmm}*^*00501*{isa_control:09d}*0*{'P' if production else 'T'}*:~\n"
        f"GS*HS*{sender}*{recv}*{created:%Y%m%d}*{hhmm}*{gs_control}*X*{VERSION}~\n"
    )
    return head + "".join(s + "~\n" for s in segs) + f"GE*1*{gs_control}~\nIEA*1*{isa_control:09d}~\n"
