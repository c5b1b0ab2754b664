"""A reader for the ASC X12 5010 835 Health Care Claim Payment/Advice (005010X221A1).

The reader is a pure parser: it turns the text of an 835 file into plain frozen dataclasses
(no database objects), one :class:`Remittance` per ST/SE transaction set. A file may hold
several interchanges (ISA/IEA), each with several functional groups and transaction sets.

Separators are taken from each ISA segment: the element separator is the character after
``ISA``, the component separator is ISA16 and the segment terminator is the character right
after ISA16. Line breaks and other white space around segments are ignored.

It checks structure only (an ISA first, ST01 ``835``, a closing SE with the right segment
count and control number, BPR and TRN present, well-formed amounts) and raises
:class:`X12Error` with the segment number (1-based, counted from the start of the text).
A date that is not a valid CCYYMMDD is read as None and described in
``Remittance.warnings``.
Whether the money adds up is reported, not raised, by :func:`balance_problems`.

Amounts are :class:`decimal.Decimal`. Segments the reader does not need (N3/N4, PER, LX,
TS3/TS2, AMT, QTY, ...) are skipped.

Some payers write procedure composites with ``>`` although ISA16 names another component
separator (four of the published 005010X221A1 examples do so); for SVC01 and SVC06 only, a
value that does not contain the ISA16 separator but does contain ``>`` is split on ``>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from hpms.interop.x12.segments import X12Error, _Segment, _transaction_sets

__all__ = [
    "Adjustment",
    "ClaimPayment",
    "NamedEntity",
    "Procedure",
    "ProviderAdjustment",
    "Remittance",
    "ServicePayment",
    "X12Error",
    "balance_problems",
    "parse_835",
]

VERSION = "005010X221A1"
ZERO = Decimal("0")


# --------------------------------------------------------------------------- result data


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One reason/amount/quantity triple of a CAS segment.

    ``group``: CO contractual, PR patient responsibility, OA other, PI payer initiated,
    CR correction/reversal. ``reason`` is the claim adjustment reason code (CARC). A positive
    amount reduces the payment.
    """

    group: str
    reason: str
    amount: Decimal
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class NamedEntity:
    """An NM1 segment: ``name`` is the last or organisation name; ``id_qualifier`` e.g.
    "MI" member id, "XX" NPI, "FI" tax id."""

    entity_code: str
    name: str
    first: str | None = None
    middle: str | None = None
    id_qualifier: str | None = None
    id: str | None = None

    @property
    def npi(self) -> str | None:
        return self.id if self.id_qualifier == "XX" else None


@dataclass(frozen=True, slots=True)
class Procedure:
    """A procedure composite (SVC01 or SVC06): qualifier "HC" (CPT/HCPCS), "NU" (revenue
    code), "AD", "N4", ...; up to four modifiers."""

    qualifier: str
    code: str
    modifiers: tuple[str, ...] = ()
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ServicePayment:
    """Loop 2110: one service line of a claim payment."""

    procedure: Procedure
    charge_amount: Decimal  # SVC02
    paid_amount: Decimal  # SVC03
    revenue_code: str | None = None  # SVC04
    units: Decimal = Decimal("1")  # SVC05, 1 when absent
    original_procedure: Procedure | None = None  # SVC06, when the payer changed the code
    original_units: Decimal | None = None  # SVC07
    service_date_from: date | None = None  # DTM*472 or DTM*150
    service_date_to: date | None = None  # DTM*472 or DTM*151
    line_item_control_number: str | None = None  # REF*6R
    adjustments: tuple[Adjustment, ...] = ()
    refs: dict[str, str] = field(default_factory=dict)
    remark_codes: tuple[str, ...] = ()  # LQ*HE


