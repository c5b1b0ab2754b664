"""Bulk import of patients from CSV (the service; the CLI wraps it)."""

from __future__ import annotations

import csv
import datetime as dt

import pytest

from hpms.errors import ExitCode, ValidationError
from tests.services.conftest import fixed_clock
from tests.services.helpers import audit_rows, last_seq, query, scalar, snapshot

HEADER = ["first_name", "last_name", "dob", "phone", "email", "ssn", "mrn", "consent_sms"]
GOOD = [
    ["Ana", "Müller", "1985-03-14", "(555) 867-5309", "ana@example.org", "287-65-4321", "", "yes"],
    ["Otto", "Mulligan", "07/07/1970", "", "", "", "", ""],
    ["Zoë", "Åberg", "1999-12-31", "+44 20 7946 0958", "", "", "LEGACY-7", "no"],
    ["Jon", "Smith", "2001-01-01", "", "jon@example.org", "", "", ""],
]


def write_csv(path, rows, header=HEADER, encoding="utf-8"):
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _import(ctx_for, path, **kw):
    from hpms.services.people.patient_import import import_csv

    with ctx_for(clock=fixed_clock) as ctx:
        return import_csv(ctx, path, **kw)


def test_a_good_file_imports_every_row(settings, ctx_for, tmp_path):
    from hpms.services.people import patients

    seq = last_seq(settings)
    path = write_csv(tmp_path / "patients.csv", GOOD)
    progress = []
    with ctx_for(clock=fixed_clock) as ctx:
        from hpms.services.people.patient_import import import_csv

        result = import_csv(ctx, path, progress=lambda done, total: progress.append((done, total)))
    assert (result.imported, result.rows, result.errors, result.dry_run) == (4, 4, [], False)
    assert result.mrns == ("0100001", "0100003")
    assert progress[-1] == (4, 4)
    rows = query(settings, "SELECT id, mrn, first_name, last_name, dob, consent_sms, ssn_enc FROM patient ORDER BY id")
    assert [(r["mrn"], r["first_name"]) for r in rows] == [
        ("0100001", "Ana"),
        ("0100002", "Otto"),
        ("LEGACY-7", "Zoë"),
        ("0100003", "Jon"),
    ]
    assert rows[0]["ssn_enc"] and "287654321" not in rows[0]["ssn_enc"]
    events = audit_rows(settings, seq)
    # One chained event per chunk names every patient it created.
    assert [(e["action"], e["entity"], e["detail"]) for e in events] == [
        ("create", "patient", "import of 4 patient(s)")
    ]
    assert events[0]["patient_ids_list"] == sorted(r["id"] for r in rows)
    assert "ssn" in events[0]["fields_list"] and "mrn" in events[0]["fields_list"]
    assert "Müller" not in str(events) and "287654321" not in str(events)
    # Imported patients behave like registered ones.
    with ctx_for(clock=fixed_clock) as ctx:
        ana = patients.show(ctx, "0100001", reveal_ssn=True)
        assert (ana.ssn_masked, ana.consent_sms, ana.dob) == ("287-65-4321", True, dt.date(1985, 3, 14))
        assert patients.show(ctx, "0100002").dob == dt.date(1970, 7, 7)
        assert [p.mrn for p in patients.search(ctx, "mul")] == ["0100001", "0100002"]
        assert [p.mrn for p in patients.search(ctx, "287-65-4321")] == ["0100001"]
        assert [p.mrn for p in patients.search(ctx, "555 867 5309")] == ["0100001"]
        assert patients.register(ctx, first_name="Next", last_name="One", dob="2000-01-01").mrn == "0100004"
    from hpms.services.platform import audit

    with ctx_for() as ctx:
        assert audit.verify(ctx).ok


def test_header_columns_are_case_and_space_insensitive_and_order_free(settings, ctx_for, tmp_path):
    path = write_csv(tmp_path / "p.csv", [["1980-01-01", "Quill", "Ida"]], header=[" DOB ", "Last_Name", "first_name"])
    assert _import(ctx_for, path).imported == 1
    assert query(settings, "SELECT first_name, last_name FROM patient") == [{"first_name": "Ida", "last_name": "Quill"}]


