"""FHIR R4 export: the mapping of hpms rows to resources (every one valid for the fhir.resources
R4B models), and the export of the demo clinic, every NDJSON line and every Bundle parsed by its
model, every reference resolving inside the export."""

from __future__ import annotations

import datetime as dt
import json
import stat
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from hpms.interop.fhir import writing as w
from tests.cli.helpers import ok
from tests.conftest import ENV_VARS, copy_demo

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 9, 14, 0, tzinfo=UTC)


def _model(resource: dict):
    return w.validate(json.loads(json.dumps(resource)))


def test_every_mapping_gives_a_valid_resource():
    patient = {
        "id": 7,
        "mrn": "0100007",
        "first_name": "Ana",
        "middle_name": "Luz",
        "last_name": "Ruiz",
        "preferred_name": "Lulu",
        "dob": dt.date(1980, 2, 29),
        "sex_at_birth": "intersex",
        "phone": "212-555-0100",
        "phone_alt": None,
        "email": "ana@example.org",
        "consent_sms": True,
        "address_line1": "1 Main St",
        "address_line2": None,
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62701",
        "country": "US",
        "active": True,
        "merged_into_id": 3,
    }
    p = _model(w.patient(patient, ssn="123456789"))
    assert p.gender == "other" and p.active is False  # merged: inactive, replaced by the one kept
    assert p.link[0].other.reference == "Patient/3" and p.link[0].type == "replaced-by"
    assert [(i.system, i.value) for i in p.identifier] == [(w.MRN_SYSTEM, "0100007"), (w.SSN_SYSTEM, "123-45-6789")]
    assert [n.use for n in p.name] == ["official", "usual"] and p.name[0].given == ["Ana", "Luz"]
    assert all(i.system != w.SSN_SYSTEM for i in _model(w.patient(patient)).identifier)

    cov = _model(
        w.coverage(
            {
                "id": 4,
                "patient_id": 7,
                "payer_id": 2,
                "payer_code": "60054",
                "group_number": "G-1",
                "relationship": "child",
                "priority": "secondary",
                "valid_from": dt.date(2026, 1, 1),
                "valid_to": None,
                "active": True,
            },
            member_id="W123",
        )
    )
    assert cov.subscriberId == "W123" and cov.order == 2 and cov.payor[0].reference == "Organization/payer-2"
    assert cov.identifier[0].system == f"{w.MEMBER_ID_SYSTEM}:60054" and cov.period.end is None

    appt = {
        "id": 11,
        "patient_id": 7,
        "provider_id": 1,
        "location_id": 2,
        "start_utc": T0,
        "end_utc": T0 + dt.timedelta(minutes=30),
        "block_end_utc": T0 + dt.timedelta(minutes=40),
        "status": "cancelled",
        "cancel_reason": "sick",
        "reason": "cough",
        "type_name": "Follow-up",
        "booked_at": T0 - dt.timedelta(days=3),
    }
    a = _model(w.appointment(appt))
    assert a.status == "cancelled" and a.slot is None and a.cancelationReason.text == "sick"
    assert a.minutesDuration == 30
    held = _model(w.appointment({**appt, "status": "in_room"}))
    assert held.status == "checked-in" and held.slot[0].reference == "Slot/appointment-11"
    busy = _model(w.busy_slot(appt))
    assert busy.status == "busy" and busy.schedule.reference == "Schedule/1-2"
    assert busy.end == T0 + dt.timedelta(minutes=40)  # the buffer is held too
    assert _model(w.free_slot(1, 2, T0, T0 + dt.timedelta(minutes=15))).id == "1-2-202603091400"

    enc = {
        "id": 5,
        "org_id": 1,
        "patient_id": 7,
        "provider_id": 1,
        "location_id": 2,
        "appointment_id": 11,
        "service_date": dt.date(2026, 3, 9),
        "place_of_service": "02",
        "status": "void",
    }
    e = _model(w.encounter(enc, diagnoses=["J069", "R05"]))
    assert e.status == "entered-in-error" and e.class_fhir.code == "VR"
    assert [c.coding[0].code for c in e.reasonCode] == ["J06.9", "R05"]
    assert _model(w.encounter({**enc, "place_of_service": "11"})).class_fhir.code == "AMB"

    claim = {
        "id": 9,
        "encounter_id": 5,
        "patient_id": 7,
        "payer_id": 2,
        "coverage_id": None,
        "provider_id": 1,
        "service_date": dt.date(2026, 3, 9),
        "control_number": "C000009",
        "payer_claim_number": "PCN9",
        "original_claim_id": 8,
        "status": "void",
        "total_cents": 10001,
        "created_at": T0,
    }
    lines = [
        {
            "seq": 1,
            "code": "99213",
            "modifiers": "25",
            "units": 1,
            "pointers": "1,2",
            "charge_cents": 9000,
            "service_date": dt.date(2026, 3, 9),
        },
        {
            "seq": 2,
            "code": "J1100",
            "modifiers": "",
            "units": 3,
            "pointers": "1",
            "charge_cents": 1001,
            "service_date": dt.date(2026, 3, 9),
        },
    ]
    c = _model(w.claim(claim, lines=lines, diagnoses=["J069"]))
    assert c.status == "cancelled" and c.total.value == Decimal("100.01")
    assert c.insurance[0].coverage.reference is None  # no coverage on file: the payer only
    assert [i.productOrService.coding[0].system for i in c.item] == [w.CPT_SYSTEM, w.HCPCS_SYSTEM]
    assert c.item[0].unitPrice.value == 90 and c.item[1].unitPrice is None  # 10.01 does not split in 3
    assert c.item[0].diagnosisSequence == [1, 2] and c.related[0].claim.reference == "Claim/8"
    assert _model(w.claim({**claim, "coverage_id": 4, "status": "paid"})).status == "active"

    remit = {
        "id": 3,
        "status_code": "4",
        "charge_cents": 10001,
        "paid_cents": 0,
        "patient_resp_cents": 0,
        "payer_claim_number": None,
        "claim_id": 9,
        "payment_date": None,
        "trace_number": None,
        "created_at": T0,
        "patient_id": 7,
        "payer_id": 2,
    }
    adjustments = [{"group_code": "CO", "reason_code": "50", "amount_cents": 10001}]
    cr = _model(w.claim_response(remit, adjustments=adjustments))
    assert cr.disposition == "denied" and cr.payment is None and cr.processNote[0].text == "CO-50: 100.01"

    shared = [
        w.practice({"id": 1, "name": "Clinic", "tax_id": "123456789"}),
        w.payer({"id": 2, "name": "Acme", "payer_id": "60054", "phone": "800-555-0100", "city": "Hartford"}),
        w.location({"id": 2, "org_id": 1, "name": "Main", "tz": "America/Chicago", "npi": "1234567893"}),
        w.practitioner(
            {"id": 1, "first_name": "A", "last_name": "B", "credentials": "MD", "npi": "1234567893", "active": True}
        ),
        w.practitioner_role({"provider_id": 1, "location_id": 2, "org_id": 1, "taxonomy": "207Q00000X", "active": 1}),
        w.schedule({"provider_id": 1, "location_id": 2, "active": False}),
    ]
    models = [_model(r) for r in shared]
    assert models[2].extension[0].valueCode == "America/Chicago"
    assert models[3].identifier[0].system == w.NPI_SYSTEM
    bundle = w.collection(shared, bundle_id="b", timestamp=T0)
    assert len(_model(bundle).entry) == len(shared)
    found = _model(w.searchset(shared[:2], base="http://x/fhir", self_url="http://x/fhir/Organization"))
    assert found.total == 2 and found.entry[0].fullUrl == "http://x/fhir/Organization/org-1"
    assert _model(w.operation_outcome("not_found", "no Patient 4")).issue[0].code == "not-found"
    _model(w.capability_statement(software_version="0.1.0", base="http://x/fhir", date=dt.date(2026, 3, 9)))


