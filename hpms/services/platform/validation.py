"""Input validators shared by every face; each raises ValidationError naming the field."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import re
import unicodedata
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hpms.codes.npi import is_valid_npi
from hpms.errors import ValidationError

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()./-]+$")
_DATE_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DATE_US = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_NON_DIGIT = re.compile(r"\D")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc
CONTROL_CHARS = _CONTROL  # for checks that inline optional_text
_SSN_SEPARATORS = re.compile(r"[\s-]")
_SSN_DIGITS = re.compile(r"\d{9}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_AMOUNT = re.compile(r"([+-]?)\$?(\d+(?:\.(\d*))?|\.(\d+))")
AMOUNT_FORM = "digits with at most two decimal places, e.g. 125.00"
MAX_MONEY_CENTS = 10_000_000_00  # ten million: anything larger is a typo
TRUE_WORDS = {"1", "true", "yes", "y", "t", "on"}
FALSE_WORDS = {"0", "false", "no", "n", "f", "off", ""}


@functools.lru_cache(maxsize=8192)  # names repeat: an import of 100,000 patients folds ~5,000 distinct ones
def fold(text: str) -> str:
    """Case- and accent-insensitive form used by name search (Müller -> muller)."""
    if text.isascii():
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().replace("ß", "ss").split())


def clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def require_text(field: str, value: str | None, max_len: int = 100) -> str:
    value = optional_text(field, value, max_len)
    if value is None:
        raise ValidationError(field, "is required")
    return value


def optional_text(field: str, value: str | None, max_len: int = 200) -> str | None:
    if value is None:
        return None
    value = value.strip()  # (clean() inlined: this runs for most fields of every imported row)
    if not value:
        return None
    if len(value) > max_len:
        raise ValidationError(field, f"is longer than {max_len} characters")
    if _CONTROL.search(value):
        raise ValidationError(field, "contains control characters")
    return value


def parse_date(field: str, value: str | dt.date | None, *, required: bool = False) -> dt.date | None:
    """YYYY-MM-DD (or MM/DD/YYYY); refuses impossible dates such as 2026-02-30."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    value = clean(value)
    if value is None:
        if required:
            raise ValidationError(field, "is required")
        return None
    if len(value) == 10 and value[4] == "-" and value[7] == "-" and value.isascii():
        # The common YYYY-MM-DD: parsed in C (shaped so, fromisoformat reads nothing else);
        # an impossible date falls through to the checks below, which name the problem.
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    m = _DATE_ISO.match(value)
    if m:
        y, mo, d = (int(x) for x in m.groups())
    else:
        m = _DATE_US.match(value)
        if not m:
            raise ValidationError(field, f"{value!r} is not a date (use YYYY-MM-DD)")
        mo, d, y = (int(x) for x in m.groups())
    try:
        return dt.date(y, mo, d)
    except ValueError as exc:
        raise ValidationError(field, f"{value!r} is not a valid date ({exc})") from None


def parse_dob(field: str, value: str | dt.date | None, *, today: dt.date) -> dt.date:
    dob = parse_date(field, value, required=True)
    assert dob is not None
    if dob > today:
        raise ValidationError(field, f"{dob.isoformat()} is in the future")
    if dob.year < today.year - 130:
        raise ValidationError(field, f"{dob.isoformat()} is more than 130 years ago")
    return dob


def parse_email(field: str, value: str | None) -> str | None:
    value = clean(value)
    if value is None:
        return None
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValidationError(field, f"{value!r} is not a valid e-mail address")
    return value


def parse_phone(field: str, value: str | None) -> str | None:
    """A phone number of 7 to 15 digits, optionally starting with '+', stored as typed
    without surrounding spaces."""
    value = clean(value)
    if value is None:
        return None
    digits = _NON_DIGIT.sub("", value)
    if not _PHONE_CHARS.match(value) or not 7 <= len(digits) <= 15:
        raise ValidationError(field, f"{value!r} is not a valid phone number (7 to 15 digits)")
    return value


def parse_e164(field: str, value: str | None) -> str | None:
    """A phone number an SMS can go to, in E.164 form (+15552013344): a number typed with a
    leading '+' keeps its country code; 10 digits (or 11 starting with 1) are North American."""
    value = parse_phone(field, value)
    if value is None:
        return None
    digits = _NON_DIGIT.sub("", value)
    if value.lstrip().startswith("+"):
        return "+" + digits
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    raise ValidationError(field, f"{value!r} has no country code: write it as +<country><number>")


def phone_digits(value: str | None) -> str | None:
    """Digits used to match phone numbers; a US 11-digit number drops its leading 1."""
    if not value:
        return None
    digits = _NON_DIGIT.sub("", value)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits or None


def parse_ssn(field: str, value: str | None) -> str | None:
    """A US Social Security number: 9 digits, dashes or spaces allowed; returns digits only."""
    value = clean(value)
    if value is None:
        return None
    digits = _SSN_SEPARATORS.sub("", value)
    if not _SSN_DIGITS.fullmatch(digits):
        raise ValidationError(field, "must be 9 digits (e.g. 123-45-6789)")
    if digits[:3] in ("000", "666") or digits[0] == "9" or digits[3:5] == "00" or digits[5:] == "0000":
        raise ValidationError(field, "is not a valid SSN (impossible area, group or serial)")
    return digits