def test_blank_lines_are_skipped(settings, ctx_for, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("first_name,last_name,dob\nIda,Quill,1980-01-01\n,,\n\nOtis,Vance,1981-01-01\n", encoding="utf-8")
    assert _import(ctx_for, path).imported == 2


def test_a_utf8_bom_is_accepted(settings, ctx_for, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefffirst_name,last_name,dob\nIda,Quill,1980-01-01\n".encode())
    assert _import(ctx_for, path).imported == 1


def test_one_bad_row_writes_nothing(settings, ctx_for, tmp_path):
    from hpms.services.people.patient_import import InvalidRows

    rows = GOOD[:2] + [["Bad", "Date", "2026-02-30", "", "", "", "", ""]] + GOOD[2:]
    path = write_csv(tmp_path / "p.csv", rows)
    before = snapshot(settings)
    with pytest.raises(InvalidRows) as err:
        _import(ctx_for, path)
    assert err.value.exit_code == ExitCode.USAGE
    assert [e.as_dict() for e in err.value.errors] == [
        {"line": 4, "field": "dob", "message": err.value.errors[0].message}
    ]
    assert "2026-02-30" in err.value.errors[0].message and "not a valid date" in err.value.errors[0].message
    assert "line 4" in err.value.message and "nothing imported" in err.value.message
    assert snapshot(settings) == before


BAD_ROWS = [
    (3, ["Bad", "Date", "2026-02-30", "", "", "", "", ""], "dob"),
    (5, ["Future", "Born", "2026-06-16", "", "", "", "", ""], "dob"),
    (6, ["Bad", "Mail", "1980-01-01", "", "nope@", "", "", ""], "email"),
    (7, ["", "Nameless", "1980-01-01", "", "", "", "", ""], "first_name"),
    (9, ["Bad", "Phone", "1980-01-01", "12", "", "", "", ""], "phone"),
    (10, ["Bad", "Ssn", "1980-01-01", "", "", "12345678", "", ""], "ssn"),
    (11, ["Bad", "Consent", "1980-01-01", "", "", "", "", "perhaps"], "consent_sms"),
    (12, ["Too", "Many", "1980-01-01", "", "", "", "", "", "extra"], "row"),
]


def _mixed_file(tmp_path):
    """GOOD rows on lines 2, 4, 8, 13 and the BAD_ROWS on their lines."""
    lines = {2: GOOD[0], 4: GOOD[1], 8: GOOD[2], 13: GOOD[3]}
    lines.update({ln: row for ln, row, _ in BAD_ROWS})
    return write_csv(tmp_path / "mixed.csv", [lines[i] for i in sorted(lines)])


def test_every_bad_row_is_listed_with_its_line_and_field(settings, ctx_for, tmp_path):
    from hpms.services.people.patient_import import InvalidRows

    path = _mixed_file(tmp_path)
    before = snapshot(settings)
    with pytest.raises(InvalidRows) as err:
        _import(ctx_for, path)
    assert [(e.line, e.field) for e in err.value.errors] == [(ln, f) for ln, _, f in BAD_ROWS]
    assert all(e.message for e in err.value.errors)
    assert err.value.field == "file" and "line 3 (dob:" in err.value.message  # the first bad row
    assert snapshot(settings) == before
    for e in err.value.errors:  # a rejected SSN is not echoed
        assert "12345678" not in e.message


def test_skip_invalid_imports_only_the_good_rows(settings, ctx_for, tmp_path):
    path = _mixed_file(tmp_path)
    seq = last_seq(settings)
    result = _import(ctx_for, path, skip_invalid=True)
    assert (result.imported, result.rows) == (4, 12)
    assert [(e.line, e.field) for e in result.errors] == [(ln, f) for ln, _, f in BAD_ROWS]
    assert result.as_dict()["skipped"] == len(BAD_ROWS)
    names = [r["last_name"] for r in query(settings, "SELECT last_name FROM patient ORDER BY id")]
    assert names == ["Müller", "Mulligan", "Åberg", "Smith"]
    events = audit_rows(settings, seq)
    assert len(events) == 1 and len(events[0]["patient_ids_list"]) == 4


def test_dry_run_writes_nothing(settings, ctx_for, tmp_path):
    from hpms.services.people.patient_import import InvalidRows

    before = snapshot(settings)
    result = _import(ctx_for, write_csv(tmp_path / "p.csv", GOOD), dry_run=True)
    assert (result.imported, result.rows, result.dry_run, result.mrns) == (4, 4, True, None)
    assert snapshot(settings) == before
    result = _import(ctx_for, _mixed_file(tmp_path), dry_run=True, skip_invalid=True)
    assert (result.imported, len(result.errors)) == (4, len(BAD_ROWS))
    with pytest.raises(InvalidRows):
        _import(ctx_for, _mixed_file(tmp_path), dry_run=True)
    assert snapshot(settings) == before


@pytest.mark.parametrize(
    ("header", "field"),
    [
        (["first_name", "dob"], "last_name"),
        (["first_name", "last_name", "birth_date"], "dob"),
        (["last_name", "dob"], "first_name"),
    ],
)
def test_missing_required_column(settings, ctx_for, tmp_path, header, field):
    path = write_csv(tmp_path / "p.csv", [["x"] * len(header)], header=header)
    before = snapshot(settings)
    with pytest.raises(ValidationError) as err:
        _import(ctx_for, path)
    assert err.value.field == field and err.value.exit_code == 2
    assert "column missing" in err.value.message
    assert snapshot(settings) == before


@pytest.mark.parametrize(
    ("content", "field", "words"),
    [
        (b"", "file", "empty"),
        (b"first_name,last_name,dob,shoe_size\nA,B,1980-01-01,42\n", "shoe_size", "unknown column"),
        (b"first_name,last_name,dob,dob\nA,B,1980-01-01,1980-01-01\n", "file", "twice"),
    ],
)
def test_bad_files(settings, ctx_for, tmp_path, content, field, words):
    path = tmp_path / "p.csv"
    path.write_bytes(content)
    before = snapshot(settings)
    with pytest.raises(ValidationError) as err:
        _import(ctx_for, path)
    assert err.value.field == field and words in err.value.message
    assert snapshot(settings) == before


def test_missing_file_and_directory(settings, ctx_for, tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        _import(ctx_for, tmp_path / "nope.csv")
    with pytest.raises(ValidationError) as err:
        _import(ctx_for, tmp_path)
    assert err.value.field == "file"


@pytest.mark.parametrize("where", ["header", "row"])
def test_a_file_that_is_not_utf8_is_refused(settings, ctx_for, tmp_path, where):
    path = tmp_path / "latin1.csv"
    if where == "header":
        path.write_bytes("prénom,last_name,dob\nA,B,1980-01-01\n".encode("latin-1"))
    else:
        rows = [["José", "Martínez", "1980-01-01"]] + [[f"P{i}", "Doe", "1980-01-01"] for i in range(3)]
        write_csv(path, rows, header=["first_name", "last_name", "dob"], encoding="latin-1")
        assert b"Jos\xe9" in path.read_bytes()
    before = snapshot(settings)
    with pytest.raises(ValidationError) as err:
        _import(ctx_for, path)
    assert err.value.field == "file" and "UTF-8" in err.value.message
    assert err.value.exit_code == 2
    assert snapshot(settings) == before


def test_duplicate_mrn_within_the_file(settings, ctx_for, tmp_path):
    from hpms.services.people.patient_import import InvalidRows

    rows = [
        ["A", "One", "1980-01-01", "", "", "", "CH-1", ""],
        ["B", "Two", "1980-01-01", "", "", "", "CH-2", ""],
        ["C", "Three", "1980-01-01", "", "", "", "CH-1", ""],
    ]
    path = write_csv(tmp_path / "p.csv", rows)
    before = snapshot(settings)
    with pytest.raises(InvalidRows) as err:
        _import(ctx_for, path)
    assert [(e.line, e.field) for e in err.value.errors] == [(4, "mrn")]
    assert "line 2" in err.value.errors[0].message
    assert snapshot(settings) == before
    result = _import(ctx_for, path, skip_invalid=True)
    assert result.imported == 2
    assert [r["mrn"] for r in query(settings, "SELECT mrn FROM patient ORDER BY id")] == ["CH-1", "CH-2"]


def test_duplicate_mrn_against_the_database(settings, ctx_for, tmp_path, register):
    from hpms.services.people.patient_import import InvalidRows

    register(mrn="CH-1")
    auto = register()  # 0100001
    rows = [
        ["A", "One", "1980-01-01", "", "", "", "", ""],
        ["B", "Two", "1980-01-01", "", "", "", "CH-1", ""],
        ["C", "Three", "1980-01-01", "", "", "", auto.mrn, ""],
        ["D", "Four", "1980-01-01", "", "", "", "", ""],
    ]
    path = write_csv(tmp_path / "p.csv", rows)
    before = snapshot(settings)
    with pytest.raises(InvalidRows) as err:
        _import(ctx_for, path)
    assert [(e.line, e.field) for e in err.value.errors] == [(3, "mrn"), (4, "mrn")]
    assert all("already assigned" in e.message for e in err.value.errors)
    assert snapshot(settings) == before
    result = _import(ctx_for, path, skip_invalid=True)
    assert result.imported == 2
    assert scalar(settings, "SELECT count(*) FROM patient") == 4
    mrns = [r["mrn"] for r in query(settings, "SELECT mrn FROM patient ORDER BY id")]
    assert mrns == ["CH-1", "0100001", "0100002", "0100003"]


def test_imported_mrns_that_match_future_sequence_values_are_skipped(settings, ctx_for, tmp_path, register):
    rows = [
        ["A", "One", "1980-01-01", "", "", "", "", ""],
        ["B", "Two", "1980-01-01", "", "", "", "0100002", ""],
        ["C", "Three", "1980-01-01", "", "", "", "", ""],
    ]
    result = _import(ctx_for, write_csv(tmp_path / "p.csv", rows))
    assert result.imported == 3
    mrns = [r["mrn"] for r in query(settings, "SELECT mrn FROM patient ORDER BY id")]
    assert sorted(mrns) == ["0100001", "0100002", "0100003"]
    assert register().mrn == "0100004"


def test_import_is_refused_to_roles_without_the_permission(settings, ctx_for, make_user, tmp_path):
    from hpms.errors import PermissionDenied

    make_user("bill", "biller")
    path = write_csv(tmp_path / "p.csv", GOOD)
    before = snapshot(settings)
    with pytest.raises(PermissionDenied):
        with ctx_for("bill") as ctx:
            from hpms.services.people.patient_import import import_csv

            import_csv(ctx, path)
    assert snapshot(settings) == before


def test_ten_thousand_rows_in_one_go(settings, ctx_for, tmp_path):
    n = 10_000
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["first_name", "last_name", "dob", "phone", "ssn"])
        for i in range(n):
            ssn = f"2{i % 100:02d}-{10 + i % 89:02d}-{1000 + i % 9000:04d}" if i % 10 == 0 else ""
            w.writerow(
                [
                    f"Given{i}",
                    f"Family{i % 997}",
                    f"19{50 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                    f"555-{i // 10000:03d}-{i % 10000:04d}",
                    ssn,
                ]
            )
    calls = []
    from hpms.services.people.patient_import import import_csv

    with ctx_for(clock=fixed_clock) as ctx:
        result = import_csv(ctx, path, progress=lambda done, total: calls.append((done, total)))
    assert (result.imported, result.rows, result.errors) == (n, n, [])
    assert result.mrns == ("0100001", f"{100000 + n:07d}")
    assert calls[-1] == (n, n) and len(calls) > 1
    assert scalar(settings, "SELECT count(*) FROM patient") == n
    assert scalar(settings, "SELECT count(DISTINCT mrn) FROM patient") == n
    assert scalar(settings, "SELECT count(*) FROM patient WHERE ssn_enc IS NOT NULL") == n // 10
    events = [e for e in audit_rows(settings) if (e["detail"] or "").startswith("import of")]
    created = [pid for e in events for pid in e["patient_ids_list"]]
    assert len(created) == len(set(created)) == n  # every created patient named once
    from hpms.services.people import patients
    from hpms.services.platform import audit

    with ctx_for(clock=fixed_clock) as ctx:
        assert audit.verify(ctx).ok
        assert [p.first_name for p in patients.search(ctx, "555-000-9999")] == ["Given9999"]
        assert (
            patients.register(ctx, first_name="After", last_name="Import", dob="2000-01-01").mrn == f"{100001 + n:07d}"
        )


def test_a_database_error_in_a_later_chunk_writes_nothing(settings, ctx_for, tmp_path, monkeypatch):
    # Chunks are written while the next one is validated: a failure of the second chunk's write
    # must reach the caller and roll back the first chunk too.
    from hpms.services.people import patient_import

    real = patient_import.insert_rows
    calls = []

    def failing(session, table, columns, rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise OSError("disk gone")
        real(session, table, columns, rows)

    monkeypatch.setattr(patient_import, "CHUNK", 2)
    monkeypatch.setattr(patient_import, "insert_rows", failing)
    path = write_csv(tmp_path / "p.csv", GOOD + GOOD[:1])
    before = snapshot(settings)
    with pytest.raises(OSError, match="disk gone"):
        _import(ctx_for, path)
    assert calls == [2, 2]
    assert snapshot(settings) == before
