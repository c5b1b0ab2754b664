"""FHIR JSON into plain records: the Synthea bundle, NDJSON, references, malformed resources."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from hpms.interop.fhir import reading as fr
from tests.services.test_fhir_import import PATIENT_ID, SKIPPED, SYNTHEA, insured_bundle, synthea


def test_the_synthea_bundle():
    parsed = fr.read_json(SYNTHEA.read_bytes(), file=SYNTHEA.name)
    assert parsed.refused == []
    assert sorted(r.resource_type for r in parsed.records) == ["Encounter"] * 6 + [
        "Organization",
        "Patient",
        "Practitioner",
    ]
    skipped: dict[str, int] = {}
    for s in parsed.skipped:
        skipped[s.resource_type] = skipped.get(s.resource_type, 0) + 1
    assert skipped == SKIPPED
    patient = next(r for r in parsed.records if r.resource_type == "Patient")
    assert (patient.fhir_id, patient.where) == (PATIENT_ID, fr.Where(SYNTHEA.name, "entry[0].resource"))
    assert patient.values == {
        "first_name": "Buster",
        "last_name": "Hoeger",
        "dob": "1988-03-16",
        "sex_at_birth": "male",  # from the us-core-birthsex extension
        "phone": "555-866-2259",
        "address_line1": "535 Howe Neck Apt 38",
        "city": "Amherst",
        "state": "Massachusetts",
        "postal_code": "01002",
        "country": "US",
        "mrn": "ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423",
        "ssn": "999-59-2277",
    }
    assert patient.path("ssn") == "entry[0].resource.identifier[2].value"
    assert patient.path("sex_at_birth") == "entry[0].resource.extension[3].valueCode"
    practitioner = next(r for r in parsed.records if r.resource_type == "Practitioner")
    assert practitioner.values == {"first_name": "Antonia", "last_name": "Stark", "npi": "60"}
    org = next(r for r in parsed.records if r.resource_type == "Organization")
    assert (org.values["name"], org.values["payer"], org.values["kind"]) == (
        "COOLEY DICKINSON HOSPITAL INC,THE",
        False,
        "prov",
    )
    visit = next(r for r in parsed.records if r.resource_type == "Encounter")
    # urn:uuid references resolve through the bundle's fullUrls
    assert visit.refs == {
        "patient": fr.Ref("Patient", PATIENT_ID),
        "provider": fr.Ref("Practitioner", "34ef92a2-f1a5-4324-b274-4ccf96f9f2d1"),
        "facility": fr.Ref("Organization", "49318f80-bd8b-3fc7-a096-ac43088b0c12"),
    }
    assert visit.values["start_utc"] == dt.datetime(1994, 9, 2, 13, 55, 57, tzinfo=dt.UTC)
    assert (visit.values["kind"], visit.values["reason"], visit.values["visit_class"]) == (
        "Encounter for symptom",
        "Sinusitis (disorder)",
        "AMB",
    )


def test_payer_coverage_and_names():
    parsed = fr.read_json(json.dumps(insured_bundle()).encode(), file="b.json")
    recs = {r.resource_type: r for r in parsed.records}
    assert recs["Organization"].values["payer"] is True and recs["Organization"].values["payer_id"] == "ACME9"
    assert "country" not in recs["Organization"].values
    assert recs["Practitioner"].values["credentials"] == "MD"
    assert recs["Patient"].values["middle_name"] == "Elin"
    assert recs["Patient"].values["email"] == "maja@example.org"
    assert recs["Patient"].values["address_line2"] == "Apt 2" and recs["Patient"].values["country"] == "US"
    cov = recs["Coverage"]
    assert cov.values == {
        "status": "active",
        "member_id": "ACM123456",
        "group_number": "GRP-77",
        "relationship": "self",
        "priority": "primary",
        "valid_from": "2025-01-01",
    }
    assert cov.refs == {"patient": fr.Ref("Patient", "pt-1"), "payer": fr.Ref("Organization", "org-1")}
    assert recs["Encounter"].values["start_utc"] == dt.datetime(2026, 3, 1, 14, 0, tzinfo=dt.UTC)


def test_a_malformed_resource_is_refused_alone():
    doc = synthea()
    doc["entry"][0]["resource"]["birthDate"] = "1988-13-45"
    doc["entry"][3]["resource"]["period"]["start"] = "sometime"
    del doc["entry"][7]["resource"]["id"]
    parsed = fr.read_json(json.dumps(doc).encode(), file="x.json")
    assert [(r.resource_type, r.path, r.reason) for r in parsed.refused] == [
        ("Patient", "entry[0].resource.birthDate", "invalid date ('1988-13-45')"),
        ("Encounter", "entry[3].resource.period.start", "invalid date-time ('sometime')"),
        (
            "Encounter",
            "entry[7].resource.id",
            "missing (a resource without an id cannot be imported again without a duplicate)",
        ),
    ]
    assert len(parsed.records) == 6


def test_one_resource_alone_and_other_references():
    res = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "https://ehr.example.org/fhir/Patient/p9/_history/3"},
        "participant": [{"individual": {"reference": "urn:uuid:elsewhere"}}],
        "period": {"start": "2020-02-03"},
    }
    parsed = fr.read_json(json.dumps(res).encode(), file="one.json")
    [rec] = parsed.records
    assert rec.where.at == "resource"
    assert rec.refs["patient"] == fr.Ref("Patient", "p9")
    assert rec.refs["provider"] == fr.Ref("", "elsewhere")  # a urn the file does not hold: type unknown
    assert rec.values["start_utc"] == dt.datetime(2020, 2, 3, tzinfo=dt.UTC)


def test_ndjson_lines():
    good = json.dumps({"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"})
    data = "\n".join([good, "", "{broken", json.dumps([1, 2]), json.dumps({"resourceType": "Observation"})])
    parsed = fr.read_ndjson(data.encode(), file="Patient.ndjson")
    assert [r.where.at for r in parsed.records] == ["line 1"]
    assert [(r.path, r.reason.split(" (")[0]) for r in parsed.refused] == [
        ("line 3", "not JSON"),
        ("line 4", "not a FHIR resource"),
    ]
    assert [s.resource_type for s in parsed.skipped] == ["Observation"]
    assert fr.Where("Patient.ndjson", "line 3").path("birthDate") == "line 3: birthDate"


@pytest.mark.parametrize(
    "reader, data, message",
    [
        (fr.read_json, b"not json", "f is not JSON (line 1, column 1: Expecting value)"),
        (fr.read_json, b"[1, 2]", "f is not a FHIR resource (no resourceType)"),
        (fr.read_json, b"\xff\xfe", "f is not UTF-8 text"),
        (fr.read_json, b'{"resourceType": "Bundle", "entry": 3}', "f: entry is not a list"),
        (fr.read_ndjson, b"MSH|^~\\&|\n", "f is not NDJSON (line 1 is not JSON: Expecting value)"),
    ],
)
def test_a_file_that_is_not_fhir_json(reader, data, message):
    with pytest.raises(fr.FhirFileError) as err:
        reader(data, file="f")
    assert str(err.value) == message


def test_the_reader_imports_no_database_code():
    code = (
        "import sys, hpms.interop.fhir.reading as m; "
        "m.read_json(open(sys.argv[1], 'rb').read(), file='x'); "
        "bad = [n for n in sys.modules if n.split('.')[0] in ('sqlalchemy', 'sqlmodel') "
        "or n.startswith(('hpms.services', 'hpms.models', 'hpms.db'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code, str(SYNTHEA)], check=True)