@dataclass(frozen=True, slots=True)
class ClaimPayment:
    """Loop 2100: the payer's decision on one claim (CLP and what follows it)."""

    patient_control_number: str  # CLP01
    status_code: str  # CLP02: 1 primary, 2 secondary, 4 denied, 22 reversal, ...
    charge_amount: Decimal  # CLP03
    paid_amount: Decimal  # CLP04
    patient_responsibility: Decimal = ZERO  # CLP05, 0 when absent
    filing_indicator: str | None = None  # CLP06
    payer_claim_control_number: str | None = None  # CLP07
    facility_code: str | None = None  # CLP08
    frequency_code: str | None = None  # CLP09
    patient: NamedEntity | None = None  # NM1*QC
    corrected_insured: NamedEntity | None = None  # NM1*74
    rendering_provider: NamedEntity | None = None  # NM1*82
    adjustments: tuple[Adjustment, ...] = ()  # claim-level CAS
    service_date_from: date | None = None  # DTM*232
    service_date_to: date | None = None  # DTM*233
    received_date: date | None = None  # DTM*050
    refs: dict[str, str] = field(default_factory=dict)
    remark_codes: tuple[str, ...] = ()  # MOA / MIA remark codes
    lines: tuple[ServicePayment, ...] = ()

    @property
    def is_reversal(self) -> bool:
        return self.status_code == "22"

    @property
    def patient_member_id(self) -> str | None:
        return self.patient.id if self.patient else None

    @property
    def rendering_npi(self) -> str | None:
        return self.rendering_provider.npi if self.rendering_provider else None

    def all_adjustments(self) -> tuple[Adjustment, ...]:
        """Claim-level adjustments followed by those of every line."""
        return self.adjustments + tuple(a for line in self.lines for a in line.adjustments)


@dataclass(frozen=True, slots=True)
class ProviderAdjustment:
    """One reason/amount pair of a PLB segment (a PLB with several pairs gives several).

    ``reason`` is the adjustment reason code (e.g. "WO" overpayment recovery, "L6" interest,
    "CV" capital pass-through); ``reference`` is the identifier after it in the composite.
    A positive amount reduces the payment, a negative one increases it.
    """

    provider_id: str
    fiscal_period_date: date | None
    reason: str
    reference: str | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Remittance:
    """One 835 transaction set (ST/SE): one payment or advice from one payer to one payee."""

    isa_control: str
    gs_control: str
    st_control: str
    handling_code: str  # BPR01: I remittance+payment, H advice only, ...
    payment_amount: Decimal  # BPR02
    credit_debit: str  # BPR03: C or D
    payment_method: str | None  # BPR04: ACH, CHK, FWT, BOP, NON
    payment_date: date | None  # BPR16
    trace_number: str  # TRN02: check or EFT trace number
    trace_originator: str | None  # TRN03
    payer_name: str = ""  # N1*PR
    payer_id: str | None = None  # REF*2U, else N1*PR N104
    payee_name: str = ""  # N1*PE
    payee_npi: str | None = None  # N1*PE ... XX
    payee_tin: str | None = None  # N1*PE ... FI, or REF*TJ
    production_date: date | None = None  # DTM*405
    claims: tuple[ClaimPayment, ...] = ()
    provider_adjustments: tuple[ProviderAdjustment, ...] = ()
    warnings: tuple[str, ...] = ()  # readable oddities, e.g. an impossible date


# --------------------------------------------------------------------------- balancing


def balance_problems(r: Remittance) -> list[str]:
    """Return a description of every place where the remittance does not add up.

    - BPR02 must equal the sum of CLP04 minus the sum of the PLB amounts;
    - for each claim, CLP03 - CLP04 must equal the sum of all CAS amounts at claim and
      line level.
    An empty list means the remittance balances.
    """
    problems: list[str] = []
    paid = sum((c.paid_amount for c in r.claims), ZERO)
    plb = sum((p.amount for p in r.provider_adjustments), ZERO)
    expected = paid - plb
    if r.payment_amount != expected:
        problems.append(
            f"ST {r.st_control}: BPR02 payment {r.payment_amount} != claims paid {paid} "
            f"- provider adjustments {plb} = {expected}"
        )
    for n, c in enumerate(r.claims, 1):
        difference = c.charge_amount - c.paid_amount
        adjusted = sum((a.amount for a in c.all_adjustments()), ZERO)
        if difference != adjusted:
            problems.append(
                f"ST {r.st_control} claim {n} ({c.patient_control_number}): charge {c.charge_amount} "
                f"- paid {c.paid_amount} = {difference} but adjustments total {adjusted}"
            )
    return problems


