"""`hpms eligibility request|import|list` through the CLI: JSON on stdout, one-line errors and
exit codes, nothing written on refusal."""

from __future__ import annotations

import pytest

from tests.cli.helpers import error_line, ok, tsv
from tests.conftest import count_rows
from tests.eligibility_fixtures import active_loop, answer_271, answer_from_270, setup_practice


@pytest.fixture
def practice(ctx_for, register):
    return setup_practice(ctx_for, register)


@pytest.fixture
def register(ctx_for):
    from hpms.services.people import patients
    from tests.services.conftest import fixed_clock

    def make(**data):
        data.setdefault("dob", "1980-01-01")
        with ctx_for(clock=fixed_clock) as ctx:
            return patients.register(ctx, **data)

    return make


def test_request_import_list(cli, settings, practice, tmp_path):
    out = tmp_path / "tomorrow.270"
    req = ok(cli("eligibility", "request", "--date", "2026-06-16", "--out", str(out), "--json"))
    assert (req["checks"], req["patients"], req["payers"], req["service_date"], req["path"]) == (
        2,
        2,
        2,
        "2026-06-16",
        str(out),
    )
    assert req["skipped"] == [
        {"patient_id": practice.nora, "mrn": practice.nora_mrn, "reason": "no active coverage on 2026-06-16"}
    ]
    assert out.read_text().startswith("ISA*00*") and "ST*270*0001*005010X279A1~" in out.read_text()
    assert count_rows(settings, "eligibility_check") == 2

    pat_check = req["check_ids"][0]
    answer = tmp_path / "answer.271"
    answer.write_text(answer_271(active_loop(str(pat_check), "M123456", "DOE", "PAT")))
    imp = ok(cli("eligibility", "import", str(answer), "--json"))
    assert (
        imp["answers"],
        imp["updated"],
        imp["unchanged"],
        imp["recorded"],
        imp["unmatched"],
        imp["statuses"],
        imp["check_ids"],
    ) == (1, 1, 0, 0, [], {"active": 1}, [pat_check])
    again = ok(cli("eligibility", "import", str(answer), "--json"))
    assert (again["updated"], again["unchanged"]) == (0, 1)

    rows = ok(cli("eligibility", "list", "--patient", practice.pat_mrn, "--json"))
    assert [
        (
            r["id"],
            r["status"],
            r["plan_name"],
            r["copay"],
            r["coinsurance_percent"],
            r["deductible_remaining"],
            r["plan_end"],
        )
        for r in rows
    ] == [(pat_check, "active", "GOLD PLAN", "25.00", "20", "750.50", "2026-12-31")]
    r = cli("eligibility", "list", "--date", "2026-06-16")
    assert r.exit_code == 0, r.stderr
    header, table = tsv(r.stdout)
    assert header[:7] == ["ID", "Date", "MRN", "Patient", "Payer", "Status", "Plan"]
    assert sorted((row[3], row[5]) for row in table) == [("Kid Doe", "pending"), ("Pat Doe", "active")]

    r = cli("eligibility", "import", str(answer))
    assert r.exit_code == 0 and r.stdout == "1 answer(s): 0 updated, 1 unchanged, 0 recorded, 0 unmatched (1 active)\n"


def test_a_two_payer_answer_with_a_bom_and_no_traces(cli, settings, practice, tmp_path):
    """The 271 for hpms's own 270 (two payers), saved with a byte order mark and without the
    echoed traces: each answer still finds its check; the same file again changes nothing."""
    out = tmp_path / "tomorrow.270"
    req = ok(cli("eligibility", "request", "--date", "2026-06-16", "--out", str(out), "--json"))
    assert req["reference"] == f"{req['isa_control']:09d}-20260616"
    answers = {("ACME1", "PAT"): ["EB*1**30**ACME GOLD"], ("BETA2", "KID"): ["EB*6**30**BETA BASIC"]}
    answer = tmp_path / "answer.271"
    answer.write_bytes(b"\xef\xbb\xbf" + answer_from_270(out.read_text(), answers, traces="none").encode())
    imp = ok(cli("eligibility", "import", str(answer), "--json"))
    assert (imp["updated"], imp["unmatched"], imp["statuses"], imp["check_ids"]) == (
        2,
        [],
        {"active": 1, "inactive": 1},
        req["check_ids"],
    )
    r = cli("eligibility", "import", str(answer))
    assert (
        r.exit_code == 0
        and r.stdout == "2 answer(s): 0 updated, 2 unchanged, 0 recorded, 0 unmatched (1 active, 1 inactive)\n"
    )
    rows = ok(cli("eligibility", "list", "--date", "2026-06-16", "--json"))
    assert sorted((x["patient"], x["payer"], x["status"], x["plan_name"]) for x in rows) == [
        ("Kid Doe", "Beta Care", "inactive", "BETA BASIC"),
        ("Pat Doe", "Acme Health", "active", "ACME GOLD"),
    ]
    binary = tmp_path / "scan.271"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    error_line(
        cli("eligibility", "import", str(binary)),
        2,
        "scan.271 is not a valid 271",
        "NUL characters",
        "nothing imported",
    )
    assert count_rows(settings, "eligibility_check") == 2


