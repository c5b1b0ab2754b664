"""FHIR R4 JSON read into plain records: a Bundle, a single resource, or NDJSON (one resource a
line, as a bulk export writes them). Each supported resource is validated with the R4B models of
`fhir.resources`; a malformed one becomes a `Refusal` naming the element at fault
(`entry[3].resource.birthDate`), never an error for the whole file. No database, no hpms rules:
the values come out as the resource gives them, with the element each one came from. The code
systems and value tables are those of `hpms.interop.fhir.systems`, which the writer uses too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hpms.interop.fhir.systems import (
    BIRTH_SEX,
    BIRTH_SEX_EXTENSION,
    EMAIL,
    HOME_ADDRESS,
    LAST_PRIORITY,
    MRN_SYSTEM,
    MRN_TYPE,
    NPI_SYSTEM,
    OFFICIAL_NAME,
    OLD,
    ORDER_PRIORITY,
    OTHER_RELATIONSHIP,
    PAYER_ORG_TYPES,
    PHONE,
    PREFERRED_NAME_USES,
    RELATIONSHIPS,
    SEX_OF_GENDER,
    SSN_SYSTEM,
)

# The resource types read, in the order an import applies them (each may refer to those before it).
SUPPORTED = ("Organization", "Practitioner", "Patient", "RelatedPerson", "Coverage", "Encounter")

_COUNTRY_NAMES = {"USA": "US", "UNITED STATES": "US", "UNITED STATES OF AMERICA": "US"}
_PAYER_CODE = re.compile(r"[A-Za-z0-9]{2,80}")


class FhirFileError(ValueError):
    """The file as a whole is not FHIR JSON (not JSON at all, or neither a resource nor NDJSON)."""


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference resolved to the resource type and id it names."""

    resource_type: str
    id: str


@dataclass(frozen=True, slots=True)
class Where:
    """Where a resource sits: the file and `entry[3].resource` in a Bundle, `line 12` in NDJSON."""

    file: str
    at: str

    def path(self, element: str | None = None) -> str:
        if not element:
            return self.at
        return f"{self.at}: {element}" if self.at.startswith("line ") else f"{self.at}.{element}"


