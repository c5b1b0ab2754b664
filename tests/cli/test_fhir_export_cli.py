"""`hpms fhir export` on the demo clinic: bad input names its option and leaves nothing behind,
only an admin may export and only one who may reveal SSNs gets them, one audit event names the
patients exported, the files are 0600."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpms.interop.fhir import writing as w
from tests.cli.helpers import error_line, ok
from tests.conftest import ENV_VARS, copy_demo
from tests.services.helpers import audit_rows, last_seq, scalar


@pytest.fixture(scope="module")
def demo_home(demo_template, tmp_path_factory) -> Path:
    return copy_demo(demo_template, tmp_path_factory.mktemp("fhir-cli") / "demo-clinic")


@pytest.fixture(scope="module")
def demo_settings(demo_home):
    from hpms.config import load_settings

    return load_settings(env={}, home=demo_home)


@pytest.fixture(scope="module")
def run(demo_home) -> Iterator:
    """run(*args, env=...) runs the CLI in-process on the module's copy of the demo clinic."""
    from typer.testing import CliRunner

    from hpms.cli import app
    from hpms.db import dispose_engines

    base: dict[str, str | None] = {var: None for var in ENV_VARS}
    base["HPMS_HOME"] = str(demo_home)

    def invoke(*args: str, env: dict[str, str] | None = None):
        return CliRunner().invoke(app, list(args), env={**base, **(env or {})})

    yield invoke
    dispose_engines()


@pytest.mark.parametrize(
    "args, code, words",
    [
        (("--patient", "0999999"), 3, ("--patient", "'0999999'")),
        (("--since", "2026-02-30"), 2, ("--since", "'2026-02-30'")),
        (("--since", "yesterday-ish"), 2, ("--since", "'yesterday-ish' is not a date")),
        (("--format", "xml"), 2, ("--format", "'xml'", "ndjson, bundle")),
    ],
)
def test_bad_input_names_the_option_and_writes_nothing(run, demo_settings, tmp_path, args, code, words):
    out = tmp_path / "deep" / "export"
    before = last_seq(demo_settings)
    error_line(run("fhir", "export", *args, "-o", str(out)), code, *words)
    assert not (tmp_path / "deep").exists()
    assert last_seq(demo_settings) == before  # no export event (nothing was exported)


def test_an_out_that_is_a_file_is_refused(run, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("keep")
    error_line(run("fhir", "export", "-o", str(target)), 2, "--out", "not a directory")
    assert target.read_text() == "keep"


def test_only_an_admin_exports_and_ssns_take_the_right_to_reveal_them(run, demo_settings, tmp_path):
    token = run("users", "token", "biller")
    assert token.exit_code == 0, token.stderr
    as_biller = {"HPMS_USER": "biller", "HPMS_TOKEN": token.stdout.strip()}
    out = tmp_path / "x"
    error_line(run("fhir", "export", "-o", str(out), env=as_biller), 5, "export records as FHIR", "admin")
    assert not out.exists()
    denied = audit_rows(demo_settings, last_seq(demo_settings) - 1)
    assert [(e["action"], e["entity"], e["entity_id"]) for e in denied] == [("denied", "permission", "fhir.export")]


def test_ssns_only_with_include_ssn_and_one_audit_event(run, demo_settings, tmp_path):
    with_ssn = scalar(demo_settings, "SELECT count(*) FROM patient WHERE ssn_enc IS NOT NULL")
    assert with_ssn > 0
    before = last_seq(demo_settings)
    plain = ok(run("fhir", "export", "-o", str(tmp_path / "plain"), "--json"))
    text = (tmp_path / "plain" / "Patient.ndjson").read_text(encoding="utf-8")
    assert w.SSN_SYSTEM not in text
    full = ok(run("fhir", "export", "-o", str(tmp_path / "full"), "--include-ssn", "--json"))
    assert full["ssn_included"] is True and full["counts"] == plain["counts"]
    patients = [json.loads(x) for x in (tmp_path / "full" / "Patient.ndjson").read_text(encoding="utf-8").splitlines()]
    ssns = [i["value"] for p in patients for i in p["identifier"] if i["system"] == w.SSN_SYSTEM]
    assert len(ssns) == with_ssn and all(len(s) == 11 and s[3] == s[6] == "-" for s in ssns)
    for path in (tmp_path / "full").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    events = [e for e in audit_rows(demo_settings, before) if e["action"] == "export"]
    assert [(e["entity"], e["username"]) for e in events] == [("fhir", events[0]["username"])] * 2
    every = sorted(p["id"] for p in patients)
    assert [sorted(map(str, e["patient_ids_list"])) for e in events] == [sorted(every)] * 2
    assert [e["fields_list"] for e in events] == [["member_id"], ["member_id", "ssn"]]
    assert all("Patient" in e["detail"] for e in events)


def test_json_names_the_counts_and_the_files(run, tmp_path):
    out = tmp_path / "one"
    result = ok(run("fhir", "export", "--patient", "0100001", "-o", str(out), "--json"))
    assert result["patients"] == 1 and result["counts"]["Patient"] == 1
    assert {Path(f) for f in result["files"]} == set(out.iterdir())
    plain = run("fhir", "export", "--patient", "0100001", "-o", str(out))
    assert plain.exit_code == 0 and plain.stdout == ""
    assert plain.stderr.startswith(f"exported 1 patient(s) to {out} (ndjson): ")