# ---- the demo clinic, exported -------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_home(demo_template, tmp_path_factory) -> Path:
    return copy_demo(demo_template, tmp_path_factory.mktemp("fhir-export") / "demo-clinic")


@pytest.fixture(scope="module")
def run(demo_home) -> Iterator:
    """run(*args) runs the CLI in-process on the module's copy of the demo clinic."""
    from typer.testing import CliRunner

    from hpms.cli import app
    from hpms.db import dispose_engines

    env: dict[str, str | None] = {var: None for var in ENV_VARS}
    env["HPMS_HOME"] = str(demo_home)

    def invoke(*args: str):
        return CliRunner().invoke(app, list(args), env=env)

    yield invoke
    dispose_engines()


def _references(value, into: set[str]) -> None:
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            into.add(value["reference"])
        for v in value.values():
            _references(v, into)
    elif isinstance(value, list):
        for v in value:
            _references(v, into)


def test_the_demo_clinic_exports_as_valid_ndjson(run, tmp_path):
    out = tmp_path / "bulk"
    result = ok(run("fhir", "export", "-o", str(out), "--json"))
    assert result["format"] == "ndjson" and result["ssn_included"] is False
    assert sorted(Path(f).name for f in result["files"]) == sorted(f"{t}.ndjson" for t in w.RESOURCE_TYPES)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    keys: set[str] = set()
    refs: set[str] = set()
    for kind in w.RESOURCE_TYPES:
        path = out / f"{kind}.ndjson"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == result["counts"][kind], kind
        ids = set()
        for line in lines:
            resource = json.loads(line)
            model = w.validate(resource)
            assert model.get_resource_type() == kind
            ids.add(resource["id"])
            _references(resource, refs)
        assert len(ids) == len(lines), f"{kind}: ids repeat"
        keys |= {f"{kind}/{i}" for i in ids}
    assert refs - keys == set(), "references to resources the export does not hold"
    counts = result["counts"]
    assert counts["Patient"] == result["patients"] >= 60
    assert counts["Organization"] == 5  # the practice and the demo's four payers
    assert all(counts[k] > 0 for k in w.RESOURCE_TYPES)
    assert w.SSN_SYSTEM not in (out / "Patient.ndjson").read_text(encoding="utf-8")
    first = json.loads((out / "Patient.ndjson").read_text(encoding="utf-8").splitlines()[0])
    assert first["identifier"][0] == {
        "system": w.MRN_SYSTEM,
        "value": "0100001",
        "type": {"coding": [{"system": w.IDENTIFIER_TYPE, "code": "MR"}]},
        "use": "usual",
    }
    npis = [json.loads(x) for x in (out / "Practitioner.ndjson").read_text(encoding="utf-8").splitlines()]
    assert all(p["identifier"][0]["system"] == w.NPI_SYSTEM for p in npis)


