"""Claim edits (the scrubber): versioned rules with stable ids, run on a claim before it is
billed. Each finding names the rule, a severity, the field and what to fix; an error keeps the
encounter off the claim file and puts it on the work list.

The rules read a plain `ClaimDraft` (built in bulk by the billing run, or for the encounters a
biller scrubs on request), so they are cheap enough for 100,000 encounters a night.

Some rules read only the claim's parties (`ClaimParties`: the billing location's and the
patient's addresses, how the payer files, the coverage's Medicare secondary type): the 837P
writer reads those when it writes the file, not when the claim is built, and a claim built
earlier (a secondary claim queued after an 835, a replacement, a void) was never scrubbed as
a secondary claim. The billing run checks such claims with `scrub_parties` just before it
writes them.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeGuard

from hpms.codes import icd10
from hpms.codes.npi import is_valid_npi
from hpms.codes.pos import PLACES_OF_SERVICE
from hpms.codes.procedures import check_modifier, check_procedure
from hpms.interop.x12.x837p import MEDICARE_FILING, MEDICARE_SECONDARY_TYPES

RULESET_VERSION = "2026.12"


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    severity: str  # error | warning
    field: str
    message: str


@dataclass(slots=True)
class DraftLine:
    seq: int
    code: str
    modifiers: tuple[str, ...]
    units: int
    pointers: tuple[int, ...]
    charge_cents: int | None  # None: no fee for this code on the payer's or the default schedule
    service_date: dt.date


# USPS codes: the states, DC, the territories and the armed forces "states"
USPS_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH "
    "OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR VI GU AS MP AA AE AP".split()
)
_ZIP = re.compile(r"\d{5}(?:[- ]?\d{4})?")
_BLANK = " \t\r\n\f\v*:~^"  # what the 837P writer trims or drops


@dataclass(slots=True, kw_only=True)
class ClaimParties:
    """What the party rules look at: the billing location's and the patient's (= the
    subscriber's, when self) address, the payer's claim filing indicator (SBR09), the payer's
    responsibility on this claim (SBR01: P, S, T) and the coverage's Medicare secondary type."""

    billing_zip: str | None = None
    billing_address1: str | None = None
    billing_city: str | None = None
    billing_state: str | None = None
    patient_address1: str | None = None
    patient_city: str | None = None
    patient_state: str | None = None
    patient_zip: str | None = None
    payer_filing: str = "CI"
    responsibility: str = "P"
    medicare_secondary_type: str | None = None


@dataclass(slots=True)
class ClaimDraft(ClaimParties):
    """Everything the rules look at for one encounter billed to one payer."""

    encounter_id: int
    service_date: dt.date
    place_of_service: str
    diagnoses: tuple[str, ...]
    lines: list[DraftLine]
    total_cents: int
    billing_npi: str | None
    tax_id: str | None
    rendering_npi: str | None
    payer_id: int | None
    payer_code: str | None
    subscriber_member_id: str | None
    subscriber_last: str | None
    subscriber_first: str | None
    subscriber_dob: dt.date | None
    today: dt.date
    extra: dict = field(default_factory=dict)


Rule = Callable[[ClaimDraft], Iterator[Finding]]
RULES: list[tuple[str, str, Rule]] = []
PARTY_RULES: list[tuple[str, str, Callable[[ClaimParties], Iterator[Finding]]]] = []


def rule(rule_id: str, description: str, *, parties: bool = False) -> Callable[[Rule], Rule]:
    """Register a rule; `parties`: it reads only the `ClaimParties` fields (and is run again on
    claims built earlier, before they are written)."""

    def register(fn: Rule) -> Rule:
        RULES.append((rule_id, description, fn))
        if parties:
            PARTY_RULES.append((rule_id, description, fn))
        return fn

    return register


def _filled(value: str | None) -> TypeGuard[str]:
    """Not empty once written: the 837P drops the delimiter characters and trims, so a value of
    only those (and spaces) is empty."""
    return value is not None and bool(value.strip(_BLANK))


@functools.lru_cache(maxsize=256)
def _state_ok(value: str | None) -> bool:
    return value is not None and value.strip().upper() in USPS_STATES


@functools.lru_cache(maxsize=65536)
def _zip_ok(value: str | None) -> bool:
    return value is not None and _ZIP.fullmatch(value.strip()) is not None


def _medicare_secondary(c: ClaimParties) -> bool:
    return c.payer_filing in MEDICARE_FILING and c.responsibility != "P"


@functools.lru_cache(maxsize=4096)
def _npi_ok(npi: str | None) -> bool:
    return bool(npi) and is_valid_npi(npi)


@functools.lru_cache(maxsize=1024)
def _zip9_ok(value: str | None) -> bool:
    return len("".join(ch for ch in (value or "") if ch.isdigit())) == 9


@functools.lru_cache(maxsize=65536)
def _icd(code: str):
    """(exists, billable, dotted) of a diagnosis as written: claims repeat a few hundred codes."""
    found = icd10.lookup(code.replace(".", ""))
    return (found is not None, bool(found and found.billable), found.dotted if found else code)


@functools.lru_cache(maxsize=16384)
def _proc_problem(code: str) -> str | None:
    try:
        check_procedure(code)
    except ValueError as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=4096)
