"""Patient statements: who gets one (minimum balance, amount open long enough), what each says
(activity, amount due, aging computed by hand here), one patient per file, the three formats,
the next statement's period, and bad options that write nothing."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest

from hpms.errors import PermissionDenied, ValidationError
from tests.services import accounts
from tests.services.conftest import fixed_clock
from tests.services.helpers import counts, query

D = dt.date  # today is 2026-06-15 (the fixed clock)


@pytest.fixture
def clinic(ctx_for):
    """Ida owes 65.00: visits with 20.00 (moved to her on 2026-03-01, paid), 30.00 (2026-04-01,
    5.00 of it paid) and 40.00 (2026-05-10), after a 25.00 payment on 2026-06-01.
    Otis owes 50.00, moved to him 10 days ago. Una owes 4.00 since March. Vera owes 12.50 since
    2026-04-10."""
    from hpms.services.payments import payments

    payer = accounts.setup(ctx_for)
    mrn = {
        name: accounts.patient(ctx_for, name, last, address_line1=addr)
        for name, last, addr in (
            ("Ida", "Quill", "1 Ash <Lane> & Co"),
            ("Otis", "Reed", "2 Birch Rd"),
            ("Una", "Stone", "3 Cedar Ct"),
            ("Vera", "Tate", "4 Dogwood Dr"),
        )
    }
    enc = {
        "ida1": accounts.visit(
            ctx_for,
            mrn["Ida"],
            payer,
            D(2026, 2, 20),
            paid="60.00",
            adjusted="20.00",
            to_patient="20.00",
            posted=D(2026, 3, 1),
        ),
        "ida2": accounts.visit(
            ctx_for,
            mrn["Ida"],
            payer,
            D(2026, 3, 25),
            charge="150.00",
            code="99214",
            paid="100.00",
            adjusted="20.00",
            to_patient="30.00",
            posted=D(2026, 4, 1),
        ),
        "ida3": accounts.visit(
            ctx_for,
            mrn["Ida"],
            payer,
            D(2026, 5, 1),
            charge="120.00",
            paid="60.00",
            adjusted="20.00",
            to_patient="40.00",
            posted=D(2026, 5, 10),
        ),
        "otis": accounts.visit(
            ctx_for,
            mrn["Otis"],
            payer,
            D(2026, 6, 1),
            paid="30.00",
            adjusted="20.00",
            to_patient="50.00",
            posted=D(2026, 6, 5),
        ),
        "una": accounts.visit(
            ctx_for,
            mrn["Una"],
            payer,
            D(2026, 3, 1),
            paid="76.00",
            adjusted="20.00",
            to_patient="4.00",
            posted=D(2026, 3, 10),
        ),
        "vera": accounts.visit(
            ctx_for,
            mrn["Vera"],
            payer,
            D(2026, 4, 1),
            paid="67.50",
            adjusted="20.00",
            to_patient="12.50",
            posted=D(2026, 4, 10),
        ),
    }
    with ctx_for(clock=fixed_clock) as ctx:
        payments.record(ctx, patient=mrn["Ida"], amount="25.00", method="check", reference="501", date="2026-06-01")
    return {"mrn": mrn, "enc": enc, "payer": payer}


@pytest.fixture
def out(tmp_path):
    path = tmp_path / "statements"
    path.mkdir()
    return path


def _generate(ctx_for, out, **kw):
    from hpms.services.payments import statements

    with ctx_for(clock=fixed_clock) as ctx:
        return statements.generate(ctx, out=out, **kw)


def test_one_statement_per_patient_due_and_only_that_patient_in_it(settings, ctx_for, clinic, out):
    run = _generate(ctx_for, out, fmt="txt")
    mrn = clinic["mrn"]
    assert [f.mrn for f in run.files] == [mrn["Ida"], mrn["Vera"]]  # Otis: too recent; Una: under 5.00
    assert run.statements == 2 and run.amount_due == Decimal("77.50")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"statement-{f.id:06d}.txt" for f in run.files)
    others = {"Ida": ("Otis", "Una", "Vera"), "Vera": ("Ida", "Otis", "Una")}
    for f, who in zip(run.files, ("Ida", "Vera"), strict=True):
        text = (out / f.filename).read_text(encoding="utf-8")
        assert who in text and f"MRN {mrn[who]}" in text
        for other in others[who]:
            assert other not in text and mrn[other] not in text, (who, other)
        assert (out / f.filename).stat().st_mode & 0o777 == 0o600
    rows = query(
        settings,
        "SELECT id, patient_id, period_from, period_to, amount_due_cents, format, filename FROM statement ORDER BY id",
    )
    assert [(r["amount_due_cents"], r["format"], r["filename"]) for r in rows] == [
        (6500, "txt", f"statement-{run.files[0].id:06d}.txt"),
        (1250, "txt", f"statement-{run.files[1].id:06d}.txt"),
    ]
    assert all(r["period_from"] is None and str(r["period_to"]) == "2026-06-15" for r in rows)


def test_statement_contents_computed_by_hand(settings, ctx_for, clinic, tmp_path):
    from hpms.services.lookups import find_patient as find
    from hpms.services.payments import statements

    with ctx_for(clock=fixed_clock) as ctx:
        data = statements.statement_data(ctx, find(ctx, clinic["mrn"]["Ida"]), today=D(2026, 6, 15), previous=None)
    assert data["practice"] == "Test Clinic" and data["mrn"] == clinic["mrn"]["Ida"]
    assert data["patient_address"][0] == "1 Ash <Lane> & Co"
    assert data["amount_due"] == 6500 and data["credit"] == 0
    # visit 1 paid in full; visit 2: 30.00 - 5.00 owed since 2026-04-01 (75 days); visit 3: 40.00 since
    # 2026-05-10 (36 days)
    assert data["aging"] == {"current": 0, "31-60": 4000, "61-90": 2500, "90+": 0}
    acts = data["activity"]
    assert [(r["date"], r["amount"], r["share"]) for r in acts] == [
        (D(2026, 2, 20), 10000, None),
        (D(2026, 3, 1), -6000, None),
        (D(2026, 3, 1), -2000, None),
        (D(2026, 3, 1), None, 2000),
        (D(2026, 3, 25), 15000, None),
        (D(2026, 4, 1), -10000, None),
        (D(2026, 4, 1), -2000, None),
        (D(2026, 4, 1), None, 3000),
        (D(2026, 5, 1), 12000, None),
        (D(2026, 5, 10), -6000, None),
        (D(2026, 5, 10), -2000, None),
        (D(2026, 5, 10), None, 4000),
        (D(2026, 6, 1), None, -2500),
    ]
    assert "99214" in acts[4]["description"] and "Insurance payment" in acts[5]["description"]
    assert acts[-1]["description"].startswith("Patient payment") and "check" in acts[-1]["description"]
    assert sum(r["share"] or 0 for r in acts) == data["amount_due"]
    text = statements.render_txt(data, "000001").decode()
    assert "AMOUNT DUE: 65.00" in text and "31-60 40.00" in text and "61-90 25.00" in text
    assert "Statement 000001" in text and "Phone" not in text  # the location has no phone


def test_formats_html_escaped_and_pdf(settings, ctx_for, clinic, tmp_path):
    (tmp_path / "h").mkdir()
    (tmp_path / "p").mkdir()
    run = _generate(ctx_for, tmp_path / "h", fmt="html", min_balance="50")
    assert [f.mrn for f in run.files] == [clinic["mrn"]["Ida"]]
    page = (tmp_path / "h" / run.files[0].filename).read_text(encoding="utf-8")
    assert "1 Ash &lt;Lane&gt; &amp; Co" in page and "<Lane>" not in page
    assert "Amount due: 65.00" in page
    run = _generate(ctx_for, tmp_path / "p", fmt="pdf", older_than="60d")
    assert [f.mrn for f in run.files] == [clinic["mrn"]["Ida"], clinic["mrn"]["Vera"]]
    for f in run.files:
        assert f.filename.endswith(".pdf") and (tmp_path / "p" / f.filename).read_bytes().startswith(b"%PDF")
    run = _generate(ctx_for, tmp_path / "p", fmt="txt", older_than="70d")  # Vera's 12.50 is 66 days old
    assert [f.mrn for f in run.files] == [clinic["mrn"]["Ida"]]


def test_next_statement_lists_activity_since_the_last(settings, ctx_for, clinic, out):
    from hpms.services.lookups import find_patient as find
    from hpms.services.payments import payments, statements

    first = _generate(ctx_for, out, fmt="txt").files[0]
    later = fixed_clock() + dt.timedelta(days=31)
    with ctx_for(clock=lambda: fixed_clock() + dt.timedelta(hours=1)) as ctx:  # the same day, after the statement
        payments.record(ctx, patient=clinic["mrn"]["Ida"], amount="15.00", method="cash")
    with ctx_for(clock=lambda: later) as ctx:
        prev = ctx.session.get(statements.Statement, first.id)
        data = statements.statement_data(ctx, find(ctx, clinic["mrn"]["Ida"]), today=later.date(), previous=prev)
        assert data["period_from"] == D(2026, 6, 16) and data["previous_balance"] == 6500
        assert [(r["date"], r["share"]) for r in data["activity"]] == [(D(2026, 6, 15), -1500)]
        run = statements.generate(ctx, out=out, fmt="txt")
        mrn = clinic["mrn"]
        assert [f.mrn for f in run.files] == [mrn["Ida"], mrn["Otis"], mrn["Vera"]]  # Otis's 50.00 is 41 days old
        assert run.files[0].period_from == D(2026, 6, 16) and run.files[0].amount_due == Decimal("50.00")
        listed = statements.list_statements(ctx, patient=clinic["mrn"]["Ida"])
    assert [s.id for s in listed] == [run.files[0].id, first.id]


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"min_balance": "five"}, "min_balance"),
        ({"min_balance": "-1"}, "min_balance"),
        ({"min_balance": "1.234"}, "min_balance"),
        ({"older_than": "30"}, "older_than"),
        ({"older_than": "1m"}, "older_than"),
        ({"older_than": "d"}, "older_than"),
        ({"fmt": "docx"}, "fmt"),
        ({"out": "MISSING"}, "out"),
        ({"out": "FILE"}, "out"),
        ({"out": None}, "out"),
    ],
)
def test_bad_options_write_nothing(settings, ctx_for, clinic, tmp_path, kw, field):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "file").write_text("x")
    args = {"out": out, **kw}
    args["out"] = {"MISSING": tmp_path / "missing", "FILE": tmp_path / "file"}.get(args["out"], args["out"])
    before = counts(settings, "statement", "audit_event")
    with pytest.raises(ValidationError) as err:
        _generate(ctx_for, **args)
    assert err.value.field == field
    assert counts(settings, "statement", "audit_event") == before
    assert list(out.iterdir()) == []


def test_a_failed_write_leaves_no_file_and_no_row(settings, ctx_for, clinic, out, monkeypatch):
    from hpms.services.payments import statements

    calls = []

    def render(fmt, d, number, now):
        calls.append(number)
        if len(calls) == 2:
            raise OSError("disk full")
        return b"x"

    monkeypatch.setattr(statements, "_render", render)
    with pytest.raises(OSError):
        _generate(ctx_for, out, fmt="txt")
    assert list(out.iterdir()) == [] and counts(settings, "statement")["statement"] == 0


def test_permission(settings, ctx_for, clinic, out, make_user):
    make_user("fd", "front_desk")
    from hpms.services.payments import statements

    with pytest.raises(PermissionDenied), ctx_for("fd", clock=fixed_clock) as ctx:
        statements.generate(ctx, out=out)
    assert list(out.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_read_only_directory_is_refused(settings, ctx_for, clinic, out):
    out.chmod(0o500)
    try:
        with pytest.raises(ValidationError) as err:
            _generate(ctx_for, out, fmt="txt")
    finally:
        out.chmod(0o700)
    assert err.value.field == "out" and "cannot write" in err.value.message
    assert list(out.iterdir()) == [] and counts(settings, "statement")["statement"] == 0


def test_a_zip_plus_4_is_printed_with_its_dash():
    from types import SimpleNamespace

    from hpms.services.payments.statements import _address_lines

    where = SimpleNamespace(
        address_line1="100 River Rd", address_line2=None, city="Hartford", state="CT", postal_code="061031234"
    )
    assert _address_lines(where) == ["100 River Rd", "Hartford, CT 06103-1234"]
    where.postal_code = "06103"
    assert _address_lines(where)[-1] == "Hartford, CT 06103"