# --------------------------------------------------------------------------- parsing


class _LineBuilder:
    def __init__(self, seg: _Segment):
        comp = seg.components(1, fallback=">")
        self.procedure = _procedure(comp, seg, 1)
        self.charge = seg.amount(2)
        self.paid = seg.amount(3)
        self.revenue_code = seg.opt(4)
        self.units = seg.amount(5, required=False) or Decimal("1")
        self.original = _procedure(seg.components(6, fallback=">"), seg, 6) if seg.get(6) else None
        self.original_units = seg.amount(7, required=False)
        self.date_from: date | None = None
        self.date_to: date | None = None
        self.adjustments: list[Adjustment] = []
        self.refs: dict[str, str] = {}
        self.remarks: list[str] = []

    def build(self) -> ServicePayment:
        return ServicePayment(
            procedure=self.procedure,
            charge_amount=self.charge,
            paid_amount=self.paid,
            revenue_code=self.revenue_code,
            units=self.units,
            original_procedure=self.original,
            original_units=self.original_units,
            service_date_from=self.date_from,
            service_date_to=self.date_to,
            line_item_control_number=self.refs.get("6R"),
            adjustments=tuple(self.adjustments),
            refs=dict(self.refs),
            remark_codes=tuple(self.remarks),
        )


class _ClaimBuilder:
    def __init__(self, seg: _Segment):
        if not seg.get(1):
            raise seg.error("CLP01 (patient control number) is missing")
        if not seg.get(2):
            raise seg.error("CLP02 (claim status) is missing")
        self.kwargs: dict = dict(
            patient_control_number=seg.get(1),
            status_code=seg.get(2),
            charge_amount=seg.amount(3),
            paid_amount=seg.amount(4),
            patient_responsibility=seg.amount(5, required=False) or ZERO,
            filing_indicator=seg.opt(6),
            payer_claim_control_number=seg.opt(7),
            facility_code=seg.opt(8),
            frequency_code=seg.opt(9),
        )
        self.adjustments: list[Adjustment] = []
        self.refs: dict[str, str] = {}
        self.remarks: list[str] = []
        self.lines: list[ServicePayment] = []

    def build(self) -> ClaimPayment:
        return ClaimPayment(
            **self.kwargs,
            adjustments=tuple(self.adjustments),
            refs=dict(self.refs),
            remark_codes=tuple(self.remarks),
            lines=tuple(self.lines),
        )


def _procedure(comp: list[str], seg: _Segment, i: int) -> Procedure:
    comp = [c.strip() for c in comp]
    if not comp[0]:
        raise seg.error(f"element {i:02d} has no product/service id qualifier")
    return Procedure(
        qualifier=comp[0],
        code=comp[1] if len(comp) > 1 else "",
        modifiers=tuple(m for m in comp[2:6] if m),
        description=comp[6] if len(comp) > 6 and comp[6] else None,
    )


def _cas(seg: _Segment) -> list[Adjustment]:
    group = seg.get(1)
    if not group:
        raise seg.error("CAS01 (adjustment group) is missing")
    result = []
    for i in range(2, 20, 3):
        reason = seg.get(i)
        if not reason:
            if seg.get(i + 1):
                raise seg.error(f"element {i + 1:02d} has an amount without a reason code")
            continue
        result.append(
            Adjustment(group=group, reason=reason, amount=seg.amount(i + 1), quantity=seg.amount(i + 2, required=False))
        )
    if not result:
        raise seg.error("CAS segment has no adjustment")
    return result