def _modifier_problem(mod: str) -> str | None:
    try:
        check_modifier(mod)
    except ValueError as exc:
        return str(exc)
    return None


@rule("NPI-BILLING", "The billing provider (location) NPI is present and passes the Luhn check (prefix 80840).")
def _billing_npi(c: ClaimDraft) -> Iterator[Finding]:
    if not c.billing_npi:
        yield Finding("NPI-BILLING", "error", "location.npi", "the location has no group NPI")
    elif not _npi_ok(c.billing_npi):
        yield Finding("NPI-BILLING", "error", "location.npi", f"NPI {c.billing_npi} fails the check digit")


@rule("NPI-RENDERING", "The rendering provider NPI is present and passes the Luhn check.")
def _rendering_npi(c: ClaimDraft) -> Iterator[Finding]:
    if not c.rendering_npi:
        yield Finding("NPI-RENDERING", "error", "provider.npi", "the provider has no NPI")
    elif not _npi_ok(c.rendering_npi):
        yield Finding("NPI-RENDERING", "error", "provider.npi", f"NPI {c.rendering_npi} fails the check digit")


@rule("TAX-ID", "The practice's tax id (EIN, 9 digits) is set.")
def _tax_id(c: ClaimDraft) -> Iterator[Finding]:
    if not c.tax_id or len(c.tax_id) != 9 or not c.tax_id.isdigit():
        yield Finding("TAX-ID", "error", "billing.tax_id", "the practice has no 9-digit tax id")


@rule("ZIP-9", "The billing provider ZIP code has 9 digits.", parties=True)
def _zip9(c: ClaimParties) -> Iterator[Finding]:
    digits = "".join(ch for ch in (c.billing_zip or "") if ch.isdigit())
    if len(digits) != 9:
        yield Finding(
            "ZIP-9",
            "error",
            "location.postal_code",
            f"billing ZIP {c.billing_zip or '(none)'} must have 9 digits (ZIP+4)",
        )


@rule("ADDR-BILLING", "The billing location has a street, city and state (its ZIP: ZIP-9).", parties=True)
def _billing_address(c: ClaimParties) -> Iterator[Finding]:
    for value, name, what in (
        (c.billing_address1, "address_line1", "street address"),
        (c.billing_city, "city", "city"),
        (c.billing_state, "state", "state"),
    ):
        if not _filled(value):
            yield Finding("ADDR-BILLING", "error", f"location.{name}", f"the billing location has no {what}")


@rule("ADDR-PATIENT", "The patient has a street, city, state and ZIP code.", parties=True)
def _patient_address(c: ClaimParties) -> Iterator[Finding]:
    for value, name, what in (
        (c.patient_address1, "address_line1", "street address"),
        (c.patient_city, "city", "city"),
        (c.patient_state, "state", "state"),
        (c.patient_zip, "postal_code", "ZIP code"),
    ):
        if not _filled(value):
            yield Finding("ADDR-PATIENT", "error", f"patient.{name}", f"the patient has no {what}")


@rule("ADDR-STATE", "The billing location's and the patient's states are USPS codes.", parties=True)
def _states(c: ClaimParties) -> Iterator[Finding]:
    for value, where, who in (
        (c.billing_state, "location.state", "billing location"),
        (c.patient_state, "patient.state", "patient"),
    ):
        if _filled(value) and not _state_ok(value):
            yield Finding(
                "ADDR-STATE",
                "error",
                where,
                f"the {who}'s state {value.strip()!r} is not a USPS state code (two letters, e.g. NY)",
            )


