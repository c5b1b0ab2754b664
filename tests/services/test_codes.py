"""Code sets: ICD-10-CM lookups from the cached table, procedure code formats and modifiers, and
the service layer (lookups, search, HCPCS and CPT imports, permissions) on both backends."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

from hpms.codes import icd10, procedures
from hpms.errors import NotFoundError, PermissionDenied, ValidationError
from tests.conftest import REPO
from tests.services.helpers import counts, last_seq, query


def cms(code: str, long: str, *, seq: int = 100, recid: str = "3", short: str = "") -> str:
    """One record of the CMS fixed-width HCPCS file (320 characters)."""
    return f"{code:<5}{seq:05d}{recid}{long:<80.80}{short:<28.28}".ljust(320)


def write(path, lines: list[str]):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- ICD-10-CM ----------------------------------------------------------------------------------


def test_normalize_and_dotted():
    assert icd10.normalize(" e11.9 ") == "E119"
    assert icd10.normalize("E 11 .65") == "E1165"
    assert icd10.dotted("e1165") == "E11.65"
    assert icd10.dotted("I10") == "I10"
    assert icd10.dotted("S01.01XA") == "S01.01XA"


def test_lookup_billable_and_categories():
    e119 = icd10.lookup("E11.9")
    assert e119 == icd10.Icd10("E119", "E11.9", "Type 2 diabetes mellitus without complications", True)
    assert icd10.lookup("e119") == icd10.lookup(" E11.9") == e119
    e11 = icd10.lookup("E11")
    assert e11.billable is False and e11.description == "Type 2 diabetes mellitus"
    i10 = icd10.lookup("I10")
    assert i10.billable is True and i10.dotted == "I10" and "hypertension" in i10.description
    seventh = icd10.lookup("S01.01XA")
    assert seventh.billable and seventh.description.endswith("initial encounter")
    assert icd10.lookup("S01.01").billable is False


@pytest.mark.parametrize("code", ["E11.99", "XYZ", "", "11.9", "E119999999", "U99.9"])
def test_unknown_codes_are_none(code):
    assert icd10.lookup(code) is None


def test_search_by_code_prefix_and_words():
    prefixed = icd10.search("E11.6", limit=5)
    assert [c.dotted for c in prefixed][:2] == ["E11.6", "E11.61"]
    assert len(prefixed) == 5 and all(c.code.startswith("E116") for c in prefixed)
    words = icd10.search("TYPE 2 diabetes kidney", limit=50)
    assert words and all(
        "type 2 diabetes" in c.description.lower() and "kidney" in c.description.lower() for c in words
    )
    assert "E1122" in [c.code for c in words]
    assert [c.code for c in icd10.search("e11 kidney")][:2] == ["E112", "E1122"]
    assert [c.code for c in icd10.search("essential hypertens")][:1] == ["I10"]
    assert icd10.search("zzzqqqxx") == [] and icd10.search("  ") == [] and icd10.search("I10", limit=0) == []
    codes = [c.code for c in icd10.search("diabetes", limit=200)]
    assert len(codes) == 200 and codes == sorted(codes)


def test_the_shared_cache_is_built_once_and_holds_every_code(code_cache_dir):
    icd10.load()
    path = icd10.cache_path()
    assert path.parent == code_cache_dir
    assert path.name == f"icd10cm-{icd10.package_version()}-f{icd10.FORMAT}.tsv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        header = fh.readline()
        rows = [line.rstrip("\n").split("\t") for line in fh]
    assert header.startswith("# hpms icd10cm ") and f"rows={len(rows)}" in header
    assert len(rows) > 90_000
    assert 74_000 < sum(flag == "1" for _, flag, _ in rows) < 76_000
    assert [c for c, _, _ in rows] == sorted(c for c, _, _ in rows)
    assert path.stat().st_size < 2_000_000


def test_lookups_never_import_the_package_and_load_fast(code_cache_dir):
    icd10.load()  # the cache exists
    probe = (
        "import sys, time; t = time.perf_counter(); from hpms.codes import icd10; "
        "hit = icd10.lookup('E11.9'); took = time.perf_counter() - t; "
        "print(hit.dotted, 'simple_icd_10_cm' in sys.modules, took)"
    )
    env = {**os.environ, "HPMS_CACHE_DIR": str(code_cache_dir)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    dotted, imported, took = done.stdout.split()
    assert (dotted, imported) == ("E11.9", "False")
    assert float(took) < 1.0  # about 0.1 s; generous for a loaded machine


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A cache dir of its own, and a tiny source instead of the package (counting builds)."""
    calls = []

    def fake_rows():
        calls.append(1)
        yield "A00", "Cholera", False
        yield "A000", "Cholera due to Vibrio cholerae 01, biovar cholerae", True
        yield "I10", "Essential (primary) hypertension", True

    monkeypatch.setenv("HPMS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(icd10, "_source_rows", fake_rows)
    icd10.reset()
    yield calls
    icd10.reset()  # the next test loads the real table again


def test_cache_is_reused_and_rebuilt_when_corrupt(private_cache, tmp_path):
    calls = private_cache
    assert icd10.lookup("A00.0").description.startswith("Cholera due to")
    assert len(calls) == 1
    path = icd10.cache_path()
    assert path.parent == tmp_path / "cache" and path.exists()
    icd10.reset()
    assert icd10.lookup("I10").billable
    assert len(calls) == 1  # read back, not rebuilt
    for damage in (
        b"not gzip at all",
        gzip.compress(b"# something else\n"),
        path.read_bytes()[:40],
        gzip.compress(b"# hpms icd10cm 1.5.0 format=1 rows=5\nA00\t0\tCholera\n"),
    ):
        path.write_bytes(damage)
        icd10.reset()
        assert icd10.lookup("A00").billable is False
        assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    assert len(calls) == 5


def test_a_failed_build_leaves_the_old_file_and_no_temp_file(private_cache, monkeypatch):
    icd10.lookup("I10")
    path = icd10.cache_path()
    before = path.read_bytes()

    def broken():
        yield "A00", "Cholera", False
        raise RuntimeError("disk full")

    monkeypatch.setattr(icd10, "_source_rows", broken)
    with pytest.raises(RuntimeError):
        icd10.build_cache(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.startswith(".")) == [path.name]


# --- procedure codes and modifiers ------------------------------------------------------------


@pytest.mark.parametrize("code", ["99213", " 99213 ", "0001F", "0042t", "0001U", "G0439", "j1885", "A4550"])
def test_well_formed_procedure_codes(code):
    assert procedures.check_procedure(code) == code.strip().upper()
    assert procedures.is_cpt(code) != procedures.is_hcpcs(code)


@pytest.mark.parametrize("code", ["9921", "992131", "0001X", "W1234", "G043", "G04399", "E11.9", "", "99 21"])
def test_malformed_procedure_codes(code):
    with pytest.raises(ValueError, match="not a procedure code") as err:
        procedures.check_procedure(code)
    assert "CPT" in str(err.value) and "HCPCS" in str(err.value)
    assert not procedures.is_cpt(code) and not procedures.is_hcpcs(code)


def test_modifiers():
    wanted = (
        "22 24 25 26 27 32 33 47 50 51 52 53 54 55 56 57 58 59 62 63 66 76 77 78 79 80 81 82 90 91 92 93 "
        "95 96 97 99 AA AD AS CR CS FS FT GA GC GE GG GH GJ GN GO GP GQ GT GU GV GW GX GY GZ JW JZ KX LT RT "
        "E1 E2 E3 E4 FA TA QW QK QX QY QZ SA SB TC XE XP XS XU"
    ).split()
    wanted += [f"F{i}" for i in range(1, 10)] + [f"T{i}" for i in range(1, 10)]
    assert set(wanted) <= set(procedures.MODIFIERS)
    assert all(len(m) == 2 and d for m, d in procedures.MODIFIERS.items())
    assert procedures.check_modifier(" 25 ") == "25" and procedures.check_modifier("rt") == "RT"
    for bad in ("ZZ", "2", "255", ""):
        with pytest.raises(ValueError, match="unknown modifier"):
            procedures.check_modifier(bad)


def test_builtin_hcpcs_codes_are_level_two_only():
    assert len(procedures.HCPCS_BUILTIN) >= 40
    for code, desc in procedures.HCPCS_BUILTIN.items():
        assert procedures.is_hcpcs(code) and not procedures.is_cpt(code) and desc, code
    assert {"G0438", "G0439", "G2211", "J1885", "Q0091"} <= set(procedures.HCPCS_BUILTIN)


# --- the service layer (both backends) --------------------------------------------------------


def test_lookups_through_the_service(ctx_for):
    from hpms.services.billing import codes

    with ctx_for() as ctx:
        assert codes.procedure_known(ctx, "99213") and codes.procedure_known(ctx, "0001U")
        assert codes.procedure_known(ctx, "g0439")
        assert not codes.procedure_known(ctx, "G9999") and not codes.procedure_known(ctx, "E11.9")
        assert codes.describe(ctx, "99213") is None  # no CPT descriptor shipped
        assert codes.describe(ctx, "G0439").startswith("Annual wellness visit")
        assert (
            codes.describe(ctx, "E11.9")
            == codes.describe(ctx, "e119")
            == "Type 2 diabetes mellitus without complications"
        )
        assert codes.describe(ctx, "J1100") == "Injection, dexamethasone sodium phosphate, 1 mg"
        assert codes.describe(ctx, "J11.00").startswith("Influenza")
        assert codes.describe(ctx, "J1100", system="icd10").startswith("Influenza")
        assert codes.describe(ctx, "nonsense") is None

        e119 = codes.show(ctx, "E11.9")
        assert (e119.system, e119.code, e119.display, e119.billable) == ("ICD-10-CM", "E119", "E11.9", True)
        assert "billable" in e119.note and "without the dot: E119" in e119.note
        e11 = codes.show(ctx, "E11")
        assert e11.billable is False and "not billable" in e11.note and "E11.00" in e11.note
        assert "without the dot" not in e11.note
        cpt = codes.show(ctx, "99213")
        assert (cpt.system, cpt.description, cpt.source) == ("CPT", None, "format") and "licensed CPT file" in cpt.note
        j = codes.show(ctx, "J1100")
        assert (j.system, j.source) == ("HCPCS", "builtin") and "J11.00" in j.note
        assert codes.show(ctx, "J1100", system="ICD-10-CM").display == "J11.00"
        for unknown, verb in (("E11.99", "search"), ("G9999", "import-hcpcs"), ("hello", "search")):
            with pytest.raises(NotFoundError) as err:
                codes.show(ctx, unknown)
            assert err.value.exit_code == 3 and (err.value.action.noun, err.value.action.verb) == ("codes", verb)
        with pytest.raises(ValidationError, match="system"):
            codes.show(ctx, "E11.9", system="snomed")


def test_search_through_the_service(ctx_for):
    from hpms.services.billing import codes

    with ctx_for() as ctx:
        found = codes.search(ctx, "ketorolac injection")
        assert [(c.system, c.code) for c in found][:1] == [("HCPCS", "J1885")]
        g04 = codes.search(ctx, "G044", limit=3)
        assert [c.code for c in g04] == ["G0442", "G0443", "G0444"]
        diabetes = codes.search(ctx, "type 2 diabetes", limit=5, system="icd10")
        assert len(diabetes) == 5 and {c.system for c in diabetes} == {"ICD-10-CM"}
        assert codes.search(ctx, "E11.9")[0].display == "E11.9"
        assert codes.search(ctx, "wellness", system="cpt") == []
        with pytest.raises(ValidationError, match="limit"):
            codes.search(ctx, "x", limit=0)
        with pytest.raises(ValidationError) as err:
            codes.search(ctx, " ")
        assert err.value.field == "text"


def test_import_hcpcs_cms_layout(settings, ctx_for, tmp_path):
    from hpms.services.billing import codes

    path = write(
        tmp_path / "HCPC2026_APR_ANWEB.txt",
        [
            cms("25", "Significant, separately identifiable e/m service", recid="7"),
            cms(
                "A0021",
                "Ambulance service, outside state per mile, transport (medicaid only)",
                short="Outside state ambulance serv",
            ),
            cms(
                "G0439",
                "Annual wellness visit, includes a personalized prevention plan of service (pps),",
                short="Ppps, subseq visit",
            ),
            cms("G0439", "subsequent visit", seq=200, recid="4"),
            cms("J1885", "Injection, ketorolac tromethamine, per 15 mg", short="Ketorolac tromethamine inj"),
        ],
    )
    seq = last_seq(settings)
    with ctx_for() as ctx:
        dry = codes.import_hcpcs(ctx, path, dry_run=True)
    assert (dry.layout, dry.rows, dry.codes, dry.added, dry.skipped, dry.dry_run) == (
        "cms-fixed-width",
        5,
        3,
        3,
        1,
        True,
    )
    assert counts(settings, "procedure_code") == {"procedure_code": 0} and last_seq(settings) == seq

    with ctx_for() as ctx:
        done = codes.import_hcpcs(ctx, path)
    assert (done.added, done.updated, done.unchanged) == (3, 0, 0)
    rows = query(settings, "SELECT system, code, description FROM procedure_code ORDER BY code")
    assert [(r["system"], r["code"]) for r in rows] == [("HCPCS", "A0021"), ("HCPCS", "G0439"), ("HCPCS", "J1885")]
    assert rows[1]["description"] == (
        "Annual wellness visit, includes a personalized prevention plan of service (pps), subsequent visit"
    )
    events = query(settings, "SELECT action, entity, entity_id, detail FROM audit_event WHERE seq > :s", s=seq)
    assert events == [
        {
            "action": "import",
            "entity": "procedure_code",
            "entity_id": "HCPCS",
            "detail": "HCPC2026_APR_ANWEB.txt: 3 added, 0 updated, 0 unchanged",
        }
    ]
    with ctx_for() as ctx:
        assert codes.procedure_known(ctx, "A0021")
        assert codes.show(ctx, "G0439").source == "imported"
        assert codes.describe(ctx, "J1885") == "Injection, ketorolac tromethamine, per 15 mg"
        assert [c.code for c in codes.search(ctx, "ambulance mile")] == ["A0021"]
        hits = codes.search(ctx, "G043")
        assert [(c.code, c.source) for c in hits][:2] == [("G0438", "builtin"), ("G0439", "imported")]

    # A second file: one changed, one new; codes absent from it stay.
    again = write(
        tmp_path / "update.txt",
        [cms("J1885", "Injection, ketorolac tromethamine, per 15 mg"), cms("G0438", "Annual wellness visit, initial")],
    )
    with ctx_for() as ctx:
        second = codes.import_hcpcs(ctx, again)
    assert (second.added, second.updated, second.unchanged) == (1, 0, 1)
    assert counts(settings, "procedure_code") == {"procedure_code": 4}


def test_import_hcpcs_csv_and_tsv(settings, ctx_for, tmp_path):
    from hpms.services.billing import codes

    long = "Supply " + "x" * 400
    csv_path = tmp_path / "hcpcs.csv"
    csv_path.write_text(
        "HCPCS Code,Short Description,Long Description\n"
        'a4550,Surgical trays,"Surgical trays, all kinds"\n'
        f"A9999,Misc,{long}\n",
        encoding="utf-8",
    )
    tsv_path = tmp_path / "hcpcs.tsv"
    tsv_path.write_text("HCPC\tLONG DESCRIPTION\nE0100\tCane, adjustable\n", encoding="utf-8")
    with ctx_for() as ctx:
        first = codes.import_hcpcs(ctx, csv_path)
        second = codes.import_hcpcs(ctx, tsv_path)
    assert (first.layout, first.codes, first.added, first.truncated) == ("csv", 2, 2, 1)
    assert (second.layout, second.added) == ("tsv", 1)
    rows = {r["code"]: r["description"] for r in query(settings, "SELECT code, description FROM procedure_code")}
    assert rows["A4550"] == "Surgical trays, all kinds" and rows["E0100"] == "Cane, adjustable"
    assert len(rows["A9999"]) == 300 and rows["A9999"].endswith("...")


def test_bad_rows_name_line_and_field_and_write_nothing(settings, ctx_for, tmp_path):
    from hpms.services.billing import codes

    cms_file = write(
        tmp_path / "bad.txt",
        [
            cms("G0439", "Annual wellness visit"),
            cms("99213", "Office visit"),
            cms("J1885", "continued", seq=200, recid="4"),
            cms("G0438", "", short=""),
            cms("G0439", "Again"),
            cms("G0442", "Alcohol screening", recid="5"),
        ],
    )
    seq = last_seq(settings)
    with ctx_for() as ctx, pytest.raises(codes.InvalidRows) as err:
        codes.import_hcpcs(ctx, cms_file)
    assert [(e.line, e.field) for e in err.value.errors] == [
        (2, "HCPC"),
        (3, "RECID"),
        (4, "LONG DESCRIPTION"),
        (5, "HCPC"),
        (6, "RECID"),
    ]
    assert "CPT code" in err.value.errors[0].message and "first at line 1" in err.value.errors[3].message
    assert err.value.exit_code == 2 and "line 2" in str(err.value) and "nothing imported" in str(err.value)

    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("code,description\nG0439,Wellness\nG04X9,Typo\nJ1885,\n", encoding="utf-8")
    with ctx_for() as ctx, pytest.raises(codes.InvalidRows) as err:
        codes.import_hcpcs(ctx, csv_file)
    assert [(e.line, e.field) for e in err.value.errors] == [(3, "code"), (4, "description")]

    no_column = tmp_path / "nocol.csv"
    no_column.write_text("hcpcs,price\nG0439,10\n", encoding="utf-8")
    with ctx_for() as ctx, pytest.raises(ValidationError, match="no description column"):
        codes.import_hcpcs(ctx, no_column)
    with ctx_for() as ctx, pytest.raises(ValidationError, match="does not exist"):
        codes.import_hcpcs(ctx, tmp_path / "missing.txt")
    assert counts(settings, "procedure_code") == {"procedure_code": 0} and last_seq(settings) == seq


def test_import_cpt(settings, ctx_for, tmp_path):
    from hpms.services.billing import codes

    good = tmp_path / "cpt.csv"
    good.write_text("CPT Code,Descriptor\n99213,Test descriptor one\n0001F,Test descriptor two\n", encoding="utf-8")
    with ctx_for() as ctx:
        summary = codes.import_cpt(ctx, good)
    assert (summary.system, summary.added) == ("CPT", 2)
    with ctx_for() as ctx:
        assert codes.describe(ctx, "99213") == "Test descriptor one"
        assert codes.show(ctx, "0001F").source == "imported"
        assert [c.code for c in codes.search(ctx, "descriptor two")] == ["0001F"]
    bad = tmp_path / "bad.csv"
    bad.write_text("code,description\n99214,Fine\nG0439,Not CPT\n", encoding="utf-8")
    with ctx_for() as ctx, pytest.raises(codes.InvalidRows) as err:
        codes.import_cpt(ctx, bad)
    assert [(e.line, e.field) for e in err.value.errors] == [(3, "code")]
    assert counts(settings, "procedure_code") == {"procedure_code": 2}


def test_permissions(settings, ctx_for, make_user, tmp_path):
    from hpms.services.billing import codes

    path = tmp_path / "h.csv"
    path.write_text("code,description\nG0439,Wellness\n", encoding="utf-8")
    make_user("desk", "front_desk")
    make_user("bill", "biller")
    make_user("audrey", "auditor")
    with ctx_for("desk") as ctx:
        assert codes.show(ctx, "I10").billable
        with pytest.raises(PermissionDenied, match="import code sets"):
            codes.import_hcpcs(ctx, path)
    with ctx_for("audrey") as ctx, pytest.raises(PermissionDenied, match="look up codes"):
        codes.search(ctx, "diabetes")
    assert counts(settings, "procedure_code") == {"procedure_code": 0}
    with ctx_for("bill") as ctx:
        assert codes.import_hcpcs(ctx, path).added == 1
    assert json.loads(json.dumps(codes.ImportSummary("HCPCS", "f", "csv").as_dict()))["layout"] == "csv"


def test_an_unwritable_cache_dir_still_gives_lookups(private_cache, monkeypatch):
    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(icd10, "_build_locked", refuse)
    assert icd10.lookup("I10").billable
    assert not icd10.cache_path().exists()