def _nm1(seg: _Segment) -> NamedEntity:
    return NamedEntity(
        entity_code=seg.get(1),
        name=seg.get(3),
        first=seg.opt(4),
        middle=seg.opt(5),
        id_qualifier=seg.opt(8),
        id=seg.opt(9),
    )


class _TransactionParser:
    def __init__(self, st: _Segment, isa_control: str, gs_control: str):
        self.st = st
        self.isa_control = isa_control
        self.gs_control = gs_control
        self.count = 1
        self.header: dict = {}
        self.context = "header"  # header, payer, payee, claim, line
        self.claims: list[ClaimPayment] = []
        self.claim: _ClaimBuilder | None = None
        self.line: _LineBuilder | None = None
        self.plb: list[ProviderAdjustment] = []
        self.payer_ref_id: str | None = None
        self.payer_n1_id: str | None = None
        self.warnings: list[str] = []

    def _date(self, seg: _Segment, i: int) -> date | None:
        # An impossible date is kept as None and reported, not raised: the payment itself
        # is still readable (one published 005010X221A1 example has BPR16 = 20002316).
        try:
            return seg.date(i)
        except X12Error as exc:
            self.warnings.append(str(exc))
            return None

    def _close_line(self) -> None:
        if self.line is not None:
            assert self.claim is not None
            self.claim.lines.append(self.line.build())
            self.line = None

    def _close_claim(self) -> None:
        self._close_line()
        if self.claim is not None:
            self.claims.append(self.claim.build())
            self.claim = None

    def feed(self, seg: _Segment) -> None:
        self.count += 1
        sid = seg.id
        h = self.header
        if sid == "BPR":
            if "payment_amount" in h:
                raise seg.error("second BPR segment in one transaction set")
            if not seg.get(1):
                raise seg.error("BPR01 (transaction handling code) is missing")
            h.update(
                handling_code=seg.get(1),
                payment_amount=seg.amount(2),
                credit_debit=seg.get(3),
                payment_method=seg.opt(4),
                payment_date=self._date(seg, 16),
            )
        elif sid == "TRN" and self.context == "header":
            if not seg.get(2):
                raise seg.error("TRN02 (trace number) is missing")
            h.update(trace_number=seg.get(2), trace_originator=seg.opt(3))
        elif sid == "DTM" and self.context == "header":
            if seg.get(1) == "405":
                h["production_date"] = self._date(seg, 2)
        elif sid == "N1":
            self._close_claim()
            code = seg.get(1)
            if code == "PR":
                self.context = "payer"
                h["payer_name"] = seg.get(2)
                self.payer_n1_id = seg.opt(4)
            elif code == "PE":
                self.context = "payee"
                h["payee_name"] = seg.get(2)
                if seg.get(3) == "XX":
                    h["payee_npi"] = seg.opt(4)
                elif seg.get(3) == "FI":
                    h["payee_tin"] = seg.opt(4)
            else:
                self.context = "other"
        elif sid == "REF" and self.context in ("payer", "payee"):
            if self.context == "payer" and seg.get(1) == "2U":
                self.payer_ref_id = seg.opt(2)
            elif self.context == "payee" and seg.get(1) == "TJ" and "payee_tin" not in h:
                h["payee_tin"] = seg.opt(2)
        elif sid == "LX":
            self._close_claim()
            self.context = "lx"
        elif sid == "CLP":
            self._close_claim()
            self.claim = _ClaimBuilder(seg)
            self.context = "claim"
        elif sid == "SVC":
            if self.claim is None:
                raise seg.error("SVC segment outside a claim (no CLP before it)")
            self._close_line()
            self.line = _LineBuilder(seg)
            self.context = "line"
        elif sid == "PLB":
            self._close_claim()
            self.context = "summary"
            self._plb(seg)
        elif self.context == "claim" and self.claim is not None:
            self._claim_segment(seg, self.claim)
        elif self.context == "line" and self.line is not None:
            self._line_segment(seg, self.line)
        # anything else (N3, N4, PER, TS3, TS2, CUR, RDM, ...) is not needed

    def _claim_segment(self, seg: _Segment, claim: _ClaimBuilder) -> None:
        sid = seg.id
        if sid == "CAS":
            claim.adjustments.extend(_cas(seg))
        elif sid == "NM1":
            key = {"QC": "patient", "74": "corrected_insured", "82": "rendering_provider"}.get(seg.get(1))
            if key:
                claim.kwargs[key] = _nm1(seg)
        elif sid == "DTM":
            key = {"232": "service_date_from", "233": "service_date_to", "050": "received_date"}.get(seg.get(1))
            if key:
                claim.kwargs[key] = self._date(seg, 2)
        elif sid == "REF":
            if seg.get(1):
                claim.refs[seg.get(1)] = seg.get(2)
        elif sid == "MOA":
            claim.remarks.extend(c for c in (seg.get(i) for i in range(3, 8)) if c)
        elif sid == "MIA":
            claim.remarks.extend(c for c in (seg.get(i) for i in (5, 20, 21, 22, 23)) if c)

    def _line_segment(self, seg: _Segment, line: _LineBuilder) -> None:
        sid = seg.id
        if sid == "CAS":
            line.adjustments.extend(_cas(seg))
        elif sid == "DTM":
            qualifier = seg.get(1)
            if qualifier == "472":
                line.date_from = line.date_to = self._date(seg, 2)
            elif qualifier == "150":
                line.date_from = self._date(seg, 2)
            elif qualifier == "151":
                line.date_to = self._date(seg, 2)
        elif sid == "REF":
            if seg.get(1):
                line.refs[seg.get(1)] = seg.get(2)
        elif sid == "LQ" and seg.get(1) == "HE" and seg.get(2):
            line.remarks.append(seg.get(2))

    def _plb(self, seg: _Segment) -> None:
        provider = seg.get(1)
        if not provider:
            raise seg.error("PLB01 (provider identifier) is missing")
        fiscal = self._date(seg, 2)
        found = False
        for i in range(3, 15, 2):
            if not seg.get(i):
                if seg.get(i + 1):
                    raise seg.error(f"element {i + 1:02d} has an amount without a reason code")
                continue
            comp = seg.components(i)
            self.plb.append(
                ProviderAdjustment(
                    provider_id=provider,
                    fiscal_period_date=fiscal,
                    reason=comp[0].strip(),
                    reference=comp[1].strip() or None if len(comp) > 1 else None,
                    amount=seg.amount(i + 1),
                )
            )
            found = True
        if not found:
            raise seg.error("PLB segment has no adjustment")

    def finish(self, se: _Segment) -> Remittance:
        self.count += 1
        self._close_claim()
        if se.get(2) != self.st.get(2):
            raise se.error(f"SE02 control number {se.get(2)!r} does not match ST02 {self.st.get(2)!r}")
        try:
            declared = int(se.get(1))
        except ValueError:
            raise se.error(f"SE01 segment count is not a number: {se.get(1)!r}") from None
        if declared != self.count:
            raise se.error(f"SE01 says {declared} segments but the transaction set has {self.count}")
        h = self.header
        if "payment_amount" not in h:
            raise X12Error("transaction set has no BPR segment", self.st.number, "ST")
        if "trace_number" not in h:
            raise X12Error("transaction set has no TRN segment", self.st.number, "ST")
        h.setdefault("trace_originator", None)
        return Remittance(
            isa_control=self.isa_control,
            gs_control=self.gs_control,
            st_control=self.st.get(2),
            payer_id=self.payer_ref_id or self.payer_n1_id,
            claims=tuple(self.claims),
            provider_adjustments=tuple(self.plb),
            warnings=tuple(self.warnings),
            **h,
        )


def parse_835(text: str) -> list[Remittance]:
    """Parse the text of an 835 file into one :class:`Remittance` per transaction set.

    Raises :class:`X12Error` for malformed input.
    """
    return _transaction_sets(text, "835", lambda st, isa, gs: _TransactionParser(st, isa.get(13), gs))
