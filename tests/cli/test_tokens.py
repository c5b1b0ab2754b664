"""`hpms tokens` on both backends: a token is shown once and stored only as its SHA-256, bad
input names its option and writes nothing, only an admin makes and revokes tokens; and a small
FHIR export on the same backend (the export's paged and union queries)."""

from __future__ import annotations

import hashlib
import json

from tests.cli.helpers import error_line, ok, with_denied
from tests.services.conftest import payer, register  # noqa: F401 - fixtures
from tests.services.helpers import audit_rows, last_seq, query


def test_create_list_revoke(cli, settings, counts):
    before = last_seq(settings)
    made = ok(cli("tokens", "create", "--name", "ehr-sync", "--role", "Provider", "--expires", "30", "--json"))
    token = made["token"]
    assert token.startswith("hpmsapi_") and len(token) > 40
    assert made["role"] == "provider" and made["state"] == "active" and made["expires_at"]
    stored = query(settings, "SELECT token_hash, role, expires_at, created_by FROM api_token")
    assert stored[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps([{k: str(v) for k, v in r.items()} for r in stored])
    listed = ok(cli("tokens", "list", "--json"))
    assert [(t["name"], t["state"], t["token"]) for t in listed] == [("ehr-sync", "active", None)]
    plain = cli("tokens", "create", "--name", "forever", "--role", "service", "--expires", "0")
    assert plain.exit_code == 0 and plain.stdout.startswith("hpmsapi_") and "no expiry" in plain.stderr
    assert ok(cli("tokens", "revoke", str(made["id"]), "--json"))["state"] == "revoked"
    error_line(cli("tokens", "revoke", str(made["id"])), 4, "ID", "revoked already")
    events = [(e["action"], e["entity"]) for e in audit_rows(settings, before)]
    assert events == [("create", "api_token"), ("create", "api_token"), ("revoke", "api_token")]

    snapshot = counts("api_token", "audit_event")
    error_line(cli("tokens", "create", "--name", "ehr-sync", "--role", "provider"), 4, "--name", "already exists")
    error_line(cli("tokens", "create", "--name", "x", "--role", "nurse"), 2, "--role", "unknown role 'nurse'")
    error_line(cli("tokens", "create", "--name", "x", "--role", "provider", "--expires", "9999"), 2, "--expires")
    error_line(cli("tokens", "create", "--name", " ", "--role", "provider"), 2, "--name", "required")
    error_line(cli("tokens", "revoke", "77"), 3, "ID", "'77'")
    assert counts("api_token", "audit_event") == snapshot


def test_only_an_admin_makes_tokens(cli, counts, as_user):
    env = as_user("desk", "front_desk")
    before = counts("api_token", "audit_event")
    line = error_line(cli("tokens", "create", "--name", "x", "--role", "admin", env=env), 5, "create or revoke API")
    assert "admin role" in line
    error_line(cli("tokens", "list", env=env), 5, "list the API tokens", "admin or auditor")
    assert counts("api_token", "audit_event") == with_denied(before, 2)


def test_an_export_on_this_backend(cli, settings, register, payer, tmp_path):  # noqa: F811
    from hpms.interop.fhir import writing as w

    kept = register(first_name="Ann", last_name="Lee", ssn="123-45-6789")
    cov = ok(cli("coverage", "add", kept.mrn, "--payer", "ACME1", "--member-id", "W99", "--json"))
    assert cov["member_id"] == "W99"
    result = ok(cli("fhir", "export", "--include-ssn", "--format", "bundle", "-o", str(tmp_path / "b"), "--json"))
    assert result["patients"] == 1 and result["counts"]["Coverage"] == 1
    bundle = json.loads((tmp_path / "b" / f"Patient-{kept.id}.json").read_text(encoding="utf-8"))
    w.validate(bundle)
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert {(i["system"], i["value"]) for i in patient["identifier"]} == {
        (w.MRN_SYSTEM, kept.mrn),
        (w.SSN_SYSTEM, "123-45-6789"),
    }
    coverage = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Coverage")
    assert coverage["subscriberId"] == "W99" and coverage["payor"] == [{"reference": f"Organization/payer-{payer.id}"}]
    later = ok(cli("fhir", "export", "--since", "+1", "--format", "bundle", "-o", str(tmp_path / "none"), "--json"))
    assert later["patients"] == 0 and list((tmp_path / "none").iterdir()) == []