@rule("ADDR-ZIP", "The patient's ZIP code has 5 or 9 digits.", parties=True)
def _patient_zip(c: ClaimParties) -> Iterator[Finding]:
    if _filled(c.patient_zip) and not _zip_ok(c.patient_zip):
        yield Finding(
            "ADDR-ZIP",
            "error",
            "patient.postal_code",
            f"the patient's ZIP {c.patient_zip.strip()!r} must have 5 or 9 digits (12345 or 12345-6789)",
        )


@rule("DX-PRESENT", "At least one diagnosis, at most 12.")
def _dx_count(c: ClaimDraft) -> Iterator[Finding]:
    if not c.diagnoses:
        yield Finding("DX-PRESENT", "error", "diagnoses", "no diagnosis")
    elif len(c.diagnoses) > 12:
        yield Finding("DX-PRESENT", "error", "diagnoses", f"{len(c.diagnoses)} diagnoses (at most 12 on a claim)")


@rule("DX-NODOT", "ICD-10-CM codes are written without the dot.")
def _dx_nodot(c: ClaimDraft) -> Iterator[Finding]:
    for i, code in enumerate(c.diagnoses, 1):
        if "." in code:
            yield Finding(
                "DX-NODOT", "error", f"diagnosis {i}", f"{code} has a dot; claims carry {code.replace('.', '')}"
            )


@rule("DX-EXISTS", "Every diagnosis is an ICD-10-CM code of the current release.")
def _dx_exists(c: ClaimDraft) -> Iterator[Finding]:
    for i, code in enumerate(c.diagnoses, 1):
        if not _icd(code)[0]:
            yield Finding("DX-EXISTS", "error", f"diagnosis {i}", f"{code} is not an ICD-10-CM code")


@rule("DX-BILLABLE", "Every diagnosis is billable (a leaf code, not a category).")
def _dx_billable(c: ClaimDraft) -> Iterator[Finding]:
    for i, code in enumerate(c.diagnoses, 1):
        exists, billable, dotted = _icd(code)
        if exists and not billable:
            yield Finding(
                "DX-BILLABLE",
                "error",
                f"diagnosis {i}",
                f"{dotted} is a category, not a billable code: use a more specific one",
            )


@rule("DX-POINTER", "Each line points at 1 to 4 existing diagnoses.")
def _pointers(c: ClaimDraft) -> Iterator[Finding]:
    n = len(c.diagnoses)
    for line in c.lines:
        if not line.pointers:
            yield Finding("DX-POINTER", "error", f"line {line.seq}", "no diagnosis pointer")
        elif len(line.pointers) > 4:
            yield Finding("DX-POINTER", "error", f"line {line.seq}", "more than 4 diagnosis pointers")
        for p in line.pointers:
            if not 1 <= p <= n:
                yield Finding("DX-POINTER", "error", f"line {line.seq}", f"pointer {p} names no diagnosis (1..{n})")


@rule("LINES-PRESENT", "At least one service line, at most 50.")
def _lines(c: ClaimDraft) -> Iterator[Finding]:
    if not c.lines:
        yield Finding("LINES-PRESENT", "error", "lines", "no service line")
    elif len(c.lines) > 50:
        yield Finding("LINES-PRESENT", "error", "lines", f"{len(c.lines)} lines (at most 50 on an 837P claim)")


@rule("PROC-VALID", "Procedure codes are well-formed CPT or HCPCS Level II codes.")
def _proc(c: ClaimDraft) -> Iterator[Finding]:
    for line in c.lines:
        problem = _proc_problem(line.code)
        if problem:
            yield Finding("PROC-VALID", "error", f"line {line.seq}", problem)


@rule("MODIFIER-VALID", "Modifiers are known, at most 4 per line.")
def _modifiers(c: ClaimDraft) -> Iterator[Finding]:
    for line in c.lines:
        if len(line.modifiers) > 4:
            yield Finding("MODIFIER-VALID", "error", f"line {line.seq}", "more than 4 modifiers")
        for m in line.modifiers:
            problem = _modifier_problem(m)
            if problem:
                yield Finding("MODIFIER-VALID", "error", f"line {line.seq}", problem)


@rule("UNITS-POSITIVE", "Units are greater than zero.")
def _units(c: ClaimDraft) -> Iterator[Finding]:
    for line in c.lines:
        if line.units <= 0:
            yield Finding("UNITS-POSITIVE", "error", f"line {line.seq}", f"units {line.units} (must be > 0)")


