"""FHIR import (the service; the CLI wraps it): the Synthea bundle, idempotence, changes,
refusals, dry runs, duplicates and bad files, on both backends."""

from __future__ import annotations

import copy
import json

import pytest

from hpms.errors import ExitCode, PermissionDenied, ValidationError
from tests.conftest import REPO
from tests.services.conftest import fixed_clock
from tests.services.helpers import audit_rows, counts, last_seq, query, snapshot

SYNTHEA = REPO / "tests" / "data" / "fhir" / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"
PATIENT_ID = "e4531916-b162-4f4b-90c2-ce37e132b8d4"
SKIPPED = {
    "Observation": 33,
    "Claim": 7,
    "ExplanationOfBenefit": 6,
    "Immunization": 4,
    "Condition": 3,
    "DiagnosticReport": 2,
    "Procedure": 1,
    "MedicationRequest": 1,
}
TABLES = ("patient", "payer", "coverage", "provider", "external_visit", "external_ref", "audit_event")


def synthea() -> dict:
    return json.loads(SYNTHEA.read_text(encoding="utf-8"))


def write(path, doc) -> object:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def insured_bundle() -> dict:
    """A payer, a practitioner with a valid NPI, a patient, the patient's coverage and a visit."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:org-1",
                "resource": {
                    "resourceType": "Organization",
                    "id": "org-1",
                    "identifier": [{"system": "urn:x12:payer", "value": "ACME9"}],
                    "type": [
                        {
                            "coding": [
                                {"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "pay"}
                            ]
                        }
                    ],
                    "name": "Acme Mutual",
                    "telecom": [{"system": "phone", "value": "555-010-2000"}],
                    "address": [{"line": ["1 Main St"], "city": "Springfield", "state": "IL", "postalCode": "62701"}],
                },
            },
            {
                "fullUrl": "urn:uuid:pr-1",
                "resource": {
                    "resourceType": "Practitioner",
                    "id": "pr-1",
                    "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
                    "name": [{"family": "Okafor", "given": ["Ngozi"], "suffix": ["MD"]}],
                },
            },
            {
                "fullUrl": "urn:uuid:pt-1",
                "resource": {
                    "resourceType": "Patient",
                    "id": "pt-1",
                    "identifier": [
                        {
                            "type": {
                                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                            },
                            "system": "urn:example:mrn",
                            "value": "EXT-1001",
                        },
                        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "287-65-4321"},
                    ],
                    "name": [{"use": "official", "family": "Lindqvist", "given": ["Maja", "Elin"]}],
                    "gender": "female",
                    "birthDate": "1979-05-02",
                    "telecom": [
                        {"system": "phone", "value": "555-010-3000", "use": "mobile"},
                        {"system": "email", "value": "maja@example.org"},
                    ],
                    "address": [
                        {
                            "use": "home",
                            "line": ["9 Elm St", "Apt 2"],
                            "city": "Springfield",
                            "state": "IL",
                            "postalCode": "62704",
                            "country": "USA",
                        }
                    ],
                },
            },
            {
                "fullUrl": "urn:uuid:cov-1",
                "resource": {
                    "resourceType": "Coverage",
                    "id": "cov-1",
                    "status": "active",
                    "subscriberId": "ACM123456",
                    "beneficiary": {"reference": "urn:uuid:pt-1"},
                    "payor": [{"reference": "urn:uuid:org-1"}],
                    "relationship": {"coding": [{"code": "self"}]},
                    "class": [{"type": {"coding": [{"code": "group"}]}, "value": "GRP-77"}],
                    "period": {"start": "2025-01-01"},
                    "order": 1,
                },
            },
            {
                "fullUrl": "urn:uuid:enc-1",
                "resource": {
                    "resourceType": "Encounter",
                    "id": "enc-1",
                    "status": "finished",
                    "class": {"code": "AMB"},
                    "subject": {"reference": "urn:uuid:pt-1"},
                    "participant": [{"individual": {"reference": "urn:uuid:pr-1"}}],
                    "period": {"start": "2026-03-01T09:00:00-05:00", "end": "2026-03-01T09:30:00-05:00"},
                    "type": [{"text": "Check-up"}],
                },
            },
        ],
    }


def run_import(ctx_for, path, **kw):
    from hpms.services.interop import fhir_import

    with ctx_for(clock=fixed_clock) as ctx:
        return fhir_import.import_files(ctx, path, **kw)


def refused_of(report, resource_type: str):
    return [r for r in report.refused if r.resource_type == resource_type]


def by_type(report) -> dict[str, tuple[int, int, int, int, int]]:
    return {c.resource_type: (c.created, c.updated, c.unchanged, c.skipped, c.refused) for c in report.counts}


def test_the_synthea_bundle_imports(settings, ctx_for):
    seq = last_seq(settings)
    report = run_import(ctx_for, SYNTHEA)
    assert report.files == [SYNTHEA.name] and report.source == "fhir" and not report.dry_run
    got = by_type(report)
    assert got.pop("Patient") == (1, 0, 0, 0, 0)
    assert got.pop("Encounter") == (6, 0, 0, 0, 0)
    assert got.pop("Organization") == (0, 0, 0, 1, 0)  # a hospital, not a payer
    assert got.pop("Practitioner") == (0, 0, 0, 0, 1)
    assert got == {t: (0, 0, 0, n, 0) for t, n in SKIPPED.items()}
    [refused] = report.refused
    assert (refused.resource_type, refused.path) == ("Practitioner", "entry[2].resource.identifier[0].value")
    assert "'60' is not a valid NPI" in refused.reason
    # Synthea's SSNs are in the 9xx range no SSN is issued in, and its MRNs are UUIDs.
    notes = {n.path: n.note for n in report.notes}
    assert notes["entry[0].resource.identifier[2].value"].startswith("SSN not kept")
    assert notes["entry[0].resource.identifier[1].value"].startswith("MRN not kept")
    [p] = query(
        settings,
        "SELECT id, mrn, first_name, last_name, dob, sex_at_birth, phone, address_line1, city, state, "
        "postal_code, country, ssn_enc FROM patient",
    )
    assert (p["first_name"], p["last_name"], str(p["dob"]), p["sex_at_birth"]) == (
        "Buster",
        "Hoeger",
        "1988-03-16",
        "male",
    )
    assert (p["phone"], p["address_line1"], p["city"], p["postal_code"], p["country"]) == (
        "555-866-2259",
        "535 Howe Neck Apt 38",
        "Amherst",
        "01002",
        "US",
    )
    assert p["mrn"] == "0100001" and p["ssn_enc"] is None
    visits = query(
        settings,
        "SELECT patient_id, provider_id, status, visit_class, kind, practitioner, facility FROM external_visit",
    )
    assert len(visits) == 6
    assert {(v["patient_id"], v["provider_id"], v["status"], v["visit_class"]) for v in visits} == {
        (p["id"], None, "finished", "AMB")
    }
    assert {v["practitioner"] for v in visits} == {"Antonia Stark"}
    assert {v["facility"] for v in visits} == {"COOLEY DICKINSON HOSPITAL INC,THE"}
    assert counts(settings, "external_ref")["external_ref"] == 7
    events = audit_rows(settings, seq)
    assert [(e["action"], e["entity"]) for e in events] == [("create", "patient"), ("create", "external_visit")]
    assert events[0]["patient_id"] == p["id"] and events[1]["patient_ids_list"] == [p["id"]]


def test_a_second_import_changes_nothing(settings, ctx_for):
    first = run_import(ctx_for, SYNTHEA)
    before = snapshot(settings) | counts(settings, *TABLES)
    again = run_import(ctx_for, SYNTHEA)
    assert snapshot(settings) | counts(settings, *TABLES) == before  # not even an audit event
    got = by_type(again)
    assert got["Patient"] == (0, 0, 1, 0, 0)
    assert got["Encounter"] == (0, 0, 6, 0, 0)
    assert got["Practitioner"] == (0, 0, 0, 0, 1)  # still refused, for the same reason
    assert again.refused == first.refused


def test_a_changed_resource_is_updated(settings, ctx_for, tmp_path):
    run_import(ctx_for, SYNTHEA)
    doc = synthea()
    doc["entry"][0]["resource"]["telecom"][0]["value"] = "555-866-0000"
    doc["entry"][3]["resource"]["status"] = "cancelled"
    seq = last_seq(settings)
    report = run_import(ctx_for, write(tmp_path / "changed.json", doc))
    got = by_type(report)
    assert got["Patient"] == (0, 1, 0, 0, 0)
    assert got["Encounter"] == (0, 1, 5, 0, 0)
    [p] = query(settings, "SELECT id, phone, version FROM patient")
    assert (p["phone"], p["version"]) == ("555-866-0000", 2)
    assert query(settings, "SELECT count(*) AS n FROM external_visit WHERE status = 'cancelled'") == [{"n": 1}]
    events = audit_rows(settings, seq)
    assert [(e["action"], e["entity"], e["fields_list"]) for e in events] == [
        ("update", "patient", ["phone"]),
        ("update", "external_visit", ["status"]),
    ]
    assert by_type(run_import(ctx_for, tmp_path / "changed.json"))["Patient"] == (0, 0, 1, 0, 0)


def test_a_malformed_resource_is_refused_with_its_path(settings, ctx_for, tmp_path):
    doc = synthea()
    doc["entry"][0]["resource"]["birthDate"] = "1988-13-45"
    report = run_import(ctx_for, write(tmp_path / "bad.json", doc))
    got = by_type(report)
    assert got["Patient"] == (0, 0, 0, 0, 1)
    assert got["Encounter"] == (0, 0, 0, 0, 6)  # their patient was not imported
    [first] = refused_of(report, "Patient")
    assert (first.resource_type, first.id, first.file) == ("Patient", PATIENT_ID, "bad.json")
    assert (first.path, first.reason) == ("entry[0].resource.birthDate", "invalid date ('1988-13-45')")
    encounters = [r for r in report.refused if r.resource_type == "Encounter"]
    assert {r.path for r in encounters} >= {"entry[3].resource.subject"}
    assert {r.reason for r in encounters} == {
        f"Patient/{PATIENT_ID} was not imported (refused, or in none of the files)"
    }
    assert counts(settings, "patient", "external_visit", "external_ref") == {
        "patient": 0,
        "external_visit": 0,
        "external_ref": 0,
    }


def test_hpms_rules_refuse_a_resource_naming_its_element(settings, ctx_for, tmp_path):
    doc = synthea()
    doc["entry"][0]["resource"]["birthDate"] = "2030-01-01"  # valid FHIR, in the future
    report = run_import(ctx_for, write(tmp_path / "future.json", doc))
    [first] = refused_of(report, "Patient")
    assert first.path == "entry[0].resource.birthDate" and "future" in first.reason


def test_a_dry_run_writes_nothing_and_reports_the_same(settings, ctx_for):
    before = snapshot(settings) | counts(settings, *TABLES)
    dry = run_import(ctx_for, SYNTHEA, dry_run=True)
    assert snapshot(settings) | counts(settings, *TABLES) == before
    real = run_import(ctx_for, SYNTHEA)
    assert dry.dry_run and not real.dry_run
    assert by_type(dry) == by_type(real) and dry.refused == real.refused and dry.notes == real.notes


def test_a_possible_duplicate_is_refused_not_merged(settings, ctx_for, register):
    existing = register(first_name="Buster", last_name="Hoeger", dob="1988-03-16")
    seq = last_seq(settings)
    report = run_import(ctx_for, SYNTHEA)
    assert by_type(report)["Patient"] == (0, 0, 0, 0, 1)
    [refused] = refused_of(report, "Patient")
    assert refused.existing_mrn == existing.mrn and refused.path == "entry[0].resource"
    assert refused.reason.startswith(f"possible duplicate of MRN {existing.mrn} (same date of birth, similar name)")
    assert counts(settings, "patient", "external_visit") == {"patient": 1, "external_visit": 0}
    # the candidate shown is audited as read, like at a registration
    events = audit_rows(settings, seq)
    assert [(e["action"], e["patient_ids_list"]) for e in events] == [("duplicates", [existing.id])]


def test_a_dry_run_still_audits_the_duplicate_shown(settings, ctx_for, register):
    existing = register(first_name="Buster", last_name="Hoeger", dob="1988-03-16")
    seq = last_seq(settings)
    report = run_import(ctx_for, SYNTHEA, dry_run=True)
    assert refused_of(report, "Patient")[0].existing_mrn == existing.mrn
    assert [(e["action"], e["patient_ids_list"]) for e in audit_rows(settings, seq)] == [("duplicates", [existing.id])]


@pytest.mark.parametrize(
    "content, words",
    [
        (b"MSH|^~\\&|not json", "is not JSON"),
        (b'{"hello": "world"}', "is not a FHIR resource"),
        (b"\xff\xfe\x00", "is not UTF-8"),
    ],
)
def test_a_file_that_is_not_fhir_json_is_refused_whole(settings, ctx_for, tmp_path, content, words):
    (tmp_path / "a.json").write_bytes(json.dumps(synthea()).encode())
    (tmp_path / "b.json").write_bytes(content)
    before = snapshot(settings) | counts(settings, *TABLES)
    with pytest.raises(ValidationError) as err:
        run_import(ctx_for, tmp_path)
    assert err.value.field == "file" and err.value.exit_code == ExitCode.USAGE
    assert err.value.message.startswith(f"b.json {words}") and "nothing was imported" in err.value.message
    assert snapshot(settings) | counts(settings, *TABLES) == before  # not even the good file


def test_a_missing_file_or_empty_folder(settings, ctx_for, tmp_path):
    with pytest.raises(ValidationError) as err:
        run_import(ctx_for, tmp_path / "nope.json")
    assert err.value.field == "file" and "does not exist" in err.value.message
    with pytest.raises(ValidationError) as err:
        run_import(ctx_for, tmp_path)
    assert "holds no .json or .ndjson file" in err.value.message


def test_payers_coverage_and_providers(settings, ctx_for, tmp_path):
    path = write(tmp_path / "insured.json", insured_bundle())
    seq = last_seq(settings)
    report = run_import(ctx_for, path)
    assert report.refused == []
    got = by_type(report)
    assert {t: got[t] for t in ("Organization", "Practitioner", "Patient", "Coverage", "Encounter")} == {
        t: (1, 0, 0, 0, 0) for t in ("Organization", "Practitioner", "Patient", "Coverage", "Encounter")
    }
    [payer] = query(settings, "SELECT id, name, payer_id, phone, city FROM payer")
    assert (payer["name"], payer["payer_id"], payer["phone"], payer["city"]) == (
        "Acme Mutual",
        "ACME9",
        "555-010-2000",
        "Springfield",
    )
    [prov] = query(settings, "SELECT id, first_name, last_name, credentials, npi FROM provider")
    assert (prov["first_name"], prov["last_name"], prov["credentials"], prov["npi"]) == (
        "Ngozi",
        "Okafor",
        "MD",
        "1234567893",
    )
    [p] = query(settings, "SELECT id, mrn, middle_name, email, address_line2, country, ssn_enc, ssn_bidx FROM patient")
    assert (p["mrn"], p["middle_name"], p["email"], p["address_line2"], p["country"]) == (
        "EXT-1001",
        "Elin",
        "maja@example.org",
        "Apt 2",
        "US",
    )
    assert p["ssn_enc"] and "287654321" not in p["ssn_enc"] and "287-65-4321" not in p["ssn_enc"]
    [cov] = query(
        settings, "SELECT patient_id, payer_id, group_number, priority, relationship, member_id_enc FROM coverage"
    )
    assert (cov["patient_id"], cov["payer_id"], cov["group_number"], cov["priority"]) == (
        p["id"],
        payer["id"],
        "GRP-77",
        "primary",
    )
    assert "ACM123456" not in cov["member_id_enc"]
    [visit] = query(settings, "SELECT provider_id, start_utc, practitioner FROM external_visit")
    assert visit["provider_id"] == prov["id"] and visit["practitioner"] == "Ngozi Okafor"
    assert str(visit["start_utc"]).startswith("2026-03-01 14:00")
    assert {(e["action"], e["entity"]) for e in audit_rows(settings, seq)} >= {
        ("create", "payer"),
        ("create", "provider"),
        ("create", "patient"),
        ("create", "coverage"),
        ("create", "external_visit"),
    }
    # A new group number is changed; a new member id is refused (a coverage is ended by hand).
    doc = insured_bundle()
    doc["entry"][3]["resource"]["class"][0]["value"] = "GRP-78"
    got = by_type(run_import(ctx_for, write(tmp_path / "group.json", doc)))
    assert got["Coverage"] == (0, 1, 0, 0, 0) and got["Patient"] == (0, 0, 1, 0, 0)
    assert query(settings, "SELECT group_number FROM coverage") == [{"group_number": "GRP-78"}]
    doc["entry"][3]["resource"]["subscriberId"] = "ACM999999"
    report = run_import(ctx_for, write(tmp_path / "member.json", doc))
    assert by_type(report)["Coverage"] == (0, 0, 0, 0, 1)
    assert "in more than the group number" in report.refused[0].reason


def test_ndjson_files_of_a_bulk_export(settings, ctx_for, tmp_path):
    doc = insured_bundle()
    resources = {e["resource"]["resourceType"]: e["resource"] for e in doc["entry"]}
    resources["Coverage"]["beneficiary"] = {"reference": "Patient/pt-1"}
    resources["Coverage"]["payor"] = [{"reference": "Organization/org-1"}]
    resources["Encounter"]["subject"] = {"reference": "Patient/pt-1"}
    resources["Encounter"]["participant"] = [{"individual": {"reference": "Practitioner/pr-1"}}]
    bad = copy.deepcopy(resources["Encounter"]) | {"id": "enc-2", "period": {"start": "yesterday"}}
    for rt, res in resources.items():
        lines = [json.dumps(res)] + ([json.dumps(bad), "{not json"] if rt == "Encounter" else [])
        (tmp_path / f"{rt}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run_import(ctx_for, tmp_path)
    assert report.files == [f"{rt}.ndjson" for rt in sorted(resources)]
    got = by_type(report)
    assert got["Encounter"] == (1, 0, 0, 0, 1)
    assert got["?"] == (0, 0, 0, 0, 1)
    assert {(r.file, r.path) for r in report.refused} == {
        ("Encounter.ndjson", "line 2: period.start"),
        ("Encounter.ndjson", "line 3"),
    }
    assert counts(settings, "patient", "coverage", "external_visit") == {
        "patient": 1,
        "coverage": 1,
        "external_visit": 1,
    }
    # the Encounter file alone, later: its patient is found through the map of the first import
    (tmp_path / "more").mkdir()
    other = resources["Encounter"] | {"id": "enc-3"}
    (tmp_path / "more" / "Encounter.ndjson").write_text(json.dumps(other) + "\n", encoding="utf-8")
    assert by_type(run_import(ctx_for, tmp_path / "more"))["Encounter"] == (1, 0, 0, 0, 0)


def test_another_source_is_another_record(settings, ctx_for, tmp_path):
    path = write(tmp_path / "insured.json", insured_bundle())
    run_import(ctx_for, path)
    report = run_import(ctx_for, path, source="other-ehr")
    # the same patient from a second system is not silently the same: here its MRN is taken
    assert by_type(report)["Patient"] == (0, 0, 0, 0, 1)
    [refused] = refused_of(report, "Patient")
    assert (refused.path, refused.existing_mrn) == ("entry[2].resource.identifier[0].value", "EXT-1001")
    assert refused.reason == "'EXT-1001' is already assigned to another patient"
    # without the MRN, the duplicate check finds it
    doc = insured_bundle()
    del doc["entry"][2]["resource"]["identifier"][0]
    report = run_import(ctx_for, write(tmp_path / "no-mrn.json", doc), source="third-ehr")
    [refused] = refused_of(report, "Patient")
    assert refused.reason.startswith(
        "possible duplicate of MRN EXT-1001 (same date of birth, similar name; same phone; same SSN)"
    )
    assert counts(settings, "patient")["patient"] == 1


def test_only_an_admin_imports(settings, ctx_for, make_user):
    from hpms.services.interop import fhir_import

    make_user("desk", "front_desk")
    with pytest.raises(PermissionDenied), ctx_for("desk") as ctx:
        fhir_import.import_files(ctx, SYNTHEA)
    assert counts(settings, "patient")["patient"] == 0


def test_a_patient_merged_since_is_the_record_kept(settings, ctx_for, register, tmp_path):
    from hpms.services.people import patients

    run_import(ctx_for, SYNTHEA)
    keep = register(first_name="Buster", last_name="Hoeger", dob="1988-03-16")
    with ctx_for(clock=fixed_clock) as ctx:
        patients.merge(ctx, keep.mrn, "0100001")
    assert query(settings, "SELECT DISTINCT patient_id FROM external_visit") == [{"patient_id": keep.id}]
    doc = synthea()
    doc["entry"][0]["resource"]["telecom"][0]["value"] = "555-866-0000"
    doc["entry"].append(copy.deepcopy(doc["entry"][3]))
    doc["entry"][-1]["resource"]["id"] = "another-visit"
    got = by_type(run_import(ctx_for, write(tmp_path / "later.json", doc)))
    assert got["Patient"] == (0, 1, 0, 0, 0) and got["Encounter"] == (1, 0, 6, 0, 0)
    kept = query(settings, "SELECT phone, version FROM patient WHERE id = :id", id=keep.id)
    assert kept == [{"phone": "555-866-0000", "version": 3}]
    assert query(settings, "SELECT DISTINCT patient_id FROM external_visit") == [{"patient_id": keep.id}]


def test_a_resource_met_twice_in_one_import(settings, ctx_for, tmp_path):
    doc = synthea()
    later = synthea()
    later["entry"][0]["resource"]["telecom"][0]["value"] = "555-866-0000"
    write(tmp_path / "a.json", doc)
    write(tmp_path / "b.json", later)
    got = by_type(run_import(ctx_for, tmp_path))
    assert got["Patient"] == (1, 1, 0, 0, 0) and got["Encounter"] == (6, 0, 6, 0, 0)
    assert query(settings, "SELECT phone FROM patient") == [{"phone": "555-866-0000"}]
    # the map holds the later version: importing the folder again changes nothing
    again = by_type(run_import(ctx_for, tmp_path / "b.json"))
    assert again["Patient"] == (0, 0, 1, 0, 0) and again["Encounter"] == (0, 0, 6, 0, 0)


def test_a_household_sharing_a_phone_is_not_one_person(settings, ctx_for, register, tmp_path):
    """A shared phone alone (a family's number) is no reason to refuse a patient; with a similar
    name and the same birth date as well it still is."""
    spouse = register(first_name="Sven", last_name="Lindqvist", dob="1977-08-30", phone="555-010-3000")
    report = run_import(ctx_for, write(tmp_path / "insured.json", insured_bundle()))
    assert by_type(report)["Patient"] == (1, 0, 0, 0, 0) and report.refused == []
    assert query(settings, "SELECT mrn FROM patient WHERE phone = '555-010-3000' ORDER BY id") == [
        {"mrn": spouse.mrn},
        {"mrn": "EXT-1001"},
    ]
    twin = insured_bundle()
    twin["entry"][2]["resource"] |= {
        "id": "pt-2",
        "identifier": [],
        "name": [{"family": "Lindqvist", "given": ["Maria"]}],
    }
    report = run_import(ctx_for, write(tmp_path / "twin.json", twin))
    [refused] = refused_of(report, "Patient")
    assert refused.reason.startswith(
        "possible duplicate of MRN EXT-1001 (same date of birth, similar name; same phone)"
    )
