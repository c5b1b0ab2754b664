"""A streaming writer for the ASC X12 5010 837 Professional claim (005010X222A1).

The writer is a pure formatter: it takes plain frozen dataclasses (no database objects) and
writes one interchange (ISA/GS ... GE/IEA) for one payer to a text stream, one claim at a
time, so a billing run of any size needs memory for one claim only.

It checks structure only (what it needs to produce a well-formed file: fixed ISA widths,
escaping of delimiter characters, segment counts). Business rules -- NPI check digits,
ICD-10 codes, CLM02 equal to the sum of the lines, diagnosis pointers that exist, 9-digit
billing ZIP codes, REF*F8 on replacements, complete addresses, which payer files as what --
are the claim scrubber's job and are written through unchanged. The one exception: an address
(N3/N4) missing its street, city, state or ZIP is left out rather than written with empty
elements.

Output conventions:
- element separator ``*``, component ``:``, repetition ``^``, segment terminator ``~``
  followed by a newline (accepted by pyx12 and by clearinghouses that ignore line breaks);
- text is upper-cased, converted to ASCII, and the delimiter characters ``* : ~ ^`` are
  removed; control characters become spaces;
- code values (place of service, frequency, sex, relationship and responsibility codes)
  are written as given;
- amounts are integer cents written as decimal dollars with trailing zeros suppressed,
  as the X12 syntax recommends: 10000 -> ``100``, 10050 -> ``100.5``, 12345 -> ``123.45``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TextIO

__all__ = [
    "Adjustment",
    "BillingProvider",
    "Claim",
    "FileSummary",
    "Line",
    "LineAdjudication",
    "OtherPayer",
    "Party",
    "Patient",
    "Payer",
    "Receiver",
    "RenderingProvider",
    "Submitter",
    "Subscriber",
    "format_amount",
    "write_837p",
]

VERSION = "005010X222A1"

# SBR09 claim filing indicator codes (5010 code list 1032)
CLAIM_FILING_CODES = (
    "11",
    "12",
    "13",
    "14",
    "15",
    "16",
    "17",
    "AM",
    "BL",
    "CH",
    "CI",
    "DS",
    "FI",
    "HM",
    "LM",
    "MA",
    "MB",
    "MC",
    "OF",
    "TV",
    "VA",
    "WC",
    "ZZ",
)
MEDICARE_FILING = ("MA", "MB")  # Medicare Part A, Part B
# SBR05 insurance type codes of Medicare as a secondary payer (code list 1336, as the 837P allows)
MEDICARE_SECONDARY_TYPES = ("12", "13", "14", "15", "16", "41", "42", "43", "47")


# --------------------------------------------------------------------------- input data


@dataclass(frozen=True, slots=True)
class Party:
    """A generic named entity with an identifier and an optional address.

    Used for the service facility location (2310C, NM1*77). ``name`` is the organisation
    name or, with ``first``, a person's last name. ``id_qualifier``: "XX" NPI, "46" ETIN,
    "PI" payer id, "MI" member id.
    """

    name: str
    first: str | None = None
    id: str | None = None
    id_qualifier: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None


@dataclass(frozen=True, slots=True)
class Submitter:
    """Loop 1000A. ``id`` is the submitter's ETIN (NM1*41 ... 46). The interchange sender
    (ISA06/GS02) defaults to the same id."""

    name: str
    id: str
    contact_name: str
    contact_phone: str
    isa_qualifier: str = "ZZ"
    isa_id: str | None = None


@dataclass(frozen=True, slots=True)
class Receiver:
    """Loop 1000B. ``id`` goes to NM1*40 ... 46 and, by default, to ISA08/GS03."""

    name: str
    id: str
    isa_qualifier: str = "ZZ"
    isa_id: str | None = None


@dataclass(frozen=True, slots=True)
class BillingProvider:
    """Loop 2000A/2010AA. ``tax_id`` is the 9-digit EIN (REF*EI); ``zip`` should be 9 digits.
    With ``first`` the billing provider is a person (NM102=1), else an organisation."""

    name: str
    npi: str
    tax_id: str
    address1: str
    city: str
    state: str
    zip: str
    address2: str | None = None
    taxonomy: str | None = None
    first: str | None = None


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Loop 2000B/2010BA. ``relationship`` is the subscriber's relationship to the patient
    ("18" self); when the claim carries a separate :class:`Patient` the SBR02 is left empty.
    ``payer_responsibility``: "P" primary, "S" secondary, "T" tertiary. ``insurance_type`` is
    SBR05, the Medicare secondary type ("12" working aged, "43" disability, ...) when the payer
    is Medicare and is not primary. The address (N3/N4) is written only when street, city,
    state and ZIP are all given."""

    last: str
    first: str | None
    member_id: str
    dob: date | None = None
    sex: str = "U"
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    relationship: str = "18"
    group_number: str | None = None
    payer_responsibility: str = "P"
    insurance_type: str | None = None