def test_plain_request_prints_the_path(cli, practice, tmp_path):
    out = tmp_path / "x.270"
    r = cli("eligibility", "request", "--patient", practice.pat_mrn, "--date", "2026-06-16", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == f"{out}\n" and "asked 1 question(s) about 1 patient(s)" in r.stderr


def test_refusals(cli, settings, practice, tmp_path):
    out = tmp_path / "x.270"
    error_line(
        cli("eligibility", "request", "--date", "2026-06-17", "--out", str(out)), 3, "no appointments on 2026-06-17"
    )
    error_line(cli("eligibility", "request", "--patient", "4242424", "--out", str(out)), 3, "--patient")
    error_line(cli("eligibility", "request", "--date", "soon", "--out", str(out)), 2, "--date")
    error_line(cli("eligibility", "request", "--out", str(out)), 2, "--date")
    assert not out.exists() and count_rows(settings, "eligibility_check") == 0
    r = cli("eligibility", "request", "--date", "2026-06-16")
    assert r.exit_code == 2 and "--out" in r.stderr

    bad = tmp_path / "bad.271"
    bad.write_text("this is not an X12 file")
    error_line(cli("eligibility", "import", str(bad)), 2, "FILE", "expected an ISA segment", "nothing imported")
    text = answer_271(active_loop("1", "M123456", "DOE", "PAT"))
    bad.write_text(text[: text.index("EB*C")])
    error_line(cli("eligibility", "import", str(bad)), 2, "missing SE")
    error_line(cli("eligibility", "import", str(tmp_path / "none.271")), 2, "FILE", "does not exist")
    error_line(cli("eligibility", "list", "--patient", "4242424"), 3, "--patient")
    assert count_rows(settings, "eligibility_check") == 0


def test_unmatched_answers_are_listed(cli, practice, tmp_path):
    answer = tmp_path / "a.271"
    answer.write_text(answer_271(active_loop(None, "X000", "NOBODY", "KNOWN")))
    imp = ok(cli("eligibility", "import", str(answer), "--json"))
    assert [(u["member"], u["name"]) for u in imp["unmatched"]] == [("…X000", "NOBODY, KNOWN")]
    r = cli("eligibility", "import", str(answer))
    assert "0 updated, 0 unchanged, 0 recorded, 1 unmatched" in r.stdout
    assert "unmatched: payer ACME1, NOBODY, KNOWN …X000" in r.stderr


def test_front_desk_may_ask_but_an_auditor_may_not_read(cli, practice, make_user, token_for, tmp_path):
    make_user("desk", "front_desk")
    env = {"HPMS_USER": "desk", "HPMS_TOKEN": token_for("desk")}
    ok(cli("eligibility", "request", "--date", "2026-06-16", "--out", str(tmp_path / "x.270"), "--json", env=env))
    make_user("aud", "auditor")
    error_line(cli("eligibility", "list", env={"HPMS_USER": "aud", "HPMS_TOKEN": token_for("aud")}), 5)


def test_day_sheet_shows_the_latest_eligibility(cli, practice, tmp_path):
    req = ok(cli("eligibility", "request", "--date", "2026-06-16", "--out", str(tmp_path / "x.270"), "--json"))
    answer = tmp_path / "a.271"
    answer.write_text(answer_271([f"TRN*2*{req['check_ids'][0]}*1", "NM1*IL*1*DOE*PAT****MI*M123456", "AAA*Y**75*C"]))
    ok(cli("eligibility", "import", str(answer), "--json"))
    day = ok(cli("appointments", "list", "--date", "2026-06-16", "--json"))
    assert [(a["patient"], a["eligibility"]) for a in day] == [
        ("Pat Doe", "error: subscriber/insured not found"),
        ("Kid Doe", "pending"),
        ("Nora Cover", "not checked"),
    ]
    r = cli("appointments", "list", "--date", "2026-06-16")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header[-1] == "Eligibility"
    assert [(row[5], row[-1]) for row in rows] == [
        ("Pat Doe", "error: subscriber/insured not found"),
        ("Kid Doe", "pending"),
        ("Nora Cover", "not checked"),
    ]


def test_the_day_sheet_goes_without_eligibility_for_who_may_not_read_it(cli, practice, as_user):
    """The service account prints day sheets from cron; eligibility answers are not its to read."""
    nightly = as_user("nightly", "service")
    day = ok(cli("appointments", "list", "--date", "2026-06-16", "--json", env=nightly))
    assert len(day) == 3 and "eligibility" not in day[0]
