"""`hpms encounters`: create (from an appointment or by hand), show, update, sign, list and the
superbill (text and PDF files), with every bad input's exit code and nothing written.

The clinic and its appointments are set up through the services; the CLI runs on the real
clock, so visits are booked next year."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.cli.helpers import error_line, ok, tsv, with_denied

YEAR = dt.date.today().year + 1
DAY = dt.date(YEAR, 6, 1) + dt.timedelta(days=(7 - dt.date(YEAR, 6, 1).weekday()) % 7)  # a Monday in June
NPI = "1234567893"
TABLES = ("encounter", "encounter_diagnosis", "encounter_line", "audit_event")
ENCOUNTER_KEYS = {
    "id",
    "status",
    "service_date",
    "place_of_service",
    "patient_id",
    "patient",
    "mrn",
    "dob",
    "provider_id",
    "provider",
    "provider_npi",
    "location_id",
    "location",
    "location_npi",
    "appointment_id",
    "diagnoses",
    "lines",
    "total",
    "signed_at",
    "signed_by",
    "billed_at",
    "created_at",
    "updated_at",
    "version",
}
DX13 = "E11.9,I10,E78.5,Z00.00,J06.9,M54.50,R51.9,Z23,E66.9,K21.9,F41.1,N39.0,R10.9"


@pytest.fixture
def clinic(ctx_for):
    """Dr Liam Okafor (MO-FR at Main), patient Pat Tester, fees for 99213 (and -25), 36415; three
    visits next June: 09:00 booked, 10:00 cancelled, 11:00 no-show. Returns a dict of ids."""
    from hpms.services.billing import fees
    from hpms.services.people import patients
    from hpms.services.scheduling import appointments, availability, resources

    start = dt.datetime(YEAR, 1, 4, 12, tzinfo=dt.UTC)
    after = dt.datetime.combine(DAY, dt.time(20), tzinfo=dt.UTC)
    with ctx_for(clock=lambda: start) as ctx:
        prov = resources.add_provider(ctx, first_name="Liam", last_name="Okafor", credentials="MD", npi=NPI)
        visit = resources.add_type(ctx, name="Follow-up", duration_min=30)
        availability.set_hours(ctx, "Okafor", days="MO-FR", start="08:00", end="17:00", effective_from=f"{YEAR}-01-01")
        pat = patients.register(ctx, first_name="Pat", last_name="Tester", dob="1980-01-02")
        fees.set_fee(ctx, "99213", "125.00")
        fees.set_fee(ctx, "99213", "140.00", modifier="25")
        fees.set_fee(ctx, "36415", "12.50")
        ids = {}
        for name, hhmm in (("booked", "09:00"), ("cancelled", "10:00"), ("no_show", "11:00")):
            ids[name] = (
                appointments.book(ctx, patient=pat.mrn, provider=prov.id, type=visit.id, at=f"{DAY} {hhmm}")
                .booked[0]
                .id
            )
        appointments.cancel(ctx, ids["cancelled"], reason="patient called")
    with ctx_for(clock=lambda: after) as ctx:
        appointments.transition(ctx, ids["no_show"], "noshow")
    return {**ids, "mrn": pat.mrn, "patient": pat.id, "provider": prov.id}


def create(cli, *args, env=None):
    return cli("encounters", "create", *args, env=env)


# ---- happy paths ---------------------------------------------------------------------------


def test_create_show_update_sign_list(cli, clinic, counts):
    before = counts(*TABLES)
    out = ok(
        create(
            cli,
            "--appointment",
            str(clinic["booked"]),
            "--dx",
            "E11.9,I10",
            "--proc",
            "99213:25x1:1,2",
            "--proc",
            "36415:x2:1",
            "--json",
        )
    )
    assert set(out) == ENCOUNTER_KEYS
    assert out["status"] == "draft" and out["service_date"] == DAY.isoformat() and out["place_of_service"] == "11"
    assert out["provider"] == "Liam Okafor, MD" and out["provider_npi"] == NPI and out["mrn"] == clinic["mrn"]
    assert [(d["code"], d["dotted"]) for d in out["diagnoses"]] == [("E119", "E11.9"), ("I10", "I10")]
    assert [(ln["code"], ln["modifiers"], ln["units"], ln["pointers"], ln["charge"]) for ln in out["lines"]] == [
        ("99213", ["25"], 1, [1, 2], "140.00"),
        ("36415", [], 2, [1], "25.00"),
    ]
    assert out["total"] == "165.00"
    after = counts(*TABLES)
    assert after == {
        "encounter": before["encounter"] + 1,
        "encounter_diagnosis": before["encounter_diagnosis"] + 2,
        "encounter_line": before["encounter_line"] + 2,
        "audit_event": before["audit_event"] + 1,
    }
    eid = str(out["id"])

    shown = cli("encounters", "show", eid)
    assert shown.exit_code == 0
    assert "Type 2 diabetes mellitus without complications" in shown.stdout and "165.00" in shown.stdout
    assert ok(cli("encounters", "show", eid, "--json"))["id"] == out["id"]

    upd = ok(
        cli(
            "encounters",
            "update",
            eid,
            "--dx",
            "E11.9",
            "--dx",
            "I10,E78.5",
            "--proc",
            "99213::1,3",
            "--expected-version",
            "1",
            "--json",
        )
    )
    assert upd["version"] == 2 and [d["dotted"] for d in upd["diagnoses"]] == ["E11.9", "I10", "E78.5"]
    assert upd["total"] == "125.00"
    error_line(cli("encounters", "update", eid, "--dx", "I10", "--expected-version", "1"), 4, "changed since version 1")

    signed = ok(cli("encounters", "sign", eid, "--json"))
    assert signed["status"] == "signed" and signed["signed_by"] and signed["signed_at"]
    before = counts(*TABLES)
    error_line(cli("encounters", "update", eid, "--dx", "I10"), 4, f"encounter {eid} is signed")
    error_line(cli("encounters", "sign", eid), 4, "only a draft can be signed")
    assert counts(*TABLES) == before

    by_hand = create(
        cli,
        "--patient",
        clinic["mrn"],
        "--provider",
        "Okafor",
        "--date",
        "2026-06-10",
        "--dx",
        "I10",
        "--proc",
        "99213",
    )
    assert by_hand.exit_code == 0, by_hand.stderr
    assert by_hand.stdout.strip().isdigit() and "created encounter" in by_hand.stderr
    listed = ok(cli("encounters", "list", "--json"))
    assert [(r["id"], r["status"], r["total"]) for r in listed] == [
        (int(by_hand.stdout), "draft", "125.00"),
        (out["id"], "signed", "125.00"),
    ]
    assert [r["id"] for r in ok(cli("encounters", "list", "--status", "signed", "--json"))] == [out["id"]]
    assert [r["id"] for r in ok(cli("encounters", "list", "--from", str(DAY), "--json"))] == [out["id"]]
    header, rows = tsv(cli("encounters", "list", "--patient", clinic["mrn"]).stdout)
    assert header == ["ID", "Date", "Status", "Patient", "MRN", "Provider", "Location", "Lines", "Total"]
    assert len(rows) == 2 and rows[1][8] == "125.00"
    error_line(cli("encounters", "list", "--status", "open"), 2, "--status")


def test_superbill_files(cli, clinic, tmp_path):
    eid = ok(
        create(cli, "--appointment", str(clinic["booked"]), "--dx", "E11.9,I10", "--proc", "99213:25:1,2", "--json")
    )["id"]
    pdf = tmp_path / "superbill.pdf"
    r = cli("encounters", "superbill", str(eid), "-o", str(pdf))
    assert r.exit_code == 0, r.stderr
    assert pdf.read_bytes().startswith(b"%PDF") and f"wrote the pdf superbill of encounter {eid}" in r.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    txt = tmp_path / "superbill.txt"
    assert ok(cli("encounters", "superbill", str(eid), "-o", str(txt), "--json"))["format"] == "text"
    text = txt.read_text(encoding="utf-8")
    for part in (
        "SUPERBILL",
        "Test Clinic",
        f"NPI {NPI}",
        "DOB 1980-01-02",
        f"MRN {clinic['mrn']}",
        "Essential (primary) hypertension",
        "140.00",
        "Total",
    ):
        assert part in text, part
    forced = tmp_path / "superbill.out"
    assert cli("encounters", "superbill", str(eid), "-o", str(forced), "--format", "pdf").exit_code == 0
    assert forced.read_bytes().startswith(b"%PDF")
    shown = cli("encounters", "superbill", str(eid))
    assert shown.exit_code == 0 and shown.stdout == text
    as_json = ok(cli("encounters", "superbill", str(eid), "--format", "pdf", "--json"))
    assert as_json["format"] == "pdf" and as_json["pdf_base64"].startswith("JVBERi")  # %PDF
    error_line(cli("encounters", "superbill", str(eid), "--format", "docx"), 2, "--format")
    missing = str(tmp_path / "no" / "x.pdf")
    error_line(cli("encounters", "superbill", str(eid), "-o", missing), 2, "--output", "does not exist")
    error_line(cli("encounters", "superbill", "999"), 3, "no encounter '999'")


# ---- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--dx", "E11.99", "--proc", "99213"], 2, ["--dx", "unknown ICD-10-CM code 'E11.99'"]),
        (["--dx", "E11", "--proc", "99213"], 2, ["--dx", "E11 (Type 2 diabetes mellitus) is a category"]),
        (["--dx", DX13, "--proc", "99213"], 2, ["--dx", "13 diagnoses", "at most 12"]),
        (["--dx", "E11.9", "--proc", "99213:2"], 2, ["--proc", "pointer 2 refers to no diagnosis (1 given)"]),
        (["--dx", "E11.9,I10,E78.5,Z23,J06.9", "--proc", "99213::1,2,3,4,5"], 2, ["--proc", "5 diagnosis pointers"]),
        (["--dx", "E11.9", "--proc", "99213:25,59,76,77,91:1"], 2, ["--proc", "5 modifiers"]),
        (["--dx", "E11.9", "--proc", "99213:x0:1"], 2, ["--proc", "units must be at least 1 (got 0)"]),
        (["--dx", "E11.9", "--proc", "99213:x-2:1"], 2, ["--proc", "units must be at least 1 (got -2)"]),
        (["--dx", "E11.9", "--proc", "A0999"], 2, ["--proc", "unknown procedure code 'A0999'"]),
        (["--dx", "E11.9", "--proc", "99214"], 2, ["--proc", "no fee for 99214", "hpms fees set 99214 AMOUNT"]),
        (["--dx", "E11.9", "--proc", "99213", "--pos", "ab"], 2, ["--place-of-service"]),
    ],
)
def test_bad_input(cli, clinic, counts, args, code, words):
    before = counts(*TABLES)
    error_line(create(cli, "--appointment", str(clinic["booked"]), *args), code, *words)
    assert counts(*TABLES) == before


def test_appointment_states(cli, clinic, counts):
    before = counts(*TABLES)
    error_line(
        create(cli, "--appointment", str(clinic["cancelled"]), "--dx", "I10", "--proc", "99213"),
        4,
        "--appointment",
        "is cancelled",
    )
    error_line(
        create(cli, "--appointment", str(clinic["no_show"]), "--dx", "I10", "--proc", "99213"), 4, "is a no-show"
    )
    error_line(create(cli, "--appointment", "999", "--dx", "I10"), 3, "--appointment", "no appointment")
    error_line(create(cli, "--appointment", str(clinic["booked"]), "--patient", clinic["mrn"]), 2, "--patient")
    error_line(create(cli, "--dx", "I10"), 2, "--patient", "is required")
    assert counts(*TABLES) == before
    first = ok(create(cli, "--appointment", str(clinic["booked"]), "--dx", "I10", "--proc", "99213", "--json"))
    before = counts(*TABLES)
    error_line(
        create(cli, "--appointment", str(clinic["booked"]), "--dx", "I10", "--proc", "99213"),
        4,
        f"already has encounter {first['id']}",
    )
    assert counts(*TABLES) == before


def test_sign_needs_a_diagnosis_and_a_line(cli, clinic, counts):
    eid = ok(create(cli, "--appointment", str(clinic["booked"]), "--json"))["id"]
    before = counts(*TABLES)
    error_line(cli("encounters", "sign", str(eid)), 2, "--dx", "has no diagnosis")
    ok(cli("encounters", "update", str(eid), "--dx", "I10", "--json"))
    error_line(cli("encounters", "sign", str(eid)), 2, "--proc", "has no procedure line")
    assert counts(*TABLES)["encounter"] == before["encounter"]


# ---- permissions and help ------------------------------------------------------------------


def test_permissions(cli, clinic, as_user, counts):
    eid = str(ok(create(cli, "--appointment", str(clinic["booked"]), "--dx", "I10", "--proc", "99213", "--json"))["id"])
    desk = as_user("desk", "front_desk")
    audrey = as_user("audrey", "auditor")
    doc = as_user("doc", "provider")
    before = counts(*TABLES)
    error_line(
        create(cli, "--patient", clinic["mrn"], "--provider", "Okafor", "--date", "2026-06-10", env=desk),
        5,
        "change encounters",
    )
    error_line(cli("encounters", "sign", eid, env=desk), 5, "sign encounters")
    error_line(cli("encounters", "show", eid, env=audrey), 5, "read encounters")
    error_line(cli("encounters", "superbill", eid, env=audrey), 5, "read encounters")
    assert counts(*TABLES) == with_denied(before, 4)
    assert ok(cli("encounters", "show", eid, "--json", env=desk))["id"] == int(eid)
    assert ok(cli("encounters", "sign", eid, "--json", env=doc))["signed_by"] == "doc"


def test_help_documents_the_line_syntax(cli):
    r = cli("encounters", "create", "--help")
    assert r.exit_code == 0
    text = " ".join(r.stdout.split())
    for part in ("CODE[:MODS[xUNITS]][:POINTERS]", "99213:25x1:1,2", "99213:1 (= 99213::1)", "Example:"):
        assert part in text, part
