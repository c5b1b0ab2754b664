"""A reader for the ASC X12 5010 271 Health Care Eligibility Benefit Response (005010X279A1).

The reader is a pure parser: the text of a 271 file in, plain frozen dataclasses out, one
:class:`EligibilityResponse` per information source (2000A loop: one payer) of each ST/SE
transaction set, with one :class:`Member` per subscriber (2000C) or dependent (2000D) loop.
A transaction set answering a 270 that asked several payers holds one 2000A loop per payer;
each payer's answers and rejections stay with that payer. It uses the tokeniser of the 835
reader (:mod:`hpms.interop.x12.segments`): separators come from each ISA; the repetition
separator (ISA11) splits EB03 service types; a byte order mark is skipped.

What it keeps: the payer (2100A) and receiver (2100B), the trace numbers (TRN*2 is the one
the 270 sent, echoed; TRN*1 the payer's own), member id, name and birth date, the dates of
the 2100C/D loop (DTP*346 plan begin, 347 plan end, 291 plan, 307 eligibility, 356/357
eligibility begin/end, ...), every EB benefit with its own dates and messages, and every
AAA rejection at any level (2100A, 2100B, 2100C/D, 2110C/D) with a readable reason. The
2120 loops (LS/LE: a benefit's related entity, e.g. the primary care provider) are skipped.

Structure errors (not X12, truncated, wrong terminators, SE counts) raise :class:`X12Error`
naming the segment. An SE02 that does not match ST02 is reported in ``warnings`` (of the last
payer of the set): one of the published 005010X279A1 examples has such a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from hpms.interop.x12.segments import X12Error, _Segment, _transaction_sets

__all__ = [
    "AAA_REASONS",
    "Benefit",
    "EligibilityResponse",
    "Member",
    "Rejection",
    "X12Error",
    "parse_271",
]

VERSION = "005010X279A1"

# AAA03 reject reason codes of 005010X279A1, as readable text.
AAA_REASONS: dict[str, str] = {
    "04": "authorized quantity exceeded",
    "15": "required application data missing",
    "33": "input errors",
    "35": "out of network",
    "41": "authorization/access restrictions",
    "42": "unable to respond at current time",
    "43": "invalid/missing provider identification",
    "44": "invalid/missing provider name",
    "45": "invalid/missing provider specialty",
    "46": "invalid/missing provider phone number",
    "47": "invalid/missing provider state",
    "48": "invalid/missing referring provider identification number",
    "49": "provider is not primary care physician",
    "50": "provider ineligible for inquiries",
    "51": "provider not on file",
    "52": "service dates not within provider plan enrollment",
    "53": "inquired benefit inconsistent with provider type",
    "54": "inappropriate product/service id qualifier",
    "55": "inappropriate product/service id",
    "56": "inappropriate date",
    "57": "invalid/missing date(s) of service",
    "58": "invalid/missing date of birth",
    "60": "date of birth follows date(s) of service",
    "61": "date of death precedes date(s) of service",
    "62": "date of service not within allowable inquiry period",
    "63": "date of service in future",
    "64": "invalid/missing patient id",
    "65": "invalid/missing patient name",
    "66": "invalid/missing patient gender code",
    "67": "patient not found",
    "68": "duplicate patient id number",
    "69": "inconsistent with patient's age",
    "70": "inconsistent with patient's gender",
    "71": "patient birth date does not match that for the patient on the database",
    "72": "invalid/missing subscriber/insured id",
    "73": "invalid/missing subscriber/insured name",
    "74": "invalid/missing subscriber/insured gender code",
    "75": "subscriber/insured not found",
    "76": "duplicate subscriber/insured id number",
    "77": "subscriber found, patient not found",
    "78": "subscriber/insured not in group/plan identified",
    "79": "invalid participant identification",
    "80": "no response received - transaction terminated",
    "97": "invalid or missing provider address",
    "T4": "payer name or identifier missing",
}

# AAA04 follow-up action codes.
FOLLOW_UP: dict[str, str] = {
    "C": "correct and resubmit",
    "N": "resubmission not allowed",
    "P": "resubmit the original transaction",
    "R": "resubmission allowed",
    "S": "do not resubmit; inquiry initiated to a third party",
    "W": "wait 30 days and resubmit",
    "X": "wait 10 days and resubmit",
    "Y": "do not resubmit; the inquiry is handed to a third party",
}

# EB01 eligibility or benefit information codes (the common ones).
EB_CODES: dict[str, str] = {
    "1": "active coverage",
    "2": "active - full risk capitation",
    "3": "active - services capitated",
    "4": "active - services capitated to primary care physician",
    "5": "active - pending investigation",
    "6": "inactive",
    "7": "inactive - pending eligibility update",
    "8": "inactive - pending investigation",
    "A": "co-insurance",
    "B": "co-payment",
    "C": "deductible",
    "CB": "coverage basis",
    "D": "benefit description",
    "E": "exclusions",
    "F": "limitations",
    "G": "out of pocket (stop loss)",
    "H": "unlimited",
    "I": "non-covered",
    "J": "cost containment",
    "K": "reserve",
    "L": "primary care provider",
    "M": "pre-existing condition",
    "MC": "managed care coordinator",
    "N": "services restricted to following provider",
    "O": "not deemed a medical necessity",
    "P": "benefit disclaimer",
    "Q": "second surgical opinion required",
    "R": "other or additional payor",
    "S": "prior year(s) history",
    "T": "card(s) reported lost/stolen",
    "U": "contact following entity for eligibility or benefit information",
    "V": "cannot process",
    "W": "other source of data",
    "X": "health care facility",
    "Y": "spend down",
}
ACTIVE_CODES = frozenset("12345")
INACTIVE_CODES = frozenset("678")

# DTP qualifiers of the 2100C/D and 2110C/D loops.
DATE_NAMES: dict[str, str] = {
    "096": "discharge",
    "102": "issue",
    "152": "effective date of change",
    "291": "plan",
    "307": "eligibility",
    "318": "added",
    "340": "cobra begin",
    "341": "cobra end",
    "342": "premium paid to date begin",
    "343": "premium paid to date end",
    "346": "plan begin",
    "347": "plan end",
    "356": "eligibility begin",
    "357": "eligibility end",
    "382": "enrollment",
    "435": "admission",
    "442": "date of death",
    "458": "certification",
    "472": "service",
    "539": "policy effective",
    "540": "policy expiration",
    "636": "date of last update",
    "771": "status",
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """An AAA segment. ``level`` is the loop it was found in: 2100A (payer), 2100B
    (receiver), 2100C/2100D (subscriber/dependent) or 2110C/2110D (a benefit)."""

    level: str
    code: str  # AAA03
    follow_up: str | None = None  # AAA04
    valid_request: bool = True  # AAA01 Y/N

    @property
    def reason(self) -> str:
        text = AAA_REASONS.get(self.code, f"reject reason {self.code or 'not given'}")
        action = FOLLOW_UP.get(self.follow_up or "")
        return f"{text} ({action})" if action else text


@dataclass(frozen=True, slots=True)
class Benefit:
    """An EB segment (loop 2110C/D) with the DTP and MSG segments after it."""

    code: str  # EB01
    coverage_level: str | None = None  # EB02: IND, FAM, EMP, ESP, CHD, ...
    service_types: tuple[str, ...] = ()  # EB03 ("30" health benefit plan coverage)
    insurance_type: str | None = None  # EB04
    plan: str | None = None  # EB05
    time_period: str | None = None  # EB06: 23 calendar year, 27 visit, 29 remaining, ...
    amount: Decimal | None = None  # EB07
    percent: Decimal | None = None  # EB08, a fraction as sent (0.2 = 20 %)
    quantity_qualifier: str | None = None  # EB09
    quantity: Decimal | None = None  # EB10
    authorization_required: str | None = None  # EB11
    in_network: str | None = None  # EB12: Y, N, W (both), U (unknown)
    dates: dict[str, tuple[date, date | None]] = field(default_factory=dict)
    messages: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return EB_CODES.get(self.code, f"benefit {self.code}")

    @property
    def percent_of_100(self) -> Decimal | None:
        """EB08 as a percentage (0.2 -> 20); a value above 1 is taken as already a percentage."""
        if self.percent is None:
            return None
        value = self.percent * 100 if self.percent <= 1 else self.percent
        return value.normalize() if value != value.to_integral() else value.to_integral()


@dataclass(frozen=True, slots=True)
class Member:
    """A subscriber (2000C, ``level`` "subscriber") or dependent (2000D, "dependent") loop."""

    level: str
    traces: tuple[tuple[str, str, str | None], ...] = ()  # (TRN01, TRN02, TRN03)
    member_id: str | None = None
    last: str | None = None
    first: str | None = None
    dob: date | None = None
    subscriber_member_id: str | None = None  # the 2100C id, for a dependent
    dates: dict[str, tuple[date, date | None]] = field(default_factory=dict)
    benefits: tuple[Benefit, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    has_dependents: bool = False  # HL04 = 1: the answer is in a 2000D loop
    # For a dependent without a trace of its own: the TRN segments of its 2000C loop, when that
    # loop answers nothing itself and has no other dependent (some payers echo the trace there).
    subscriber_traces: tuple[tuple[str, str, str | None], ...] = ()

    @property
    def echoed_traces(self) -> tuple[str, ...]:
        """TRN02 of TRN*2: the trace numbers the 270 sent (a dependent's may come from its
        subscriber loop, see ``subscriber_traces``)."""
        return tuple(t[1] for t in self.traces or self.subscriber_traces if t[0] == "2")

    @property
    def status(self) -> str | None:
        """'error' (rejected or "cannot process"), 'active', 'inactive', or None when the answer
        says neither."""
        if self.rejections:
            return "error"
        codes = {b.code for b in self.benefits}
        if codes & ACTIVE_CODES:
            return "active"
        if codes & INACTIVE_CODES:
            return "inactive"
        if "V" in codes:
            return "error"
        return None

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f"{r.reason} [{r.level}]" for r in self.rejections)

    @property
    def plan_name(self) -> str | None:
        for want in (ACTIVE_CODES | INACTIVE_CODES, None):
            for b in self.benefits:
                if b.plan and (want is None or b.code in want):
                    return b.plan
        return None

    def _date(self, *qualifiers: str, end: bool = False) -> date | None:
        for dates in [self.dates] + [b.dates for b in self.benefits if b.code in ACTIVE_CODES | INACTIVE_CODES]:
            for q in qualifiers:
                if q in dates:
                    lo, hi = dates[q]
                    if not end:
                        return lo
                    if hi is not None:
                        return hi
        return None

    @property
    def plan_begin(self) -> date | None:
        return self._date("346", "356", "348", "307", "291", "539")

    @property
    def plan_end(self) -> date | None:
        single = self._date("347", "357", "349", "540")
        return single or self._date("307", "291", "346", "356", end=True)

    def _pick(self, code: str, periods: frozenset[str] | None = None, want: str = "amount") -> Decimal | None:
        """The value of the best EB of a kind: in network before out of network, individual
        before family, first one first."""
        found = [
            b
            for b in self.benefits
            if b.code == code and getattr(b, want) is not None and (periods is None or b.time_period in periods)
        ]
        if not found:
            return None
        found.sort(key=lambda b: (b.in_network not in ("Y", "W", None), b.coverage_level not in ("IND", None)))
        return getattr(found[0], want)

    @property
    def copay(self) -> Decimal | None:
        return self._pick("B")

    @property
    def coinsurance_percent(self) -> Decimal | None:
        found = [b for b in self.benefits if b.code == "A" and b.percent is not None]
        found.sort(key=lambda b: (b.in_network not in ("Y", "W", None), b.coverage_level not in ("IND", None)))
        return found[0].percent_of_100 if found else None

    @property
    def deductible(self) -> Decimal | None:
        return self._pick("C", frozenset({"21", "22", "23", "24", "25", "32"}))

    @property
    def deductible_remaining(self) -> Decimal | None:
        return self._pick("C", frozenset({"29", "33"}))


@dataclass(frozen=True, slots=True)
class EligibilityResponse:
    """One payer's answers: an information source (2000A) loop of a 271 transaction set, with
    the envelope of its set (a set answering several payers gives one response each)."""

    isa_control: str
    gs_control: str
    st_control: str
    reference: str | None  # BHT03: the 270's reference, echoed
    payer_name: str = ""
    payer_id: str | None = None  # NM1*PR ... PI
    receiver_name: str = ""
    receiver_id: str | None = None  # NM1*1P ... XX (the NPI)
    rejections: tuple[Rejection, ...] = ()  # 2100A / 2100B
    members: tuple[Member, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f"{r.reason} [{r.level}]" for r in self.rejections)

    @property
    def answers(self) -> tuple[Member, ...]:
        """The members a question was about: every dependent, and every subscriber without a
        dependent loop (a subscriber loop that only introduces a dependent answers nothing,
        unless it carries benefits, a rejection, or a trace it did not hand to its dependent)."""
        out = []
        for i, m in enumerate(self.members):
            if m.level == "subscriber" and m.has_dependents and not (m.benefits or m.rejections):
                after = self.members[i + 1] if i + 1 < len(self.members) else None
                if not m.traces or (after is not None and after.subscriber_traces == m.traces):
                    continue
            out.append(m)
        return tuple(out)


# --------------------------------------------------------------------------- parsing


def _dtp(seg: _Segment) -> tuple[str, tuple[date, date | None]]:
    qualifier, fmt, text = seg.get(1), seg.get(2), seg.get(3)
    if not qualifier or not text:
        raise seg.error("DTP needs a qualifier and a date")
    if fmt != "RD8":
        start = seg.date(3)
        assert start is not None  # element 03 is not empty
        return qualifier, (start, None)
    lo, sep, hi = text.partition("-")
    probe = _Segment(seg.number, ("DTP", lo, hi), seg.component)
    start = probe.date(1) if sep else None
    if start is None:
        raise seg.error(f"element 03 is not a CCYYMMDD-CCYYMMDD range: {text!r}")
    return qualifier, (start, probe.date(2))


class _MemberBuilder:
    def __init__(self, level: str, parent: _MemberBuilder | None, has_dependents: bool = False):
        self.level = level
        self.has_dependents = has_dependents
        self.parent = parent
        self.kwargs: dict = {}
        self.traces: list[tuple[str, str, str | None]] = []
        self.dates: dict[str, tuple[date, date | None]] = {}
        self.benefits: list[Benefit] = []
        self.rejections: list[Rejection] = []
        self.benefit: dict | None = None
        self.in_2120 = False

    def close_benefit(self) -> None:
        if self.benefit is not None:
            self.benefit["messages"] = tuple(self.benefit["messages"])
            self.benefits.append(Benefit(**self.benefit))
            self.benefit = None

    def build(self) -> Member:
        self.close_benefit()
        if self.parent is not None:
            self.kwargs["subscriber_member_id"] = self.parent.kwargs.get("member_id")
        return Member(
            level="subscriber" if self.level == "22" else "dependent",
            traces=tuple(self.traces),
            dates=dict(self.dates),
            benefits=tuple(self.benefits),
            rejections=tuple(self.rejections),
            has_dependents=self.has_dependents,
            **self.kwargs,
        )


def _aaa(seg: _Segment, level: str) -> Rejection:
    return Rejection(level=level, code=seg.get(3), follow_up=seg.opt(4), valid_request=seg.get(1) != "N")


class _Source:
    """An information source (2000A) loop being read: the payer, the receiver and the members."""

    def __init__(self) -> None:
        self.header: dict = {}
        self.rejections: list[Rejection] = []
        self.members: list[Member] = []


def _hand_down_traces(members: list[Member]) -> tuple[Member, ...]:
    """Give a dependent without a trace the trace of its subscriber loop when that loop answers
    nothing itself and introduces only this dependent."""
    out = list(members)
    for i, m in enumerate(out):
        if m.level != "subscriber" or not m.has_dependents or m.benefits or m.rejections or not m.traces:
            continue
        deps = []
        for d in out[i + 1 :]:
            if d.level != "dependent":
                break
            deps.append(d)
        if len(deps) == 1 and not deps[0].traces:
            out[i + 1] = replace(deps[0], subscriber_traces=m.traces)
    return tuple(out)


class _TransactionParser:
    def __init__(self, st: _Segment, isa_control: str, gs_control: str, repetition: str):
        self.st = st
        self.isa_control = isa_control
        self.gs_control = gs_control
        self.repetition = repetition
        self.count = 1
        self.reference: str | None = None
        self.sources: list[_Source] = []
        self.level: str | None = None  # HL03 of the open loop: 20, 21, 22, 23
        self.member: _MemberBuilder | None = None
        self.subscriber: _MemberBuilder | None = None
        self.warnings: list[str] = []

    @property
    def source(self) -> _Source:
        if not self.sources:  # a receiver or member loop before any 2000A: keep it all the same
            self.sources.append(_Source())
        return self.sources[-1]

    def _close_member(self) -> None:
        if self.member is not None:
            self.source.members.append(self.member.build())
            self.member = None

    def feed(self, seg: _Segment) -> None:
        self.count += 1
        sid = seg.id
        if sid == "BHT":
            self.reference = seg.opt(3)
        elif sid == "HL":
            self._close_member()
            level = seg.get(3)
            if level not in ("20", "21", "22", "23"):
                raise seg.error(f"HL03 {level!r} is not a 271 level (20, 21, 22 or 23)")
            self.level = level
            if level == "20":
                self.sources.append(_Source())
                self.subscriber = None
            elif level == "22":
                self.member = self.subscriber = _MemberBuilder(level, None, seg.get(4) == "1")
            elif level == "23":
                if self.subscriber is None:
                    raise seg.error("dependent loop (HL 23) without a subscriber loop before it")
                self.member = _MemberBuilder(level, self.subscriber)
            else:
                self.subscriber = None
        elif self.level is None:
            return  # nothing of interest before the first HL
        elif self.member is not None:
            self._member_segment(seg, self.member)
        elif sid == "NM1":
            if self.level == "20":
                self.source.header.update(payer_name=seg.get(3), payer_id=seg.opt(9))
            else:
                self.source.header.update(receiver_name=seg.get(3), receiver_id=seg.opt(9))
        elif sid == "AAA":
            self.source.rejections.append(_aaa(seg, "2100A" if self.level == "20" else "2100B"))

    def _member_segment(self, seg: _Segment, m: _MemberBuilder) -> None:
        sid = seg.id
        suffix = "C" if m.level == "22" else "D"
        if sid == "LS":
            m.in_2120 = True
            return
        if sid == "LE":
            m.in_2120 = False
            return
        if m.in_2120:
            return
        if sid == "EB":
            m.close_benefit()
            if not seg.get(1):
                raise seg.error("EB01 (eligibility or benefit information code) is missing")
            types = seg.get(3)
            m.benefit = dict(
                code=seg.get(1),
                coverage_level=seg.opt(2),
                service_types=tuple(t for t in (types.split(self.repetition) if self.repetition else [types]) if t),
                insurance_type=seg.opt(4),
                plan=seg.opt(5),
                time_period=seg.opt(6),
                amount=seg.amount(7, required=False),
                percent=seg.amount(8, required=False),
                quantity_qualifier=seg.opt(9),
                quantity=seg.amount(10, required=False),
                authorization_required=seg.opt(11),
                in_network=seg.opt(12),
                dates={},
                messages=[],
            )
        elif m.benefit is not None:
            if sid == "DTP":
                q, value = _dtp(seg)
                m.benefit["dates"][q] = value
            elif sid == "MSG" and seg.get(1):
                m.benefit["messages"].append(seg.get(1))
            elif sid == "AAA":
                m.rejections.append(_aaa(seg, "2110" + suffix))
        elif sid == "TRN":
            if not seg.get(2):
                raise seg.error("TRN02 (trace number) is missing")
            m.traces.append((seg.get(1), seg.get(2), seg.opt(3)))
        elif sid == "NM1":
            m.kwargs.update(last=seg.opt(3), first=seg.opt(4))
            if seg.get(8) == "MI" or (seg.get(9) and "member_id" not in m.kwargs):
                m.kwargs["member_id"] = seg.opt(9)
        elif sid == "DMG":
            if seg.get(1) == "D8":
                m.kwargs["dob"] = seg.date(2)
        elif sid == "DTP":
            q, value = _dtp(seg)
            m.dates[q] = value
        elif sid == "AAA":
            m.rejections.append(_aaa(seg, "2100" + suffix))
        # N3, N4, REF, PRV, INS, HI, MPI, ... are not needed

    def finish(self, se: _Segment) -> list[EligibilityResponse]:
        self.count += 1
        self._close_member()
        if se.get(2) != self.st.get(2):
            self.warnings.append(
                f"segment {se.number} (SE): SE02 control number {se.get(2)!r} does not match ST02 {self.st.get(2)!r}"
            )
        try:
            declared = int(se.get(1))
        except ValueError:
            raise se.error(f"SE01 segment count is not a number: {se.get(1)!r}") from None
        if declared != self.count:
            raise se.error(f"SE01 says {declared} segments but the transaction set has {self.count}")
        sources = self.sources or [_Source()]
        return [
            EligibilityResponse(
                isa_control=self.isa_control,
                gs_control=self.gs_control,
                st_control=self.st.get(2),
                reference=self.reference,
                rejections=tuple(src.rejections),
                members=_hand_down_traces(src.members),
                warnings=tuple(self.warnings) if src is sources[-1] else (),
                **src.header,
            )
            for src in sources
        ]


def parse_271(text: str) -> list[EligibilityResponse]:
    """Parse the text of a 271 file into one :class:`EligibilityResponse` per payer (2000A
    loop) of each transaction set, in file order.

    Raises :class:`X12Error` for malformed input (including a file with no 271 in it).
    """

    def start(st: _Segment, isa: _Segment, gs_control: str) -> _TransactionParser:
        rep = isa.get(11)  # the repetition separator (ISA11), when it is one
        return _TransactionParser(st, isa.get(13), gs_control, rep if len(rep) == 1 and not rep.isalnum() else "")

    sets: list[list[EligibilityResponse]] = _transaction_sets(text, "271", start)
    if not sets:
        raise X12Error("no 271 transaction set in the input")
    return [r for responses in sets for r in responses]