@rule("DOS-NOT-FUTURE", "Dates of service are not in the future.")
def _dos(c: ClaimDraft) -> Iterator[Finding]:
    dates = {c.service_date, *(line.service_date for line in c.lines)}
    for d in sorted(dates):
        if d > c.today:
            yield Finding("DOS-NOT-FUTURE", "error", "service_date", f"date of service {d} is in the future")


@rule("LINE-DUPLICATE", "No two lines with the same code, modifiers and date.")
def _duplicates(c: ClaimDraft) -> Iterator[Finding]:
    seen: dict[tuple, int] = {}
    for line in c.lines:
        key = (line.code, line.modifiers, line.service_date)
        if key in seen:
            yield Finding(
                "LINE-DUPLICATE",
                "error",
                f"line {line.seq}",
                f"same code, modifiers and date as line {seen[key]} (add units or a modifier such as 76 or 91)",
            )
        else:
            seen[key] = line.seq


@rule("POS-VALID", "The place of service is a CMS place-of-service code.")
def _pos(c: ClaimDraft) -> Iterator[Finding]:
    if c.place_of_service not in PLACES_OF_SERVICE:
        yield Finding(
            "POS-VALID", "error", "place_of_service", f"{c.place_of_service!r} is not a place-of-service code"
        )


@rule("PAYER-ID", "The patient has coverage on the date of service, with a payer id.")
def _payer(c: ClaimDraft) -> Iterator[Finding]:
    if c.payer_id is None:
        yield Finding("PAYER-ID", "error", "coverage", "no active insurance coverage on the date of service")
    elif not c.payer_code:
        yield Finding("PAYER-ID", "error", "payer.payer_id", "the payer has no X12 payer id")


@rule("SUBSCRIBER", "The subscriber's member id, name and date of birth are present.")
def _subscriber(c: ClaimDraft) -> Iterator[Finding]:
    if c.payer_id is None:
        return
    for value, name in (
        (c.subscriber_member_id, "member id"),
        (c.subscriber_last, "last name"),
        (c.subscriber_first, "first name"),
        (c.subscriber_dob, "date of birth"),
    ):
        if not value:
            yield Finding(
                "SUBSCRIBER", "error", f"subscriber.{name.replace(' ', '_')}", f"the subscriber's {name} is missing"
            )


@rule("MSP-TYPE", "A claim to Medicare as secondary payer has a Medicare secondary type (SBR05).", parties=True)
def _medicare_secondary_type(c: ClaimParties) -> Iterator[Finding]:
    if not _medicare_secondary(c) or c.medicare_secondary_type in MEDICARE_SECONDARY_TYPES:
        return
    if c.medicare_secondary_type:
        text = f"{c.medicare_secondary_type!r} is not a Medicare secondary type ({', '.join(MEDICARE_SECONDARY_TYPES)})"
    else:
        text = "Medicare is billed as a secondary payer: the coverage has no Medicare secondary type"
    yield Finding("MSP-TYPE", "error", "coverage.medicare_secondary_type", text)


@rule("FEE-PRESENT", "Every line has a price on the payer's or the default fee schedule.")
def _fees(c: ClaimDraft) -> Iterator[Finding]:
    for line in c.lines:
        if line.charge_cents is None:
            yield Finding(
                "FEE-PRESENT",
                "error",
                f"line {line.seq}",
                f"no fee for {line.code} on the payer's or the default schedule",
            )
        elif line.charge_cents <= 0:
            yield Finding("FEE-PRESENT", "error", f"line {line.seq}", f"charge for {line.code} is not positive")


@rule("CLAIM-TOTAL", "The claim total equals the sum of its line charges.")
def _total(c: ClaimDraft) -> Iterator[Finding]:
    if any(line.charge_cents is None for line in c.lines):
        return
    s = sum(line.charge_cents or 0 for line in c.lines)
    if s != c.total_cents:
        yield Finding("CLAIM-TOTAL", "error", "total", f"total {c.total_cents / 100:.2f} != sum of lines {s / 100:.2f}")


