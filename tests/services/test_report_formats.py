"""Report export formats: the `charges` report's rows written in every format and read back
with their types, output file placeholders, and atomic writes (a failure leaves no file)."""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from hpms.errors import ValidationError
from hpms.services import reports
from hpms.services.reports import Params
from hpms.services.reports.export import FORMATS, guess_format, resolve_output, write

ROWS = [
    (dt.date(2026, 3, 1), "Lee, Bo", 1, 0, 1, Decimal("120.00")),
    (dt.date(2026, 3, 1), "Smith, Ann MD", 1, 1, 3, Decimal("315.5")),
    (dt.date(2026, 4, 1), "Müller, Zoë", 12, 0, 2, Decimal("1234567.89")),
]
HEADERS = ["Month", "Provider", "Encounters signed", "Encounters billed", "Lines", "Charges"]
TEXT = [
    ["2026-03-01", "Lee, Bo", "1", "0", "1", "120.00"],
    ["2026-03-01", "Smith, Ann MD", "1", "1", "3", "315.50"],
    ["2026-04-01", "Müller, Zoë", "12", "0", "2", "1234567.89"],
]
PARAMS = Params(start=dt.date(2026, 3, 1), end=dt.date(2026, 4, 30), location="Main")


@pytest.fixture
def rep():
    return reports.get("charges")


def export(tmp_path: Path, rep, fmt: str, rows=ROWS) -> Path:
    path = tmp_path / f"charges.{fmt}"
    assert write(path, fmt, rep, PARAMS, iter(rows), io.StringIO()) == len(rows)
    return path


def test_csv_and_tsv_round_trip(tmp_path, rep):
    for fmt, delimiter in (("csv", ","), ("tsv", "\t")):
        text = export(tmp_path, rep, fmt).read_text(encoding="utf-8")
        parsed = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        assert parsed == [HEADERS, *TEXT]


def test_stdout_when_no_file(rep):
    out = io.StringIO()
    assert write(None, "csv", rep, PARAMS, iter(ROWS), out) == 3
    assert out.getvalue().splitlines()[0] == ",".join(HEADERS)


def test_json_round_trip(tmp_path, rep):
    data = json.loads(export(tmp_path, rep, "json").read_text(encoding="utf-8"))
    assert data[1] == {
        "month": "2026-03-01",
        "provider": "Smith, Ann MD",
        "signed": 1,
        "billed": 1,
        "lines": 3,
        "charges": "315.50",
    }
    assert len(data) == 3
    assert json.loads(export(tmp_path, rep, "json", rows=[]).read_text()) == []


def test_html_has_headers_and_escapes(tmp_path, rep):
    text = export(
        tmp_path, rep, "html", rows=[*ROWS, (dt.date(2026, 4, 1), "<b>x</b>", 0, 0, 0, Decimal(0))]
    ).read_text(encoding="utf-8")
    for h in HEADERS:
        assert f"<th>{h}</th>" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x" not in text
    assert '<td class="n">1234567.89</td>' in text


def test_xlsx_cells_keep_their_types(tmp_path, rep):
    from openpyxl import load_workbook

    ws = load_workbook(export(tmp_path, rep, "xlsx")).active
    rows = list(ws.iter_rows(values_only=False))
    assert [c.value for c in rows[0]] == HEADERS
    month, prov, signed, billed, lines, charges = rows[2]
    assert isinstance(month.value, (dt.datetime, dt.date)) and month.value.date() == dt.date(2026, 3, 1)
    assert month.number_format == "yyyy-mm-dd"
    assert prov.value == "Smith, Ann MD"
    assert type(signed.value) is int and signed.value == 1 and type(lines.value) is int
    assert type(charges.value) is float and charges.value == 315.5 and charges.number_format == "#,##0.00"
    assert rows[3][5].value == 1234567.89 and rows[3][1].value == "Müller, Zoë"


def test_ods_cells_keep_their_types(tmp_path, rep):
    path = export(tmp_path, rep, "ods")
    with zipfile.ZipFile(path) as z:
        content = z.read("content.xml").decode("utf-8")
    assert 'office:value-type="float" office:value="315.5"' in content
    assert 'office:value-type="date" office:date-value="2026-03-01' in content
    assert 'office:value-type="float" office:value="12"' in content
    assert "Müller, Zoë" in content and "Encounters signed" in content


def test_placeholders_in_output(tmp_path):
    today = dt.date(2026, 5, 2)
    path = resolve_output("out", str(tmp_path / "charges-{from}-{to}-{date}.xlsx"), "xlsx", PARAMS, today)
    assert path is not None and path.name == "charges-2026-03-01-2026-04-30-2026-05-02.xlsx"
    assert resolve_output("out", "-", "csv", PARAMS, today) is None
    with pytest.raises(ValidationError, match="placeholder") as err:
        resolve_output("out", str(tmp_path / "x-{month}.csv"), "csv", PARAMS, today)
    assert err.value.field == "out"
    with pytest.raises(ValidationError, match="does not exist"):
        resolve_output("out", str(tmp_path / "nowhere" / "x.csv"), "csv", PARAMS, today)
    assert guess_format(None, "a.xlsx") == "xlsx" and guess_format(None, None) == "csv"
    with pytest.raises(ValidationError) as err:
        guess_format("pdf", None)
    assert err.value.field == "fmt"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # openpyxl's abandoned writer
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failed_export_leaves_no_file(tmp_path, rep, fmt):
    def failing():
        yield ROWS[0]
        yield ROWS[1]
        raise RuntimeError("database went away")

    path = tmp_path / f"charges.{fmt}"
    with pytest.raises(RuntimeError):
        write(path, fmt, rep, PARAMS, failing(), io.StringIO())
    gc.collect()  # (the abandoned xlsx writer complains when collected: here, not in another test)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_keeps_the_previous_file(tmp_path, rep):
    path = export(tmp_path, rep, "csv")
    before = path.read_bytes()

    def failing():
        yield ROWS[0]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write(path, "csv", rep, PARAMS, failing(), io.StringIO())
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("fmt", ["xlsx", "ods"])
def test_binary_formats_need_a_file(rep, fmt):
    with pytest.raises(ValidationError, match="needs an output file") as err:
        write(None, fmt, rep, PARAMS, iter(ROWS), io.StringIO())
    assert err.value.field == "out"