@dataclass(frozen=True, slots=True)
class Refusal:
    resource_type: str
    fhir_id: str | None
    file: str
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A resource of a type this import does not read (Observation, Condition...)."""

    resource_type: str
    fhir_id: str | None
    file: str
    path: str


@dataclass(slots=True)
class Record:
    """What one supported resource gives. `values` are hpms field names to the text (or date)
    the resource holds; `paths` the element each came from; `notes` what was left out and why."""

    resource_type: str
    fhir_id: str
    where: Where
    values: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    refs: dict[str, Ref | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def path(self, name: str) -> str:
        """The element (within the file) an hpms field came from; the resource when unknown."""
        return self.where.path(self.paths.get(name))

    def set(self, name: str, value: Any, path: str) -> None:
        if value is not None and value != "":
            self.values[name] = value
            self.paths[name] = path


@dataclass(slots=True)
class Parsed:
    records: list[Record] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def extend(self, other: Parsed) -> None:
        self.records += other.records
        self.refused += other.refused
        self.skipped += other.skipped


def _json(data: bytes, file: str) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise FhirFileError(f"{file} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise FhirFileError(f"{file} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def read_json(data: bytes, *, file: str) -> Parsed:
    """A Bundle or one resource. FhirFileError when the file is not JSON or not a FHIR resource."""
    doc = _json(data, file)
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise FhirFileError(f"{file} is not a FHIR resource (no resourceType)")
    parsed = Parsed()
    if doc["resourceType"] != "Bundle":
        _read_resource(doc, Where(file, "resource"), {}, parsed)
        return parsed
    entries = doc.get("entry") or []
    if not isinstance(entries, list):
        raise FhirFileError(f"{file}: entry is not a list")
    full_urls: dict[str, Ref] = {}
    for e in entries:
        res = e.get("resource") if isinstance(e, dict) else None
        if isinstance(e, dict) and isinstance(e.get("fullUrl"), str) and isinstance(res, dict):
            rt, rid = res.get("resourceType"), res.get("id")
            if isinstance(rt, str) and isinstance(rid, str):
                full_urls[e["fullUrl"]] = Ref(rt, rid)
    for i, e in enumerate(entries):
        where = Where(file, f"entry[{i}].resource")
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict):
            parsed.refused.append(Refusal("?", None, file, f"entry[{i}]", "no resource"))
            continue
        if (e.get("request") or {}).get("method") == "DELETE":
            parsed.skipped.append(Skipped(str(res.get("resourceType")), res.get("id"), file, where.at))
            continue
        _read_resource(res, where, full_urls, parsed)
    return parsed


def read_ndjson(data: bytes, *, file: str) -> Parsed:
    """One resource a line. A line that is not JSON refuses that line; FhirFileError when the
    first resource line is not JSON (the file is not NDJSON at all)."""
    parsed = Parsed()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FhirFileError(f"{file} is not UTF-8 text") from None
    first = True
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = Where(file, f"line {n}")
        try:
            res = json.loads(line)
        except json.JSONDecodeError as exc:
            if first:
                raise FhirFileError(f"{file} is not NDJSON (line {n} is not JSON: {exc.msg})") from None
            parsed.refused.append(Refusal("?", None, file, where.at, f"not JSON ({exc.msg})"))
            continue
        first = False
        if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
            parsed.refused.append(Refusal("?", None, file, where.at, "not a FHIR resource (no resourceType)"))
            continue
        _read_resource(res, where, {}, parsed)
    return parsed


def _read_resource(res: dict[str, Any], where: Where, full_urls: dict[str, Ref], parsed: Parsed) -> None:
    rt = res["resourceType"]
    rid = res.get("id")
    if rt not in SUPPORTED:
        parsed.skipped.append(Skipped(rt, rid if isinstance(rid, str) else None, where.file, where.at))
        return
    problem = _invalid(res)
    if problem is None and not isinstance(rid, str):
        problem = ("id", "missing (a resource without an id cannot be imported again without a duplicate)")
    if problem is not None:
        element, reason = problem
        fid = rid if isinstance(rid, str) else None
        parsed.refused.append(Refusal(rt, fid, where.file, where.path(element), reason))
        return
    assert isinstance(rid, str)
    rec = Record(rt, rid, where)
    _READERS[rt](res, rec, lambda value: _ref(value, full_urls))
    parsed.records.append(rec)


def _invalid(res: dict[str, Any]) -> tuple[str, str] | None:
    """(element, reason) of the first thing the R4B model refuses, or None when it validates."""
    # fhir.resources builds its models at import (about 0.2 s): only an import pays for it.
    import pydantic
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(res["resourceType"]).model_validate(res)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        return _loc(err.get("loc", ())), _reason(err)
    except (ValueError, TypeError) as exc:
        return "", str(exc).splitlines()[0]
    return None


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "model-")) and part != "__root__":
            out += f".{part}" if out else str(part)
    return out


def _reason(err: Any) -> str:
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    given = f" ({err['input']!r})" if isinstance(err.get("input"), str) else ""
    kind = str(err.get("type", ""))
    if "DateTime value" in msg or "datetime" in kind:
        return "invalid date-time" + given
    if "Date value" in msg or "date" in kind:
        return "invalid date" + given
    return msg.rstrip(".").splitlines()[0]


def _ref(value: Any, full_urls: dict[str, Ref]) -> Ref | None:
    text = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(text, str) or not text:
        return None
    if text in full_urls:
        return full_urls[text]
    if text.startswith("urn:uuid:"):
        return Ref("", text[len("urn:uuid:") :])
    parts = text.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2:
        return Ref(parts[-2], parts[-1])
    return None


def _coding_codes(concept: Any) -> Iterator[str]:
    for c in (concept or {}).get("coding") or []:
        if isinstance(c.get("code"), str):
            yield c["code"]


def _concept_text(concept: Any) -> str | None:
    """The concept's text, else the display of a coding, else its first code."""
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for c in concept.get("coding") or []:
        if c.get("display"):
            return str(c["display"])
    return next(_coding_codes(concept), None)


def _pick(items: list[dict[str, Any]], prefer: str) -> int | None:
    """The index of the item of use `prefer`, else of the first one not marked old."""
    for i, it in enumerate(items):
        if it.get("use") == prefer:
            return i
    for i, it in enumerate(items):
        if it.get("use") != OLD:
            return i
    return None


