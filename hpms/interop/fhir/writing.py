"""hpms records as FHIR R4 (R4B) resources: pure functions from the plain rows the services read
(mappings of column names to values) to resource dicts, ready for JSON. No database, no I/O.

Logical ids are hpms ids, so a resource keeps its id from one export to the next: `Patient/12`
is patient 12. Where two kinds of hpms records become one resource type, the id says which:
the practice is `Organization/org-1`, a payer `Organization/payer-3`; a provider at a location
(PractitionerRole, Schedule) is `{provider id}-{location id}`; the busy Slot of appointment 7
is `Slot/appointment-7`, a free Slot `{provider}-{location}-{YYYYMMDDHHMM}` (its UTC start).

The identifier and code systems come from `hpms.interop.fhir.systems`, where the reader takes
them too: what an export writes is what an import looks for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hpms.interop.fhir.systems import (
    ACT_CODE,
    ADJUDICATION_SYSTEM,
    CLAIM_CONTROL_SYSTEM,
    CLAIM_ENCOUNTER_EXTENSION,
    CLAIM_TYPE,
    COVERAGE_CLASS,
    CPT_SYSTEM,
    EIN_SYSTEM,
    EMAIL,
    GENDER,
    HCPCS_SYSTEM,
    HOME,
    HPMS_ADJUDICATION,
    ICD10_SYSTEM,
    IDENTIFIER_TYPE,
    MEMBER_ID_SYSTEM,
    MEMBER_ID_TYPE,
    MOBILE,
    MODIFIER_SYSTEM,
    MRN_SYSTEM,
    MRN_TYPE,
    NPI_SYSTEM,
    NPI_TYPE,
    OFFICIAL_NAME,
    ORG_TYPE,
    PAYER_CLAIM_SYSTEM,
    PAYER_ID_SYSTEM,
    PAYER_ORG_TYPE,
    PAYMENT_TYPE_SYSTEM,
    PHONE,
    POS_SYSTEM,
    PRACTICE_ORG_TYPE,
    PREFERRED_NAME,
    PRIORITY_ORDER,
    PRIORITY_SYSTEM,
    RELATIONSHIP_SYSTEM,
    ROLE_CODE,
    SSN_SYSTEM,
    SSN_TYPE,
    SUBSCRIBER_ROLE,
    TAX_ID_TYPE,
    TAXONOMY_SYSTEM,
    TIMEZONE_EXTENSION,
    TRACE_NUMBER_SYSTEM,
    WORK,
)

Row = Mapping[str, Any]
Resource = dict[str, Any]

# ---- hpms states and their FHIR codes (written only) ---------------------------------------

APPOINTMENT_STATUS = {
    "booked": "booked",
    "confirmed": "booked",
    "arrived": "arrived",
    "in_room": "checked-in",
    "completed": "fulfilled",
    "no_show": "noshow",
    "cancelled": "cancelled",
}
BLOCKING = frozenset({"booked", "confirmed", "arrived", "in_room", "completed"})  # hold their time
ENCOUNTER_STATUS = {"draft": "in-progress", "signed": "finished", "billed": "finished", "void": "entered-in-error"}
CLAIM_STATUS = {"void": "cancelled", "rejected": "entered-in-error"}  # every other claim status is active
TELEHEALTH_POS = frozenset({"02", "10"})
# CLP02 claim status codes of an 835: what the payer did
REMIT_DISPOSITION = {
    "1": "processed as primary",
    "2": "processed as secondary",
    "3": "processed as tertiary",
    "4": "denied",
    "19": "processed as primary, forwarded to another payer",
    "20": "processed as secondary, forwarded to another payer",
    "21": "processed as tertiary, forwarded to another payer",
    "22": "reversal of a previous payment",
    "23": "not our claim, forwarded to another payer",
}

RESOURCE_TYPES = (
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Schedule",
    "Patient",
    "RelatedPerson",
    "Coverage",
    "Slot",
    "Appointment",
    "Encounter",
    "Claim",
    "ClaimResponse",
)


# ---- small pieces --------------------------------------------------------------------------


def ref(resource_type: str, rid: object) -> dict[str, str]:
    return {"reference": f"{resource_type}/{rid}"}


def practice_id(org_id: int) -> str:
    return f"org-{org_id}"


def payer_id(payer_row_id: int) -> str:
    return f"payer-{payer_row_id}"


def role_id(provider_id: int, location_id: int) -> str:
    """The id of a provider at a location: its PractitionerRole and its Schedule."""
    return f"{provider_id}-{location_id}"


def subscriber_id(coverage_id: int) -> str:
    """The id of the RelatedPerson who subscribes to a coverage that is not the patient's own."""
    return f"subscriber-{coverage_id}"