@dataclass(frozen=True, slots=True)
class Patient:
    """Loop 2000C/2010CA, for a patient who is not the subscriber. ``relationship`` is the
    patient's relationship to the subscriber: "01" spouse, "19" child, "G8" other."""

    last: str
    first: str | None
    dob: date
    sex: str
    address1: str
    city: str
    state: str
    zip: str
    relationship: str = "19"
    address2: str | None = None


@dataclass(frozen=True, slots=True)
class Payer:
    """Loop 2010BB. ``claim_filing`` is SBR09 ("CI" commercial, "MB" Medicare Part B,
    "MC" Medicaid, "BL" Blue Cross/Blue Shield, ...)."""

    name: str
    payer_id: str
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    claim_filing: str = "CI"


@dataclass(frozen=True, slots=True)
class RenderingProvider:
    """Loop 2310B (NM1*82), when the rendering provider differs from the billing provider."""

    last: str
    first: str | None
    npi: str
    taxonomy: str | None = None


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One CAS adjustment of a prior payer: group ("CO", "PR", "OA", "PI", "CR"), reason (CARC)
    and amount in integer cents."""

    group: str
    reason: str
    amount_cents: int


@dataclass(frozen=True, slots=True)
class LineAdjudication:
    """Loop 2430: how the prior payer (the claim's :class:`OtherPayer`) paid one service line.
    ``code``/``modifiers`` are the procedure as adjudicated; ``date`` the adjudication (remittance)
    date (DTP*573)."""

    paid_cents: int
    code: str
    date: date
    modifiers: tuple[str, ...] = ()
    units: int = 1
    adjustments: tuple[Adjustment, ...] = ()


@dataclass(frozen=True, slots=True)
class OtherPayer:
    """Loops 2320/2330A/2330B: another payer of the claim with its subscriber -- on a secondary
    claim the primary payer, which adjudicated it; on a primary claim the patient's secondary
    payer, which has not yet. ``relationship`` is SBR02, the patient's relationship to that
    subscriber ("18" self, "01" spouse, "19" child, "G8" other); ``responsibility`` its SBR01
    ("P" primary, "S" secondary); ``claim_filing`` its SBR09; ``insurance_type`` its SBR05 (the
    Medicare secondary type when that payer is Medicare and not primary).

    ``paid_cents`` is AMT*D, what that payer paid: None when it has not adjudicated the claim,
    and then no CAS, AMT or 2430 is written for it. ``adjustments`` are the claim-level CAS and
    ``remaining_patient_cents`` AMT*EAF, when given."""

    payer_name: str
    payer_id: str
    subscriber_last: str
    subscriber_first: str | None
    member_id: str
    relationship: str = "18"
    group_number: str | None = None
    responsibility: str = "P"
    claim_filing: str = "CI"
    paid_cents: int | None = None
    remaining_patient_cents: int | None = None
    adjustments: tuple[Adjustment, ...] = ()
    insurance_type: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """Loop 2400. ``charge_cents`` is the line charge in integer cents; ``pointers`` are
    1-based indexes into the claim's diagnoses (up to 4); ``service_date`` defaults to the
    claim's; ``place_of_service`` (SV105) only when it differs from the claim's."""

    code: str
    charge_cents: int
    units: int = 1
    pointers: tuple[int, ...] = (1,)
    modifiers: tuple[str, ...] = ()
    service_date: date | None = None
    place_of_service: str | None = None
    adjudication: LineAdjudication | None = None  # 2430, with the claim's other payer


@dataclass(frozen=True, slots=True)
class Claim:
    """Loop 2300 with its subscriber (2000B), optional dependent patient (2000C) and lines.

    ``frequency``: "1" original, "7" replacement, "8" void (REF*F8 with
    ``payer_claim_number``). ``diagnoses``: ICD-10-CM codes without the dot, up to 12; the
    first is the principal (ABK), the rest ABF. ``other_payer``: the claim's other payer
    (2320/2330A/2330B): on a secondary claim the prior payer's adjudication (and 2430 on the
    lines that carry one), the subscriber's ``payer_responsibility`` then being "S"; on a
    primary claim the secondary payer still to come.
    """

    control_number: str
    total_cents: int
    subscriber: Subscriber
    lines: tuple[Line, ...]
    diagnoses: tuple[str, ...]
    place_of_service: str = "11"
    frequency: str = "1"
    payer_claim_number: str | None = None
    service_date: date | None = None
    patient: Patient | None = None
    rendering: RenderingProvider | None = None
    facility: Party | None = None
    other_payer: OtherPayer | None = None


@dataclass(frozen=True, slots=True)
class FileSummary:
    claims: int
    segments: int  # every segment in the file, ISA to IEA
    total_cents: int
    transactions: int = 1


# --------------------------------------------------------------------------- formatting

# One pass: control characters -> space, delimiters dropped, a-z -> A-Z.
_TABLE: dict[int, int | None] = {c: 0x20 for c in range(32)}
_TABLE.update({ord(c): None for c in "*:~^\x7f"})
_TABLE.update({c: c - 32 for c in range(ord("a"), ord("z") + 1)})


# Letters that NFKD does not decompose into an ASCII base letter.
_LATIN = str.maketrans(
    {
        "Ł": "L",
        "ł": "l",
        "Ø": "O",
        "ø": "o",
        "Đ": "D",
        "đ": "d",
        "Ħ": "H",
        "ħ": "h",
        "ß": "ss",
        "Æ": "AE",
        "æ": "ae",
        "Œ": "OE",
        "œ": "oe",
        "Þ": "TH",
        "þ": "th",
        "ı": "i",
        "\u2019": "'",
        "\u2018": "'",
        "\u2013": "-",
        "\u2014": "-",
    }
)


def _t(value: object) -> str:
    """Text element: ASCII, upper case, no delimiters, single spaces, trimmed."""
    s = value if type(value) is str else str(value)
    if not s.isascii():
        s = unicodedata.normalize("NFKD", s.translate(_LATIN)).encode("ascii", "ignore").decode("ascii")
    s = s.translate(_TABLE).strip()
    if "  " in s:
        s = " ".join(s.split())
    return s


_MEMO: dict[object, str] = {}


def _m(value: object) -> str:
    """:func:`_t` memoised, for values that repeat across claims (codes, cities, ZIPs)."""
    r = _MEMO.get(value)
    if r is None:
        r = "" if value is None else _t(value)
        if len(_MEMO) < 100_000:
            _MEMO[value] = r
    return r


def _o(value: object) -> str:
    """Optional text element: '' for None."""
    return "" if value is None else _t(value)


def format_amount(cents: int) -> str:
    """Integer cents as an X12 decimal (R) with trailing zeros suppressed."""
    if cents < 0:
        return "-" + format_amount(-cents)
    d, c = divmod(cents, 100)
    if not c:
        return str(d)
    if c % 10:
        return f"{d}.{c:02d}"
    return f"{d}.{c // 10}"


_d8_cache: dict[date, str] = {}


def _d8(d: date) -> str:
    s = _d8_cache.get(d)
    if s is None:
        s = f"{d.year:04d}{d.month:02d}{d.day:02d}"
        if len(_d8_cache) < 50_000:
            _d8_cache[d] = s
    return s


def _address(a1: str | None, a2: str | None, city: str | None, state: str | None, zip_: str | None) -> list[str]:
    """N3 and N4, or nothing when the street, city, state or ZIP is empty once formatted: an
    empty required element is worse for a receiver than a missing optional segment (the
    scrubber keeps claims with incomplete addresses off the file)."""
    street, c, st, z = _o(a1), _m(city), _m(state), _m(zip_)
    if not (street and c and st and z):
        return []
    second = _o(a2)
    return [f"N3*{street}*{second}" if second else f"N3*{street}", f"N4*{c}*{st}*{z}"]


def _cas(adjustments: Iterable[Adjustment]) -> list[str]:
    """CAS segments: one per group, at most six reason/amount pairs each (in the order given)."""
    groups: dict[str, list[Adjustment]] = {}
    for a in adjustments:
        if a.amount_cents:
            groups.setdefault(a.group, []).append(a)
    out = []
    for group, items in groups.items():
        for i in range(0, len(items), 6):
            out.append(
                f"CAS*{_t(group)}*"
                + "**".join(f"{_t(a.reason)}*{format_amount(a.amount_cents)}" for a in items[i : i + 6])
            )
    return out


def _nm1(
    code: str, last: str, first: str | None, qual: str | None, ident: str | None, person: bool | None = None
) -> str:
    kind = "1" if (first if person is None else person) else "2"
    seg = f"NM1*{code}*{kind}*{_t(last)}*{_o(first)}"
    if ident:
        return f"{seg}****{_o(qual)}*{_t(ident)}"
    return seg.rstrip("*")


# --------------------------------------------------------------------------- writer


def write_837p(
    out: TextIO,
    *,
    isa_control: int,
    gs_control: int,
    submitter: Submitter,
    receiver: Receiver,
    billing_provider: BillingProvider,
    payer: Payer,
    claims: Iterable[Claim],
    created: datetime,
    production: bool,
    max_claims_per_st: int | None = None,
    reference: str | None = None,
) -> FileSummary:
    """Write one interchange with one functional group (GS*HC) of 837P claims for one payer.

    Claims are consumed lazily and written as they arrive. By default all claims go into a
    single transaction set (ST/SE); ``max_claims_per_st`` starts a new one (ST02 0001,
    0002, ...) after that many claims, for receivers that limit the size of a set.
    An empty ``claims`` still writes a well-formed envelope with one (claim-less) set.
    BHT03 is ``reference`` (default: the GS control number) followed by the 4-digit ST02.
    """
    if not 0 < isa_control <= 999_999_999:
        raise ValueError("isa_control must be 1..999999999 (ISA13 is 9 digits)")
    if not 0 < gs_control <= 999_999_999:
        raise ValueError("gs_control must be 1..999999999 (GS06 is at most 9 digits)")

    isa_sender = _t(submitter.isa_id or submitter.id)[:15]
    isa_receiver = _t(receiver.isa_id or receiver.id)[:15]
    yymmdd = created.strftime("%y%m%d")
    ccyymmdd = created.strftime("%Y%m%d")
    hhmm = created.strftime("%H%M")
    bht_ref = _t(reference) if reference else str(gs_control)
    out.write(
        f"ISA*00*{'':10}*00*{'':10}*{_t(submitter.isa_qualifier)[:2]:2}*{isa_sender:15}"
        f"*{_t(receiver.isa_qualifier)[:2]:2}*{isa_receiver:15}*{yymmdd}*{hhmm}*^*00501"
        f"*{isa_control:09d}*0*{'P' if production else 'T'}*:~\n"
        f"GS*HC*{isa_sender}*{isa_receiver}*{ccyymmdd}*{hhmm}*{gs_control}*X*{VERSION}~\n"
    )

    # Everything that is the same for every transaction set / every claim, formatted once.
    bp = billing_provider
    header_tail = [
        _nm1("41", submitter.name, None, "46", submitter.id, person=False),
        f"PER*IC*{_t(submitter.contact_name)}*TE*{_t(submitter.contact_phone)}",
        _nm1("40", receiver.name, None, "46", receiver.id, person=False),
        "HL*1**20*1",
    ]
    if bp.taxonomy:
        header_tail.append(f"PRV*BI*PXC*{_t(bp.taxonomy)}")
    header_tail += [
        _nm1("85", bp.name, bp.first, "XX", bp.npi),
        *_address(bp.address1, bp.address2, bp.city, bp.state, bp.zip),
        f"REF*EI*{_t(bp.tax_id)}",
    ]
    header_tail_text = "~\n".join(header_tail) + "~\n"
    header_count = len(header_tail) + 2  # + ST and BHT
    payer_text = "~\n".join(
        [
            _nm1("PR", payer.name, None, "PI", payer.payer_id, person=False),
            *_address(payer.address1, payer.address2, payer.city, payer.state, payer.zip),
        ]
    )
    payer_count = payer_text.count("~") + 1
    filing = _t(payer.claim_filing)

    # Segments that repeat across claims, formatted once: a rendering provider's NM1*82/PRV, a
    # service line's SV1/DTP (claims share codes, charges and dates of service)
    renderings: dict[RenderingProvider, list[str]] = {}
    services: dict[tuple[Line, date | None], list[str]] = {}

    write = out.write
    st_no = 0
    st_segments = 0  # segments of the open set so far (from ST), 0 = no set open
    st_claims = 0
    hl = 1
    n_claims = 0
    total = 0
    file_segments = 2  # ISA + GS

    def open_st() -> None:
        nonlocal st_no, st_segments, st_claims, hl
        st_no += 1
        write(
            f"ST*837*{st_no:04d}*{VERSION}~\nBHT*0019*00*{bht_ref}{st_no:04d}*{ccyymmdd}*{hhmm}*CH~\n"
            + header_tail_text
        )
        st_segments = header_count
        st_claims = 0
        hl = 1

    def close_st() -> None:
        nonlocal st_segments, file_segments
        write(f"SE*{st_segments + 1}*{st_no:04d}~\n")
        file_segments += st_segments + 1
        st_segments = 0

    for claim in claims:
        if not st_segments:
            open_st()
        elif max_claims_per_st and st_claims >= max_claims_per_st:
            close_st()
            open_st()

        sub = claim.subscriber
        pat = claim.patient
        segs: list[str] = []
        add = segs.append
        # 2000B / 2010BA / 2010BB
        hl += 1
        sub_hl = hl
        add(f"HL*{sub_hl}*1*22*{'1' if pat else '0'}")
        add(
            f"SBR*{sub.payer_responsibility}*{'' if pat else sub.relationship}"
            f"*{_o(sub.group_number)}**{_o(sub.insurance_type)}****{filing}"
        )
        add(_nm1("IL", sub.last, sub.first, "MI", sub.member_id, person=True))
        if sub.address1:
            segs.extend(_address(sub.address1, sub.address2, sub.city, sub.state, sub.zip))
        if sub.dob is not None:
            add(f"DMG*D8*{_d8(sub.dob)}*{sub.sex}")
        add(payer_text)
        # 2000C / 2010CA
        if pat is not None:
            hl += 1
            add(f"HL*{hl}*{sub_hl}*23*0")
            add(f"PAT*{pat.relationship}")
            add(_nm1("QC", pat.last, pat.first, None, None, person=True))
            segs.extend(_address(pat.address1, pat.address2, pat.city, pat.state, pat.zip))
            add(f"DMG*D8*{_d8(pat.dob)}*{pat.sex}")
        # 2300
        pos = claim.place_of_service
        add(f"CLM*{_t(claim.control_number)}*{format_amount(claim.total_cents)}***{pos}:B:{claim.frequency}*Y*A*Y*Y")
        if claim.payer_claim_number and claim.frequency in ("7", "8"):
            add(f"REF*F8*{_t(claim.payer_claim_number)}")
        dx = claim.diagnoses
        if dx:
            add("HI*ABK:" + _m(dx[0]) + "".join(["*ABF:" + _m(c) for c in dx[1:]]))
        # 2310B / 2310C
        rp = claim.rendering
        if rp is not None:
            rendering = renderings.get(rp)
            if rendering is None:
                rendering = renderings[rp] = [_nm1("82", rp.last, rp.first, "XX", rp.npi, person=rp.first is not None)]
                if rp.taxonomy:
                    rendering.append(f"PRV*PE*PXC*{_m(rp.taxonomy)}")
            segs.extend(rendering)
        fac = claim.facility
        if fac is not None:
            add(_nm1("77", fac.name, None, fac.id_qualifier, fac.id, person=False))
            segs.extend(_address(fac.address1, fac.address2, fac.city, fac.state, fac.zip))
        # 2320 / 2330A / 2330B
        op = claim.other_payer
        adjudicated_by = op if op is not None and op.paid_cents is not None else None
        if op is not None:
            add(
                f"SBR*{op.responsibility}*{op.relationship}*{_o(op.group_number)}**{_o(op.insurance_type)}"
                f"****{_t(op.claim_filing)}"
            )
            if op.paid_cents is not None:
                segs.extend(_cas(op.adjustments))
                add(f"AMT*D*{format_amount(op.paid_cents)}")
                if op.remaining_patient_cents is not None:
                    add(f"AMT*EAF*{format_amount(op.remaining_patient_cents)}")
            add("OI***Y***Y")
            add(_nm1("IL", op.subscriber_last, op.subscriber_first, "MI", op.member_id, person=True))
            add(_nm1("PR", op.payer_name, None, "PI", op.payer_id, person=False))
        # 2400
        default_date = claim.service_date
        for n, line in enumerate(claim.lines, 1):
            add(f"LX*{n}")
            d = line.service_date or default_date
            service = services.get((line, d))
            if service is None:
                proc = _m(line.code)
                if line.modifiers:
                    proc += ":" + ":".join([_m(m) for m in line.modifiers])
                service = [
                    f"SV1*HC:{proc}*{format_amount(line.charge_cents)}*UN*{line.units}"
                    f"*{line.place_of_service or ''}**{':'.join(map(str, line.pointers))}".rstrip("*")
                ]
                if d is not None:
                    service.append(f"DTP*472*D8*{_d8(d)}")
                if len(services) >= 20_000:
                    services.clear()
                services[(line, d)] = service
            segs.extend(service)
            adj = line.adjudication
            if adj is not None and adjudicated_by is not None:  # 2430
                svd = _m(adj.code)
                if adj.modifiers:
                    svd += ":" + ":".join([_m(m) for m in adj.modifiers])
                add(f"SVD*{_t(adjudicated_by.payer_id)}*{format_amount(adj.paid_cents)}*HC:{svd}**{adj.units}")
                segs.extend(_cas(adj.adjustments))
                add(f"DTP*573*D8*{_d8(adj.date)}")

        text = "~\n".join(segs)
        # payer_text may hold several segments; everything else is one segment per entry
        st_segments += len(segs) + payer_count - 1
        write(text + "~\n")
        st_claims += 1
        n_claims += 1
        total += claim.total_cents

    if not st_segments:
        open_st()
    close_st()
    write(f"GE*{st_no}*{gs_control}~\nIEA*1*{isa_control:09d}~\n")
    file_segments += 2
    return FileSummary(claims=n_claims, segments=file_segments, total_cents=total, transactions=st_no)