def test_one_bundle_per_patient_holds_what_it_points_to(run, tmp_path):
    out = tmp_path / "bundles"
    result = ok(run("fhir", "export", "--patient", "0100001", "--format", "bundle", "-o", str(out), "--json"))
    assert result["patients"] == 1 and [Path(f).name for f in result["files"]] == ["Patient-1.json"]
    bundle = json.loads((out / "Patient-1.json").read_text(encoding="utf-8"))
    model = w.validate(bundle)
    assert model.type == "collection"
    held = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    refs: set[str] = set()
    _references(bundle, refs)
    assert refs <= held
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Appointment", "Practitioner", "Location", "Organization"} <= kinds
    patients = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert [p["id"] for p in patients] == ["1"]
    for e in bundle["entry"]:  # nobody else's records
        r = e["resource"]
        named = [r[k]["reference"] for k in ("subject", "patient", "beneficiary") if k in r]
        named += [p["actor"]["reference"] for p in r.get("participant", []) if "actor" in p]
        assert {x for x in named if x.startswith("Patient/")} <= {"Patient/1"}


def test_since_keeps_what_changed_only(run, tmp_path):
    out = tmp_path / "later"
    result = ok(run("fhir", "export", "--since", "2100-01-01", "-o", str(out), "--json"))
    counts = result["counts"]
    assert result["patients"] == 0
    assert all(counts[k] == 0 for k in ("Patient", "Coverage", "Appointment", "Encounter", "Claim", "ClaimResponse"))
    assert counts["Practitioner"] == 3  # the practice's own resources always go
    assert (out / "Patient.ndjson").read_text() == ""
    recent = ok(run("fhir", "export", "--since", "-1", "-o", str(tmp_path / "recent"), "--json"))
    assert recent["counts"]["Patient"] == recent["patients"] >= 60  # the demo was built today


def test_pages_of_a_few_rows_export_the_same(run, tmp_path, monkeypatch):
    """The export reads each type a page at a time: small pages give the same files."""
    from hpms.services.interop import fhir_export

    whole = ok(run("fhir", "export", "-o", str(tmp_path / "whole"), "--json"))
    monkeypatch.setattr(fhir_export, "CHUNK", 7)
    paged = ok(run("fhir", "export", "-o", str(tmp_path / "paged"), "--json"))
    assert paged["counts"] == whole["counts"]
    for kind in w.RESOURCE_TYPES:
        name = f"{kind}.ndjson"
        assert (tmp_path / "paged" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), kind
    bundles = ok(run("fhir", "export", "--since", "-1", "--format", "bundle", "-o", str(tmp_path / "b"), "--json"))
    assert bundles["patients"] == whole["patients"] == len(list((tmp_path / "b").iterdir()))