def busy_slot_id(appointment_id: int) -> str:
    return f"appointment-{appointment_id}"


def free_slot_id(provider_id: int, location_id: int, start: dt.datetime) -> str:
    return f"{provider_id}-{location_id}-{start.astimezone(dt.UTC):%Y%m%d%H%M}"


def instant(value: dt.datetime) -> str:
    """An aware time as a FHIR instant (UTC, `Z`)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def money(cents: int | None) -> dict[str, Any]:
    """Integer cents as FHIR Money. FHIR writes the value as a JSON number: cents / 100 as a
    float prints as its shortest round-trip text, which for whole cents is exactly the amount
    ("123.45"); nothing is computed with it."""
    return {"value": (cents or 0) / 100, "currency": "USD"}


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _identifier(system: str, value: str, type_code: str | None = None, use: str | None = None) -> dict[str, Any]:
    ident: dict[str, Any] = {"system": system, "value": value}
    if type_code:
        ident["type"] = _concept(IDENTIFIER_TYPE, type_code)
    if use:
        ident["use"] = use
    return ident


def _address(row: Row) -> list[dict[str, Any]]:
    lines = [x for x in (row.get("address_line1"), row.get("address_line2")) if x]
    addr: dict[str, Any] = {}
    if lines:
        addr["line"] = lines
    for key, element in (("city", "city"), ("state", "state"), ("postal_code", "postalCode"), ("country", "country")):
        if row.get(key):
            addr[element] = row[key]
    return [addr] if addr else []


def _telecom(*points: tuple[str, str | None, str | None]) -> list[dict[str, Any]]:
    """(system, value, use) triples; the empty ones left out."""
    return [{"system": s, "value": v, **({"use": u} if u else {})} for s, v, u in points if v]


def _clean(resource: Resource) -> Resource:
    """The resource without empty lists or None values at its top level."""
    return {k: v for k, v in resource.items() if v is not None and v != [] and v != {}}


def procedure_system(code: str) -> str:
    """CPT for five digits (or four and F, T or U), HCPCS Level II otherwise."""
    from hpms.codes.procedures import is_cpt

    return CPT_SYSTEM if is_cpt(code) else HCPCS_SYSTEM


def dotted_icd10(code: str) -> str:
    """An ICD-10-CM code as FHIR writes it (with the dot after the third character)."""
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 and "." not in code else code


# ---- the practice --------------------------------------------------------------------------


def practice(row: Row) -> Resource:
    """The practice (organization row; `tax_id` from its billing profile when known)."""
    ident = [_identifier(EIN_SYSTEM, row["tax_id"], TAX_ID_TYPE)] if row.get("tax_id") else []
    return _clean(
        {
            "resourceType": "Organization",
            "id": practice_id(row["id"]),
            "identifier": ident,
            "active": True,
            "type": [_concept(ORG_TYPE, PRACTICE_ORG_TYPE, "Healthcare Provider")],
            "name": row["name"],
        }
    )


def payer(row: Row) -> Resource:
    """A payer (insurer) as an Organization of type `pay`."""
    return _clean(
        {
            "resourceType": "Organization",
            "id": payer_id(row["id"]),
            "identifier": [_identifier(PAYER_ID_SYSTEM, row["payer_id"])],
            "active": True,
            "type": [_concept(ORG_TYPE, PAYER_ORG_TYPE, "Payer")],
            "name": row["name"],
            "telecom": _telecom((PHONE, row.get("phone"), WORK)),
            "address": _address(row),
        }
    )


def location(row: Row) -> Resource:
    """A location of the practice; its IANA zone in the timezone extension."""
    ident = [_identifier(NPI_SYSTEM, row["npi"], NPI_TYPE)] if row.get("npi") else []
    addr = _address(row)
    return _clean(
        {
            "resourceType": "Location",
            "id": str(row["id"]),
            "extension": [{"url": TIMEZONE_EXTENSION, "valueCode": row["tz"]}],
            "identifier": ident,
            "status": "active",
            "name": row["name"],
            "type": [_concept(POS_SYSTEM, row.get("place_of_service") or "11")],
            "telecom": _telecom((PHONE, row.get("phone"), WORK)),
            "address": addr[0] if addr else None,
            "managingOrganization": ref("Organization", practice_id(row["org_id"])),
        }
    )


def practitioner(row: Row) -> Resource:
    """A provider (clinician): NPI, name and credentials."""
    ident = [_identifier(NPI_SYSTEM, row["npi"], NPI_TYPE)] if row.get("npi") else []
    name: dict[str, Any] = {"use": OFFICIAL_NAME, "family": row["last_name"], "given": [row["first_name"]]}
    if row.get("credentials"):
        name["suffix"] = [row["credentials"]]
    return _clean(
        {
            "resourceType": "Practitioner",
            "id": str(row["id"]),
            "identifier": ident,
            "active": bool(row["active"]),
            "name": [name],
        }
    )


def practitioner_role(row: Row) -> Resource:
    """A provider at a location (a provider_location row with the provider's org, taxonomy
    and active flag)."""
    specialty = [_concept(TAXONOMY_SYSTEM, row["taxonomy"])] if row.get("taxonomy") else []
    return _clean(
        {
            "resourceType": "PractitionerRole",
            "id": role_id(row["provider_id"], row["location_id"]),
            "active": bool(row["active"]),
            "practitioner": ref("Practitioner", row["provider_id"]),
            "organization": ref("Organization", practice_id(row["org_id"])),
            "location": [ref("Location", row["location_id"])],
            "specialty": specialty,
        }
    )


def schedule(row: Row) -> Resource:
    """The schedule of a provider at a location (the same row as `practitioner_role`)."""
    return {
        "resourceType": "Schedule",
        "id": role_id(row["provider_id"], row["location_id"]),
        "active": bool(row["active"]),
        "actor": [ref("Practitioner", row["provider_id"]), ref("Location", row["location_id"])],
    }


# ---- patients and coverage -----------------------------------------------------------------


def patient(row: Row, *, ssn: str | None = None, mrn_system: str = MRN_SYSTEM) -> Resource:
    """A patient: MRN (and the SSN only when given), names, contacts, address. A merged
    patient is inactive, linked to the one it was merged into."""
    ident = [_identifier(mrn_system, row["mrn"], MRN_TYPE, "usual")]
    if ssn:
        ident.append(_identifier(SSN_SYSTEM, f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}" if len(ssn) == 9 else ssn, SSN_TYPE))
    given = [x for x in (row["first_name"], row.get("middle_name")) if x]
    names: list[dict[str, Any]] = [{"use": OFFICIAL_NAME, "family": row["last_name"], "given": given}]
    if row.get("preferred_name"):
        names.append({"use": PREFERRED_NAME, "given": [row["preferred_name"]]})
    telecom = _telecom(
        (PHONE, row.get("phone"), MOBILE if row.get("consent_sms") else HOME),
        (PHONE, row.get("phone_alt"), None),
        (EMAIL, row.get("email"), None),
    )
    resource: Resource = {
        "resourceType": "Patient",
        "id": str(row["id"]),
        "identifier": ident,
        "active": bool(row["active"]) and not row.get("merged_into_id"),
        "name": names,
        "telecom": telecom,
        "gender": GENDER.get(row.get("sex_at_birth") or "", None),
        "birthDate": row["dob"].isoformat(),
        "address": _address(row),
    }
    if row.get("merged_into_id"):
        resource["link"] = [{"other": ref("Patient", row["merged_into_id"]), "type": "replaced-by"}]
    return _clean(resource)


def has_subscriber(row: Row) -> bool:
    """Whether a coverage row is insured through someone else whose name is on file."""
    return (row.get("relationship") or "self") != "self" and bool(row.get("subscriber_last_name"))


def subscriber(row: Row) -> Resource:
    """The subscriber of a coverage that is not the patient's own (a coverage row with the
    subscriber's names and date of birth): a RelatedPerson of the patient, which the Coverage
    names as its subscriber."""
    role = SUBSCRIBER_ROLE.get(row.get("relationship") or "")
    name: dict[str, Any] = {"use": OFFICIAL_NAME, "family": row["subscriber_last_name"]}
    if row.get("subscriber_first_name"):
        name["given"] = [row["subscriber_first_name"]]
    dob = row.get("subscriber_dob")
    return _clean(
        {
            "resourceType": "RelatedPerson",
            "id": subscriber_id(row["id"]),
            "patient": ref("Patient", row["patient_id"]),
            "relationship": [_concept(ROLE_CODE, role)] if role else [],
            "name": [name],
            "birthDate": dob.isoformat() if dob else None,
        }
    )


def coverage(row: Row, *, member_id: str) -> Resource:
    """A patient's insurance coverage (a coverage row with the payer's X12 id as `payer_code`);
    `member_id` is the decrypted member id. One insured through someone else names its
    subscriber (see `subscriber`)."""
    period = {
        k: v.isoformat() for k, v in (("start", row.get("valid_from")), ("end", row.get("valid_to"))) if v is not None
    }
    classes = (
        [{"type": _concept(COVERAGE_CLASS, "group"), "value": row["group_number"]}] if row.get("group_number") else []
    )
    return _clean(
        {
            "resourceType": "Coverage",
            "id": str(row["id"]),
            "identifier": [_identifier(f"{MEMBER_ID_SYSTEM}:{row['payer_code']}", member_id, MEMBER_ID_TYPE)],
            "status": "active" if row["active"] else "cancelled",
            "subscriber": ref("RelatedPerson", subscriber_id(row["id"])) if has_subscriber(row) else None,
            "subscriberId": member_id,
            "beneficiary": ref("Patient", row["patient_id"]),
            "relationship": _concept(RELATIONSHIP_SYSTEM, row.get("relationship") or "self"),
            "period": period or None,
            "payor": [ref("Organization", payer_id(row["payer_id"]))],
            "class": classes,
            "order": PRIORITY_ORDER.get(row.get("priority") or "primary", 1),
        }
    )


# ---- scheduling ----------------------------------------------------------------------------


def appointment(row: Row) -> Resource:
    """An appointment (with its type's name as `type_name`): status, times, the patient,
    provider and location; a blocking one points to its busy Slot."""
    status = row["status"]
    participants = [
        {"actor": ref("Patient", row["patient_id"]), "status": "accepted"},
        {"actor": ref("Practitioner", row["provider_id"]), "status": "accepted"},
        {"actor": ref("Location", row["location_id"]), "status": "accepted"},
    ]
    resource: Resource = {
        "resourceType": "Appointment",
        "id": str(row["id"]),
        "status": APPOINTMENT_STATUS.get(status, "booked"),
        "serviceType": [{"text": row["type_name"]}],
        "appointmentType": {"text": row["type_name"]},
        "description": row.get("reason"),
        "start": instant(row["start_utc"]),
        "end": instant(row["end_utc"]),
        "minutesDuration": int((row["end_utc"] - row["start_utc"]).total_seconds() // 60),
        "created": row["booked_at"].astimezone(dt.UTC).date().isoformat() if row.get("booked_at") else None,
        "participant": participants,
    }
    if status in BLOCKING:
        resource["slot"] = [ref("Slot", busy_slot_id(row["id"]))]
    if status == "cancelled" and row.get("cancel_reason"):
        resource["cancelationReason"] = {"text": row["cancel_reason"]}
    return _clean(resource)


def busy_slot(row: Row) -> Resource:
    """The time a blocking appointment holds (start to the end of its buffer), on its schedule."""
    return {
        "resourceType": "Slot",
        "id": busy_slot_id(row["id"]),
        "schedule": ref("Schedule", role_id(row["provider_id"], row["location_id"])),
        "status": "busy",
        "start": instant(row["start_utc"]),
        "end": instant(row.get("block_end_utc") or row["end_utc"]),
    }


def free_slot(provider_id: int, location_id: int, start: dt.datetime, end: dt.datetime) -> Resource:
    """An open time of a provider at a location."""
    return {
        "resourceType": "Slot",
        "id": free_slot_id(provider_id, location_id, start),
        "schedule": ref("Schedule", role_id(provider_id, location_id)),
        "status": "free",
        "start": instant(start),
        "end": instant(end),
    }


# ---- billing -------------------------------------------------------------------------------


def _diagnosis_concepts(codes: Sequence[str]) -> list[dict[str, Any]]:
    return [_concept(ICD10_SYSTEM, dotted_icd10(c)) for c in codes]


def encounter(row: Row, *, diagnoses: Sequence[str] = ()) -> Resource:
    """An encounter (the billed visit): status, class (ambulatory, or virtual for telehealth
    places of service), the patient, provider, location and appointment, the day of service,
    and its ICD-10-CM diagnoses (in order) as reasonCode."""
    pos = row.get("place_of_service") or "11"
    virtual = pos in TELEHEALTH_POS
    day = row["service_date"].isoformat()
    resource: Resource = {
        "resourceType": "Encounter",
        "id": str(row["id"]),
        "status": ENCOUNTER_STATUS.get(row["status"], "unknown"),
        "class": {"system": ACT_CODE, "code": "VR", "display": "virtual"}
        if virtual
        else {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": ref("Patient", row["patient_id"]),
        "participant": [{"individual": ref("Practitioner", row["provider_id"])}],
        "appointment": [ref("Appointment", row["appointment_id"])] if row.get("appointment_id") else [],
        "period": {"start": day, "end": day},
        "reasonCode": _diagnosis_concepts(diagnoses),
        "location": [{"location": ref("Location", row["location_id"])}],
        "serviceProvider": ref("Organization", practice_id(row["org_id"])),
    }
    return _clean(resource)


def _modifiers(text: str | None) -> list[dict[str, Any]]:
    return [_concept(MODIFIER_SYSTEM, m) for m in (text or "").split(",") if m]


def claim_item(line: Row) -> Resource:
    """One claim (or encounter) line: the procedure, modifiers, units, charge, day, pointers."""
    units = int(line.get("units") or 1)
    charge = int(line["charge_cents"])
    return _clean(
        {
            "sequence": int(line["seq"]),
            "diagnosisSequence": [int(p) for p in str(line.get("pointers") or "").split(",") if p],
            "productOrService": _concept(procedure_system(line["code"]), line["code"]),
            "modifier": _modifiers(line.get("modifiers")),
            "servicedDate": line["service_date"].isoformat(),
            "quantity": {"value": units},
            # the unit price only when the charge divides evenly into units: Money has no fractions of a cent
            "unitPrice": money(charge // units) if charge % units == 0 else None,
            "net": money(charge),
        }
    )


def claim(row: Row, *, lines: Iterable[Row] = (), diagnoses: Sequence[str] = ()) -> Resource:
    """A professional claim to a payer: control number, status, the patient, the rendering
    provider, the payer and coverage, the encounter's diagnoses and the lines, and the total."""
    ident = [_identifier(CLAIM_CONTROL_SYSTEM, row["control_number"])]
    if row.get("payer_claim_number"):
        ident.append(_identifier(PAYER_CLAIM_SYSTEM, row["payer_claim_number"]))
    insurance: Resource = {"sequence": 1, "focal": True}
    if row.get("coverage_id"):
        insurance["coverage"] = ref("Coverage", row["coverage_id"])
    else:  # a claim without a coverage on file: the payer is all that is known
        insurance["coverage"] = {"display": f"coverage with payer {row['payer_id']}"}
    resource: Resource = {
        "resourceType": "Claim",
        "id": str(row["id"]),
        "identifier": ident,
        "status": CLAIM_STATUS.get(row["status"], "active"),
        "type": _concept(CLAIM_TYPE, "professional"),
        "use": "claim",
        "patient": ref("Patient", row["patient_id"]),
        "billablePeriod": {"start": row["service_date"].isoformat(), "end": row["service_date"].isoformat()}
        if row.get("service_date")
        else None,
        "created": row["created_at"].astimezone(dt.UTC).date().isoformat(),
        "insurer": ref("Organization", payer_id(row["payer_id"])),
        "provider": ref("Practitioner", row["provider_id"]),
        "priority": _concept(PRIORITY_SYSTEM, "normal"),
        "related": [{"claim": ref("Claim", row["original_claim_id"])}] if row.get("original_claim_id") else [],
        "diagnosis": [
            {"sequence": i, "diagnosisCodeableConcept": c} for i, c in enumerate(_diagnosis_concepts(diagnoses), 1)
        ],
        "insurance": [insurance],
        "item": [claim_item(line) for line in lines],
        "total": money(row["total_cents"]),
    }
    if row.get("encounter_id"):
        resource["extension"] = [
            {"url": CLAIM_ENCOUNTER_EXTENSION, "valueReference": ref("Encounter", row["encounter_id"])}
        ]
    return _clean(resource)


def claim_response(row: Row, *, adjustments: Iterable[Row] = ()) -> Resource:
    """What the payer answered to a claim (a remit_claim row matched to a claim, with the
    remittance's payment date and trace number and the claim's patient and payer): the charge,
    what it paid and what it left to the patient, and the adjustments (group and CARC)."""
    status_code = str(row["status_code"])
    totals = [
        {"category": _concept(ADJUDICATION_SYSTEM, "submitted"), "amount": money(row["charge_cents"])},
        {"category": _concept(ADJUDICATION_SYSTEM, "benefit"), "amount": money(row["paid_cents"])},
    ]
    if row.get("patient_resp_cents"):
        totals.append(
            {
                "category": _concept(HPMS_ADJUDICATION, "patient-responsibility"),
                "amount": money(row["patient_resp_cents"]),
            }
        )
    notes = [
        {"number": i, "type": "print", "text": f"{a['group_code']}-{a['reason_code']}: {a['amount_cents'] / 100:.2f}"}
        for i, a in enumerate(adjustments, 1)
    ]
    payment = None
    if row.get("payment_date"):
        payment = {
            "type": _concept(PAYMENT_TYPE_SYSTEM, "complete"),
            "date": row["payment_date"].isoformat(),
            "amount": money(row["paid_cents"]),
            "identifier": {"system": TRACE_NUMBER_SYSTEM, "value": row["trace_number"]}
            if row.get("trace_number")
            else None,
        }
        payment = {k: v for k, v in payment.items() if v is not None}
    ident = [_identifier(PAYER_CLAIM_SYSTEM, row["payer_claim_number"])] if row.get("payer_claim_number") else []
    created = row.get("payment_date") or row["created_at"].astimezone(dt.UTC).date()
    return _clean(
        {
            "resourceType": "ClaimResponse",
            "id": str(row["id"]),
            "identifier": ident,
            "status": "active",
            "type": _concept(CLAIM_TYPE, "professional"),
            "use": "claim",
            "patient": ref("Patient", row["patient_id"]),
            "created": created.isoformat(),
            "insurer": ref("Organization", payer_id(row["payer_id"])),
            "request": ref("Claim", row["claim_id"]),
            "outcome": "complete",
            "disposition": REMIT_DISPOSITION.get(status_code, f"claim status {status_code}"),
            "total": totals,
            "payment": payment,
            "processNote": notes,
        }
    )


# ---- bundles and outcomes ------------------------------------------------------------------


def collection(resources: Iterable[Resource], *, bundle_id: str, timestamp: dt.datetime) -> Resource:
    """A Bundle of type collection (one patient's export)."""
    entries = [{"fullUrl": f"urn:hpms:{r['resourceType']}/{r['id']}", "resource": r} for r in resources]
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "collection",
        "timestamp": instant(timestamp),
        "entry": entries,
    }