def _name(res: dict[str, Any], rec: Record) -> None:
    names = res.get("name") or []
    i = _pick(names, OFFICIAL_NAME)
    if i is None:
        return
    n = names[i]
    given = n.get("given") or []
    if given:
        rec.set("first_name", given[0], f"name[{i}].given[0]")
    if len(given) > 1:
        rec.set("middle_name", " ".join(given[1:]), f"name[{i}].given[1]")
    rec.set("last_name", n.get("family"), f"name[{i}].family")
    if rec.resource_type == "Practitioner" and n.get("suffix"):
        rec.set("credentials", " ".join(n["suffix"]), f"name[{i}].suffix")
    # the preferred name: another name of use `usual` (as hpms writes it), else a nickname
    for use in PREFERRED_NAME_USES:
        j = next((j for j, o in enumerate(names) if j != i and o.get("use") == use and o.get("given")), None)
        if j is not None:
            rec.set("preferred_name", names[j]["given"][0], f"name[{j}].given[0]")
            break


def _address(res: dict[str, Any], rec: Record) -> None:
    addresses = res.get("address") or []
    i = _pick(addresses, HOME_ADDRESS)
    if i is None:
        return
    a = addresses[i]
    lines = a.get("line") or []
    if lines:
        rec.set("address_line1", lines[0], f"address[{i}].line[0]")
    if len(lines) > 1:
        rec.set("address_line2", ", ".join(lines[1:]), f"address[{i}].line[1]")
    rec.set("city", a.get("city"), f"address[{i}].city")
    rec.set("state", a.get("state"), f"address[{i}].state")
    rec.set("postal_code", a.get("postalCode"), f"address[{i}].postalCode")
    country = a.get("country")
    if country:
        code = _COUNTRY_NAMES.get(country.strip().upper(), country.strip())
        if len(code) == 2 and code.isalpha():
            rec.set("country", code.upper(), f"address[{i}].country")
        else:
            rec.notes.append(f"address[{i}].country: not a two-letter country code; not kept")


def _telecom(res: dict[str, Any], rec: Record, *, emails: bool) -> None:
    phones = 0
    for i, t in enumerate(res.get("telecom") or []):
        if t.get("use") == OLD or not t.get("value"):
            continue
        if t.get("system") == PHONE and phones < 2:
            rec.set("phone" if phones == 0 else "phone_alt", t["value"], f"telecom[{i}].value")
            phones += 1
        elif emails and t.get("system") == EMAIL and "email" not in rec.values:
            rec.set("email", t["value"], f"telecom[{i}].value")


def _patient(res: dict[str, Any], rec: Record, ref: Any) -> None:
    _name(res, rec)
    rec.set("dob", res.get("birthDate"), "birthDate")
    sex = None
    for i, ext in enumerate(res.get("extension") or []):
        if ext.get("url") == BIRTH_SEX_EXTENSION and ext.get("valueCode") in BIRTH_SEX:
            sex = (BIRTH_SEX[ext["valueCode"]], f"extension[{i}].valueCode")
    if sex is None and res.get("gender") in SEX_OF_GENDER:
        sex = (SEX_OF_GENDER[res["gender"]], "gender")
    if sex is not None:
        rec.set("sex_at_birth", *sex)
    _telecom(res, rec, emails=True)
    _address(res, rec)
    for i, ident in enumerate(res.get("identifier") or []):
        if ident.get("system") == SSN_SYSTEM and "ssn" not in rec.values:
            rec.set("ssn", ident.get("value"), f"identifier[{i}].value")
        elif "mrn" not in rec.values and (
            ident.get("system") == MRN_SYSTEM or MRN_TYPE in _coding_codes(ident.get("type"))
        ):
            rec.set("mrn", ident.get("value"), f"identifier[{i}].value")


def _organization(res: dict[str, Any], rec: Record, ref: Any) -> None:
    rec.set("name", res.get("name"), "name")
    codes = [c for t in res.get("type") or [] for c in _coding_codes(t)]
    rec.values["payer"] = bool(PAYER_ORG_TYPES & set(codes))
    rec.values["kind"] = codes[0] if codes else None
    for i, ident in enumerate(res.get("identifier") or []):
        value = ident.get("value")
        if isinstance(value, str) and _PAYER_CODE.fullmatch(value):
            rec.set("payer_id", value, f"identifier[{i}].value")
            break
    _address(res, rec)
    rec.values.pop("country", None)  # payers keep no country
    _telecom(res, rec, emails=False)
    rec.values.pop("phone_alt", None)