def parse_choice(
    field: str, value: str | None, choices: tuple[str, ...], aliases: dict[str, str] | None = None
) -> str | None:
    value = clean(value)
    if value is None:
        return None
    norm = value.lower().replace("-", "_")
    norm = (aliases or {}).get(norm, norm)
    if norm not in choices:
        raise ValidationError(field, f"{value!r} is not one of: {', '.join(choices)}")
    return norm


def parse_bool(field: str, value: str | bool | None) -> bool:
    if isinstance(value, bool):
        return value
    norm = (value or "").strip().lower()
    if norm in TRUE_WORDS:
        return True
    if norm in FALSE_WORDS:
        return False
    raise ValidationError(field, f"{value!r} is not yes/no")


def parse_tz(field: str, value: str | None) -> str:
    value = clean(value)
    if not value:
        raise ValidationError(field, "is required (an IANA time zone such as Europe/Berlin)")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            field, f"unknown time zone {value!r} (use an IANA name such as America/New_York)"
        ) from None
    return value


def parse_npi(field: str, value: str | None) -> str | None:
    value = clean(value)
    if value is None:
        return None
    if not is_valid_npi(value):
        raise ValidationError(field, f"{value!r} is not a valid NPI (10 digits with a valid check digit)")
    return value


_TAXONOMY = re.compile(r"[0-9]{3}[0-9A-Z]{6}X")


def parse_taxonomy(field: str, value: str | None) -> str | None:
    """A provider taxonomy code (NUCC: 10 characters ending in X), upper-cased."""
    value = clean(value)
    if value is None:
        return None
    if not _TAXONOMY.fullmatch(value.upper()):
        raise ValidationError(
            field, f"{value.upper()!r} is not a provider taxonomy code (10 characters, e.g. 207Q00000X)"
        )
    return value.upper()


def parse_country(field: str, value: str | None) -> str | None:
    value = clean(value)
    if value is None:
        return None
    if not _COUNTRY.fullmatch(value):
        raise ValidationError(field, f"{value!r} is not a two-letter country code")
    return value.upper()


def parse_username(field: str, value: str) -> str:
    value = (value or "").strip()
    if not re.fullmatch(r"[a-z_][a-z0-9_.-]{0,63}", value):
        raise ValidationError(field, f"{value!r} is not a valid user name (lower case letters, digits, _ . -)")
    return value


def parse_money(
    field: str,
    value: object,
    *,
    sign: Literal["positive", "not_negative", "not_zero"] = "positive",
    below_cents: int = MAX_MONEY_CENTS,
) -> int:
    """An amount of money as integer cents: the one parser for every amount a person or a file
    gives. Text is a plain decimal with at most two places ("125", "125.5", "125.50", ".50",
    an optional leading "$"; "-" or "+" only where `sign` lets the amount be negative); an int or
    a finite Decimal with at most two places is taken as it is. Refused, naming `field`: floats,
    exponents ("1e5"), NaN and Infinity, thousands separators ("1,000.00"), a third decimal place,
    a sign `sign` does not allow, and anything whose size is `below_cents` or more."""
    if isinstance(value, (float, bool)):
        raise ValidationError(field, "give the amount as text or Decimal, not a float")
    if isinstance(value, (int, decimal.Decimal)):
        amount = decimal.Decimal(value)
        if not amount.is_finite():
            raise ValidationError(field, f"{value!r} is not an amount ({AMOUNT_FORM})")
        if amount != amount.quantize(decimal.Decimal("0.01")):
            raise ValidationError(field, f"{value} has more than two decimal places")
        text = f"{amount:.2f}"
    else:
        text = "" if value is None else str(value).strip()
        if not text:
            raise ValidationError(field, "is required")
        m = _AMOUNT.fullmatch(text)
        if not m:
            raise ValidationError(field, f"{text!r} is not an amount ({AMOUNT_FORM}{_amount_hint(text)})")
        places = m.group(3) if m.group(3) is not None else (m.group(4) or "")
        if len(places) > 2:
            raise ValidationError(field, f"{text!r} has more than two decimal places")
        if m.group(1) == "+" and sign != "not_zero":
            raise ValidationError(field, f"{text!r} is not an amount ({AMOUNT_FORM}, without a sign)")
        amount = decimal.Decimal(m.group(1) + m.group(2))
    cents = int(amount * 100)
    if cents < 0 and sign != "not_zero":
        raise ValidationError(field, f"{text!r} is negative; give the amount as a positive number")
    if cents == 0 and sign != "not_negative":
        wanted = "more than 0" if sign == "positive" else "other than 0"
        raise ValidationError(field, f"{text!r} is zero; give an amount {wanted}")
    if abs(cents) >= below_cents:
        raise ValidationError(field, f"{text!r} must be less than {decimal.Decimal(below_cents).scaleb(-2)}")
    return cents


def _amount_hint(text: str) -> str:
    low = text.lower()
    if "," in low:
        return "; no thousands separators"
    if low.lstrip("+-$").startswith(("nan", "inf", "snan")):
        return "; not NaN or Infinity"
    if "e" in low:
        return "; no exponents"
    return ""
