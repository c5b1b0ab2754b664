"""`hpms fhir import`: the report (--json and plain), --dry-run, refusals with exit 0, bad files."""

from __future__ import annotations

import json

from tests.cli.helpers import error_line, ok, tsv, with_denied
from tests.services.test_fhir_import import SYNTHEA, synthea

TABLES = ("patient", "provider", "external_visit", "external_ref", "audit_event")


def test_import_json_shape(cli, counts):
    data = ok(cli("fhir", "import", str(SYNTHEA), "--json"))
    assert set(data) == {"files", "source", "dry_run", "counts", "refused", "notes"}
    assert (data["files"], data["source"], data["dry_run"]) == ([SYNTHEA.name], "fhir", False)
    rows = {c["resource_type"]: c for c in data["counts"]}
    assert rows["Patient"] == {
        "resource_type": "Patient",
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        "refused": 0,
    }
    assert [c["resource_type"] for c in data["counts"]][:5] == [
        "Organization",
        "Practitioner",
        "Patient",
        "Encounter",
        "Claim",
    ]
    assert rows["Encounter"]["created"] == 6 and rows["Observation"]["skipped"] == 33
    [refused] = data["refused"]
    assert set(refused) == {"resource_type", "id", "file", "path", "reason", "existing_mrn"}
    assert refused["path"] == "entry[2].resource.identifier[0].value"
    assert {n["note"].split(":")[0] for n in data["notes"]} == {"SSN not kept", "MRN not kept"}
    assert counts("patient", "external_visit") == {"patient": 1, "external_visit": 6}
    again = ok(cli("fhir", "import", str(SYNTHEA), "--json"))
    assert {c["resource_type"]: c["unchanged"] for c in again["counts"]}["Patient"] == 1


def test_plain_report_and_dry_run(cli, counts):
    before = counts(*TABLES)
    r = cli("fhir", "import", str(SYNTHEA), "--dry-run")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == ["Resource", "Created", "Updated", "Unchanged", "Skipped", "Refused"]
    assert ["Patient", "1", "0", "0", "0", "0"] in rows
    assert f"refused: {SYNTHEA.name}: entry[2].resource.identifier[0].value: '60' is not a valid NPI" in r.stderr
    assert "note: " in r.stderr
    assert r.stderr.rstrip().splitlines()[-1] == "would import 1 file(s): 7 created, 0 updated, 0 unchanged, 1 refused"
    assert counts(*TABLES) == before


def test_a_malformed_resource_is_reported_and_the_rest_imported(cli, tmp_path, counts):
    doc = synthea()
    doc["entry"][0]["resource"]["birthDate"] = "1988-13-45"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    r = cli("fhir", "import", str(path))
    assert r.exit_code == 0, r.stderr
    assert "refused: bad.json: entry[0].resource.birthDate: invalid date ('1988-13-45')" in r.stderr
    assert counts("patient")["patient"] == 0


def test_a_file_that_is_not_json_is_exit_2_and_writes_nothing(cli, tmp_path, counts):
    path = tmp_path / "notes.json"
    path.write_text("Buster came in on Tuesday\n", encoding="utf-8")
    before = counts(*TABLES)
    r = cli("fhir", "import", str(path), "--json")
    error_line(r, 2, "FILE", "notes.json is not JSON", "nothing was imported")
    assert r.stdout == ""
    assert counts(*TABLES) == before


def test_a_missing_file_is_exit_2(cli, tmp_path, counts):
    before = counts(*TABLES)
    error_line(cli("fhir", "import", str(tmp_path / "none.json")), 2, "FILE", "none.json", "does not exist")
    assert counts(*TABLES) == before


def test_only_an_admin_imports(cli, as_user, counts):
    env = as_user("desk", "front_desk")
    before = counts(*TABLES)
    error_line(cli("fhir", "import", str(SYNTHEA), env=env), 5, "may not import FHIR resources")
    assert counts(*TABLES) == with_denied(before)