def searchset(resources: Sequence[Resource], *, base: str, self_url: str) -> Resource:
    """A Bundle of type searchset: every resource a match, with its full URL under `base`."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {"fullUrl": f"{base.rstrip('/')}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


ISSUE_CODES = {
    "not_found": "not-found",
    "validation": "invalid",
    "permission": "forbidden",
    "login": "login",
    "conflict": "conflict",
    "locked": "transient",
}


def operation_outcome(kind: str, text: str, *, expression: str | None = None) -> Resource:
    """An OperationOutcome of one error issue; `kind` is an hpms error kind (or `login`)."""
    issue: Resource = {"severity": "error", "code": ISSUE_CODES.get(kind, "exception"), "diagnostics": text}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def capability_statement(*, software_version: str, base: str, date: dt.date) -> Resource:
    """What the read API serves: read of Patient, search of Appointment and Slot, as JSON."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date.isoformat(),
        "kind": "instance",
        "software": {"name": "hpms", "version": software_version},
        "implementation": {"description": "hpms FHIR read API", "url": base},
        "fhirVersion": "4.3.0",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Authorization: Bearer <token> (`hpms tokens create`); the token's role decides"
                },
                "resource": [
                    {"type": "Patient", "interaction": [{"code": "read"}]},
                    {
                        "type": "Appointment",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            {"name": "patient", "type": "reference"},
                            {"name": "date", "type": "date"},
                        ],
                    },
                    {
                        "type": "Slot",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            {"name": "schedule", "type": "reference"},
                            {"name": "start", "type": "date"},
                        ],
                    },
                ],
            }
        ],
    }


def validate(resource: Resource) -> Any:
    """The resource parsed by its fhir.resources R4B model (raises on an invalid one)."""
    import importlib

    kind = resource["resourceType"]
    module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
    return getattr(module, kind).model_validate(resource)