def _practitioner(res: dict[str, Any], rec: Record, ref: Any) -> None:
    _name(res, rec)
    rec.values.pop("middle_name", None)
    rec.values.pop("preferred_name", None)
    for i, ident in enumerate(res.get("identifier") or []):
        if ident.get("system") == NPI_SYSTEM:
            rec.set("npi", ident.get("value"), f"identifier[{i}].value")
            break


def _related_person(res: dict[str, Any], rec: Record, ref: Any) -> None:
    """A person related to a patient: as hpms reads it, the subscriber of a coverage."""
    rec.refs["patient"] = ref(res.get("patient"))
    rec.paths["patient"] = "patient"
    _name(res, rec)
    rec.values.pop("preferred_name", None)
    rec.set("dob", res.get("birthDate"), "birthDate")


def _coverage(res: dict[str, Any], rec: Record, ref: Any) -> None:
    rec.refs["patient"] = ref(res.get("beneficiary"))
    rec.paths["patient"] = "beneficiary"
    subscriber = ref(res.get("subscriber"))
    if subscriber is not None and subscriber.resource_type in ("RelatedPerson", ""):
        rec.refs["subscriber"] = subscriber  # (a Patient subscriber is the patient: relationship self)
        rec.paths["subscriber"] = "subscriber"
    payors = res.get("payor") or []
    rec.refs["payer"] = ref(payors[0]) if payors else None
    rec.paths["payer"] = "payor[0]"
    rec.values["status"] = res.get("status")
    if res.get("subscriberId"):
        rec.set("member_id", res["subscriberId"], "subscriberId")
    else:
        for i, ident in enumerate(res.get("identifier") or []):
            if ident.get("value"):
                rec.set("member_id", ident["value"], f"identifier[{i}].value")
                break
    for i, cls in enumerate(res.get("class") or []):
        if "group" in _coding_codes(cls.get("type")):
            rec.set("group_number", cls.get("value"), f"class[{i}].value")
            break
    codes = list(_coding_codes(res.get("relationship")))
    if codes:
        rec.set("relationship", codes[0] if codes[0] in RELATIONSHIPS else OTHER_RELATIONSHIP, "relationship")
    order = res.get("order")
    if isinstance(order, int):
        rec.set("priority", ORDER_PRIORITY.get(order, LAST_PRIORITY), "order")
    period = res.get("period") or {}
    rec.set("valid_from", _date(period.get("start")), "period.start")
    rec.set("valid_to", _date(period.get("end")), "period.end")


def _encounter(res: dict[str, Any], rec: Record, ref: Any) -> None:
    rec.refs["patient"] = ref(res.get("subject"))
    rec.paths["patient"] = "subject"
    practitioner = None
    for i, p in enumerate(res.get("participant") or []):
        r = ref(p.get("individual"))
        if r is not None and r.resource_type in ("Practitioner", ""):
            practitioner = r
            rec.paths["provider"] = f"participant[{i}].individual"
            break
    rec.refs["provider"] = practitioner
    rec.refs["facility"] = ref(res.get("serviceProvider"))
    rec.set("status", res.get("status"), "status")
    cls = res.get("class")
    if isinstance(cls, dict):
        rec.set("visit_class", cls.get("code"), "class.code")
    types = res.get("type") or []
    if types:
        rec.set("kind", _concept_text(types[0]), "type[0]")
    reasons = res.get("reasonCode") or []
    if reasons:
        rec.set("reason", _concept_text(reasons[0]), "reasonCode[0]")
    period = res.get("period") or {}
    rec.set("start_utc", _instant(period.get("start")), "period.start")
    rec.set("end_utc", _instant(period.get("end")), "period.end")


def _date(value: Any) -> str | None:
    return value[:10] if isinstance(value, str) and value else None


def _instant(value: Any) -> dt.datetime | None:
    """A FHIR dateTime as an aware UTC datetime; a date alone is its midnight, UTC."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) <= 10:
        parts = [int(p) for p in value.split("-")] + [1, 1]
        return dt.datetime(parts[0], parts[1], parts[2], tzinfo=dt.UTC)
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


_READERS = {
    "Patient": _patient,
    "RelatedPerson": _related_person,
    "Organization": _organization,
    "Practitioner": _practitioner,
    "Coverage": _coverage,
    "Encounter": _encounter,
}
