"""`hpms codes`: search, show, modifiers and the HCPCS / CPT imports through the CLI."""

from __future__ import annotations

import json

from tests.services.test_codes import cms, write


def test_show_icd10(cli):
    r = cli("codes", "show", "E11.9", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["system"], out["code"], out["display"], out["billable"]) == ("ICD-10-CM", "E119", "E11.9", True)
    assert "without the dot" in out["note"]
    r = cli("codes", "show", "e11")
    assert r.exit_code == 0, r.stderr
    assert "Type 2 diabetes mellitus" in r.stdout and "not billable" in r.stdout
    assert r.stdout.splitlines()[0].split() == ["system", "ICD-10-CM"]


def test_show_procedures_and_unknown_codes(cli):
    r = cli("codes", "show", "99213", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["description"] is None and "import-cpt" in json.loads(r.stdout)["note"]
    r = cli("codes", "show", "J1100", "--system", "icd10", "--json")
    assert json.loads(r.stdout)["display"] == "J11.00"
    r = cli("codes", "show", "E11.99")
    assert r.exit_code == 3 and "no code 'E11.99'" in r.stderr
    r = cli("codes", "show", "E11.9", "--system", "loinc")
    assert r.exit_code == 2 and "system" in r.stderr


def test_search(cli):
    r = cli("codes", "search", "type 2 diabetes kidney", "--limit", "3", "--json")
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 3 and all(c["system"] == "ICD-10-CM" for c in rows)
    r = cli("codes", "search", "wellness")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split("\t") == ["System", "Code", "Description", "Billable"]
    assert lines[1].startswith("HCPCS\tG0438\tAnnual wellness visit")


def test_modifiers(cli):
    r = cli("codes", "modifiers", "--json")
    assert r.exit_code == 0, r.stderr
    mods = {m["modifier"]: m["description"] for m in json.loads(r.stdout)}
    assert mods["25"].startswith("Significant") and "RT" in mods and "XU" in mods


def test_import_hcpcs_dry_run_then_real(cli, counts, tmp_path):
    path = write(
        tmp_path / "HCPC2026_APR_ANWEB.txt",
        [
            cms("A0021", "Ambulance service, outside state per mile, transport (medicaid only)"),
            cms("G0439", "Annual wellness visit, subsequent"),
        ],
    )
    r = cli("codes", "import-hcpcs", str(path), "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert "would import 2 HCPCS code(s) from cms-fixed-width: 2 new" in r.stderr
    assert counts("procedure_code") == {"procedure_code": 0}
    r = cli("codes", "import-hcpcs", str(path), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["added"] == 2
    assert counts("procedure_code") == {"procedure_code": 2}
    r = cli("codes", "show", "A0021", "--json")
    assert json.loads(r.stdout)["source"] == "imported"


def test_import_bad_rows_exit_2_and_write_nothing(cli, counts, tmp_path):
    path = tmp_path / "hcpcs.csv"
    path.write_text("code,description\nG0439,Wellness\n99213,Office visit\nJ1885,\n", encoding="utf-8")
    before = counts("procedure_code", "audit_event")
    r = cli("codes", "import-hcpcs", str(path))
    assert r.exit_code == 2
    assert f"{path}:3: code: 99213 is a CPT code" in r.stderr
    assert f"{path}:4: description: empty" in r.stderr
    assert "nothing imported" in r.stderr
    r = cli("codes", "import-hcpcs", str(path), "--json")
    assert r.exit_code == 2 and [e["line"] for e in json.loads(r.stdout)["errors"]] == [3, 4]
    assert counts("procedure_code", "audit_event") == before


def test_import_cpt_and_permissions(cli, as_user, counts, tmp_path):
    path = tmp_path / "cpt.csv"
    path.write_text("code,description\n99213,Licensed descriptor\n", encoding="utf-8")
    desk = as_user("desk", "front_desk")
    r = cli("codes", "import-cpt", str(path), env=desk)
    assert r.exit_code == 5 and "import code sets" in r.stderr
    assert cli("codes", "show", "I10", env=desk).exit_code == 0
    assert counts("procedure_code") == {"procedure_code": 0}
    r = cli("codes", "import-cpt", str(path), env=as_user("bill", "biller"))
    assert r.exit_code == 0, r.stderr
    assert "imported 1 CPT code(s) from csv: 1 new" in r.stderr
    r = cli("codes", "show", "99213", "--json")
    assert json.loads(r.stdout)["description"] == "Licensed descriptor"