def _clean(c: ClaimDraft) -> bool:
    """True when no rule can fire: the same checks as the rules, inline and without building
    findings (most claims are clean; the rules then run only for the others)."""
    if not (_npi_ok(c.billing_npi) and _npi_ok(c.rendering_npi)):
        return False
    if not c.tax_id or len(c.tax_id) != 9 or not c.tax_id.isdigit():
        return False
    if not _parties_clean(c):
        return False
    n = len(c.diagnoses)
    if not 1 <= n <= 12 or not 1 <= len(c.lines) <= 50:
        return False
    for code in c.diagnoses:
        if "." in code:
            return False
        exists, billable, _ = _icd(code)
        if not billable:
            return False
    if c.place_of_service not in PLACES_OF_SERVICE or c.payer_id is None or not c.payer_code:
        return False
    if not (c.subscriber_member_id and c.subscriber_last and c.subscriber_first and c.subscriber_dob):
        return False
    if c.service_date > c.today:
        return False
    seen = set()
    total = 0
    for line in c.lines:
        if line.units <= 0 or line.charge_cents is None or line.charge_cents <= 0 or line.service_date > c.today:
            return False
        if not line.pointers or len(line.pointers) > 4 or any(not 1 <= p <= n for p in line.pointers):
            return False
        if len(line.modifiers) > 4 or _proc_problem(line.code) or any(_modifier_problem(m) for m in line.modifiers):
            return False
        key = (line.code, line.modifiers, line.service_date)
        if key in seen:
            return False
        seen.add(key)
        total += line.charge_cents
    return total == c.total_cents


@functools.lru_cache(maxsize=1024)
def _billing_address_ok(zip_: str | None, street: str | None, city: str | None, state: str | None) -> bool:
    """A night's claims come from a few locations: their address is checked once."""
    return _zip9_ok(zip_) and _filled(street) and _filled(city) and _state_ok(state)


def _parties_clean(c: ClaimParties) -> bool:
    """True when no party rule can fire (their fast path, as `_clean` is the rules')."""
    if not _billing_address_ok(c.billing_zip, c.billing_address1, c.billing_city, c.billing_state):
        return False
    state = c.patient_state
    if not (
        _filled(c.patient_address1)
        and _filled(c.patient_city)
        and (state in USPS_STATES or _state_ok(state))
        and _zip_ok(c.patient_zip)
    ):
        return False
    return (
        c.payer_filing not in MEDICARE_FILING
        or c.responsibility == "P"
        or c.medicare_secondary_type in MEDICARE_SECONDARY_TYPES
    )


def scrub_parties(parties: ClaimParties) -> list[Finding]:
    """The findings of the party rules alone, in rule order (for a claim built earlier, just
    before it is written)."""
    if _parties_clean(parties):
        return []
    return [f for _, _, fn in PARTY_RULES for f in fn(parties)]


def scrub(draft: ClaimDraft) -> list[Finding]:
    """All findings for one draft, in rule order."""
    if _clean(draft):
        return []
    out: list[Finding] = []
    for _, _, fn in RULES:
        out.extend(fn(draft))
    return out


def rules() -> list[tuple[str, str]]:
    return [(rid, desc) for rid, desc, _ in RULES]


# The rules about the practice's own details, whatever the visit: a location's NPI and address,
# a provider's NPI, the tax id. Checked ahead of a billing run by the pre-flight checks.
_SETUP_PARTIES = frozenset({"location", "provider", "billing"})
_A_VALID_NPI = "1234567893"


def setup_findings(
    *,
    tax_id: str | None = "000000000",
    billing_npi: str | None = _A_VALID_NPI,
    rendering_npi: str | None = _A_VALID_NPI,
    address1: str | None = "-",
    city: str | None = "-",
    state: str | None = "NY",
    postal_code: str | None = "000000000",
) -> list[Finding]:
    """What every claim billed with these details would be refused for, by the same rules the
    scrubber runs on each claim. The defaults pass: give only the details to check."""
    draft = ClaimDraft(
        billing_zip=postal_code,
        billing_address1=address1,
        billing_city=city,
        billing_state=state,
        encounter_id=0,
        service_date=dt.date.min,
        place_of_service="11",
        diagnoses=(),
        lines=[],
        total_cents=0,
        billing_npi=billing_npi,
        tax_id=tax_id,
        rendering_npi=rendering_npi,
        payer_id=None,
        payer_code=None,
        subscriber_member_id=None,
        subscriber_last=None,
        subscriber_first=None,
        subscriber_dob=None,
        today=dt.date.min,
    )
    return [f for _, _, fn in RULES for f in fn(draft) if f.field.partition(".")[0] in _SETUP_PARTIES]
