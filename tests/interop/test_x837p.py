"""The 837P writer: every file it writes validates with pyx12 (005010X222A1) with no errors,
envelopes and counts are consistent, and claims are streamed, not collected."""

from __future__ import annotations

import io
import logging
from datetime import date, datetime

import pytest

from hpms.interop.x12 import (
    BillingProvider,
    Claim,
    Line,
    Party,
    Patient,
    Payer,
    Receiver,
    RenderingProvider,
    Submitter,
    Subscriber,
    format_amount,
    write_837p,
)
from tests.conftest import TEST_DATA

pyx12_doc = pytest.importorskip("pyx12.x12n_document")
pyx12_params = pytest.importorskip("pyx12.params")

X12_DIR = TEST_DATA / "x12"
CREATED = datetime(2026, 1, 15, 12, 0)
SUBMITTER = Submitter("HPMS Demo Clinic", "HPMSSUBMIT", "Billing Office", "5555550100")
RECEIVER = Receiver("Demo Payer", "PAYERRECV")
BILLING = BillingProvider(
    "HPMS Demo Clinic", "1234567893", "123456789", "100 Main Street", "Springfield", "IL", "627040001"
)
PAYER = Payer("Demo Payer", "PAYERID01")
JANE = Subscriber(
    "Doe", "Jane", "W123456789", date(1980, 1, 1), "F", "12 Oak Avenue", None, "Springfield", "IL", "62704"
)
JIMMY = Patient("Doe", "Jimmy", date(2015, 5, 5), "M", "12 Oak Avenue", "Springfield", "IL", "62704", relationship="19")
DOS = date(2026, 1, 10)


# --------------------------------------------------------------------------- helpers


def claim(
    control: str = "PATACCT001",
    *,
    lines: tuple[Line, ...] | None = None,
    subscriber: Subscriber = JANE,
    diagnoses: tuple[str, ...] = ("J069",),
    **kw,
) -> Claim:
    lines = lines or (Line("99213", 10000, 1, (1,)),)
    total = kw.pop("total_cents", sum(ln.charge_cents for ln in lines))
    return Claim(control, total, subscriber, lines, diagnoses, service_date=DOS, **kw)


def render(claims, **kw):
    out = io.StringIO()
    args = dict(
        isa_control=1,
        gs_control=1,
        submitter=SUBMITTER,
        receiver=RECEIVER,
        billing_provider=BILLING,
        payer=PAYER,
        created=CREATED,
        production=False,
    )
    args.update(kw)
    summary = write_837p(out, claims=claims, **args)
    return out.getvalue(), summary


def pyx12_validate(text: str) -> tuple[bool, str]:
    """(no errors?, everything pyx12 logged)."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("pyx12")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        ok = pyx12_doc.x12n_document(
            param=pyx12_params.params(),
            src_file=io.StringIO(text),
            fd_997=None,
            fd_html=None,
            fd_xmldoc=None,
            fd_json=io.StringIO(),
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return ok, buf.getvalue()


def assert_valid(text: str) -> None:
    ok, log = pyx12_validate(text)
    excerpt = "\n".join(text.splitlines()[:80])
    assert ok, f"pyx12 rejected the file:\n{log}\n--- file (first 80 segments) ---\n{excerpt}"
    assert "error" not in log.lower(), log


def segments(text: str) -> list[list[str]]:
    assert text.endswith("~\n")
    return [s.lstrip("\n").split("*") for s in text.split("~")[:-1]]


def find(segs: list[list[str]], tag: str, *first: str) -> list[list[str]]:
    return [s for s in segs if s[0] == tag and tuple(s[1 : 1 + len(first)]) == first]


def check_envelope(text: str, *, isa_control: int = 1, gs_control: int = 1) -> None:
    """Control numbers and counts agree across ISA/GS/ST/SE/GE/IEA."""
    lines = text.split("\n")
    assert len(lines[0]) == 106 and lines[0].startswith("ISA*"), lines[0]  # fixed width + '~'
    segs = segments(text)
    isa, gs, ge, iea = segs[0], segs[1], segs[-2], segs[-1]
    assert isa[13] == f"{isa_control:09d}" and iea == ["IEA", "1", isa[13]]
    assert gs[6] == str(gs_control) and ge[2] == gs[6]
    sets, current = [], None
    for seg in segs[2:-2]:
        if seg[0] == "ST":
            assert current is None
            current = [seg]
        else:
            assert current is not None, seg
            current.append(seg)
            if seg[0] == "SE":
                sets.append(current)
                current = None
    assert current is None and int(ge[1]) == len(sets)
    for n, st_set in enumerate(sets, 1):
        st, se = st_set[0], st_set[-1]
        assert st[1:] == ["837", f"{n:04d}", "005010X222A1"]
        assert se == ["SE", str(len(st_set)), st[2]]
        # HL numbering restarts per set, is sequential and parents exist
        seen = set()
        for i, hl in enumerate(s for s in st_set if s[0] == "HL"):
            assert hl[1] == str(i + 1)
            assert hl[2] == "" or hl[2] in seen
            seen.add(hl[1])


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("dependent,name", [(False, "minimal_837p.txt"), (True, "minimal_837p_dependent.txt")])
def test_reproduces_the_hand_written_reference_files(dependent, name):
    text, summary = render([claim(patient=JIMMY if dependent else None)], reference="HPMS")
    assert text == (X12_DIR / name).read_text()
    assert summary.claims == 1 and summary.total_cents == 10000
    assert summary.segments == len(segments(text))


def test_single_claim_single_line():
    text, summary = render([claim()])
    assert_valid(text)
    check_envelope(text)
    segs = segments(text)
    assert find(segs, "CLM")[0][1:3] == ["PATACCT001", "100"]
    assert find(segs, "SV1") == [["SV1", "HC:99213", "100", "UN", "1", "", "", "1"]]
    assert find(segs, "DTP", "472") == [["DTP", "472", "D8", "20260110"]]
    assert summary.claims == 1 and summary.transactions == 1


def test_multiple_lines_with_modifiers():
    lines = (
        Line("99214", 15050, 1, (1,), modifiers=("25",)),
        Line("20610", 22500, 1, (2, 1), modifiers=("RT", "59", "XS", "GA"), service_date=date(2026, 1, 11)),
        Line("J3301", 1234, 4, (2,), modifiers=("JZ",), place_of_service="22"),
        Line("36415", 1000, 1, (1,)),
    )
    text, summary = render([claim(lines=lines, diagnoses=("M1711", "M25561"))])
    assert_valid(text)
    check_envelope(text)
    segs = segments(text)
    assert find(segs, "CLM")[0][2] == "397.84" and summary.total_cents == 39784
    assert find(segs, "LX") == [["LX", str(n)] for n in range(1, 5)]
    assert find(segs, "SV1") == [
        ["SV1", "HC:99214:25", "150.5", "UN", "1", "", "", "1"],
        ["SV1", "HC:20610:RT:59:XS:GA", "225", "UN", "1", "", "", "2:1"],
        ["SV1", "HC:J3301:JZ", "12.34", "UN", "4", "22", "", "2"],
        ["SV1", "HC:36415", "10", "UN", "1", "", "", "1"],
    ]
    assert [s[3] for s in find(segs, "DTP", "472")] == ["20260110", "20260111", "20260110", "20260110"]


def test_twelve_diagnoses_and_four_pointers():
    dx = ("E119", "I10", "E785", "Z7984", "M545", "R519", "J449", "F419", "G4733", "K219", "N390", "Z23")
    lines = (
        Line("99215", 20000, 1, (1, 2, 3, 4)),
        Line("G0439", 17500, 1, (5, 6, 7, 8)),
        Line("90686", 2500, 1, (12, 11, 10, 9)),
    )
    text, _ = render([claim(lines=lines, diagnoses=dx)])
    assert_valid(text)
    (hi,) = find(segments(text), "HI")
    assert hi[1:] == ["ABK:E119"] + [f"ABF:{c}" for c in dx[1:]]
    assert [s[7] for s in find(segments(text), "SV1")] == ["1:2:3:4", "5:6:7:8", "12:11:10:9"]


def test_dependent_patient_gets_a_2000c_loop():
    spouse = Patient(
        "Doe",
        "John",
        date(1979, 2, 2),
        "M",
        "12 Oak Avenue",
        "Springfield",
        "IL",
        "62704",
        relationship="01",
        address2="Apt 3",
    )
    text, _ = render([claim("C1", patient=JIMMY), claim("C2"), claim("C3", patient=spouse)])
    assert_valid(text)
    check_envelope(text)
    segs = segments(text)
    assert find(segs, "HL") == [
        ["HL", "1", "", "20", "1"],
        ["HL", "2", "1", "22", "1"],
        ["HL", "3", "2", "23", "0"],
        ["HL", "4", "1", "22", "0"],
        ["HL", "5", "1", "22", "1"],
        ["HL", "6", "5", "23", "0"],
    ]
    assert [s[2] for s in find(segs, "SBR")] == ["", "18", ""]  # SBR02 only when self
    assert find(segs, "PAT") == [["PAT", "19"], ["PAT", "01"]]
    assert [s[3:5] for s in find(segs, "NM1", "QC")] == [["DOE", "JIMMY"], ["DOE", "JOHN"]]
    assert ["N3", "12 OAK AVENUE", "APT 3"] in segs


def test_several_claims_for_different_subscribers():
    subs = [
        JANE,
        Subscriber(
            "Smith",
            "Robert",
            "XYZ987",
            date(1955, 7, 4),
            "M",
            "1 Elm St",
            "Unit 2",
            "Chicago",
            "IL",
            "606011234",
            group_number="GRP-77",
            payer_responsibility="S",
        ),
        Subscriber(
            "Nguyen",
            "An",
            "M0001",
            date(2001, 12, 31),
            "U",
            "9 Pine Rd",
            None,
            "Peoria",
            "IL",
            "61602",
            payer_responsibility="T",
        ),
    ]
    claims = [
        claim(f"ACCT{i}", subscriber=s, lines=(Line("99212", 7500 + i, 1, (1,)),)) for i, s in enumerate(subs * 3)
    ]
    text, summary = render(
        claims, payer=Payer("Demo Payer", "PAYERID01", "PO Box 1", None, "Albany", "NY", "122010001", claim_filing="MB")
    )
    assert_valid(text)
    check_envelope(text)
    segs = segments(text)
    assert summary.claims == 9 and summary.total_cents == sum(7500 + i for i in range(9))
    assert [s[1] for s in find(segs, "SBR")] == ["P", "S", "T"] * 3
    assert find(segs, "SBR")[1] == ["SBR", "S", "18", "GRP-77", "", "", "", "", "", "MB"]
    assert [s[9] for s in find(segs, "NM1", "IL")] == [s.member_id for s in subs] * 3
    assert len(find(segs, "NM1", "PR")) == 9 and segs.count(["N4", "ALBANY", "NY", "122010001"]) == 9
    assert [s[1] for s in find(segs, "CLM")] == [f"ACCT{i}" for i in range(9)]


@pytest.mark.parametrize("frequency", ["7", "8"])
def test_replacement_and_void_carry_the_payer_claim_number(frequency):
    text, _ = render([claim(frequency=frequency, payer_claim_number="2026011500123")])
    assert_valid(text)
    segs = segments(text)
    assert find(segs, "CLM")[0][5] == f"11:B:{frequency}"
    assert find(segs, "REF", "F8") == [["REF", "F8", "2026011500123"]]
    i = next(i for i, s in enumerate(segs) if s[0] == "CLM")
    assert segs[i + 1][:2] == ["REF", "F8"] and segs[i + 2][0] == "HI"  # 2300 order


def test_original_claim_has_no_ref_f8():
    text, _ = render([claim(frequency="1", payer_claim_number="IGNORED")])
    assert not find(segments(text), "REF", "F8")


def test_rendering_provider_and_service_facility():
    rp = RenderingProvider("Welby", "Marcus", "1245319599", taxonomy="207Q00000X")
    fac = Party(
        "Oak Street Annex",
        id="1679576722",
        id_qualifier="XX",
        address1="200 Oak Street",
        city="Springfield",
        state="IL",
        zip="627040002",
    )
    text, _ = render(
        [claim(rendering=rp, facility=fac)],
        billing_provider=BillingProvider(
            "HPMS Demo Clinic",
            "1234567893",
            "123456789",
            "100 Main Street",
            "Springfield",
            "IL",
            "627040001",
            taxonomy="261QP2300X",
        ),
    )
    assert_valid(text)
    segs = segments(text)
    assert find(segs, "PRV") == [["PRV", "BI", "PXC", "261QP2300X"], ["PRV", "PE", "PXC", "207Q00000X"]]
    assert find(segs, "NM1", "82") == [["NM1", "82", "1", "WELBY", "MARCUS", "", "", "", "XX", "1245319599"]]
    assert find(segs, "NM1", "77") == [["NM1", "77", "2", "OAK STREET ANNEX", "", "", "", "", "XX", "1679576722"]]
    # 2310B/2310C come after HI and before the first LX
    tags = [s[0] + (s[1] if s[0] == "NM1" else "") for s in segs]
    assert tags.index("HI") < tags.index("NM182") < tags.index("NM177") < tags.index("LX")


def test_special_characters_are_stripped_and_text_upper_cased():
    sub = Subscriber(
        "O*Brien~",
        "Zoë:Ann^",
        "w12*34",
        date(1980, 1, 1),
        "F",
        "12 Oak Ave.\nApt ~5",
        "c/o José Müller",
        "São Paulo",
        "il",
        "62704",
    )
    pat = Patient("O'Brien-Smith", "Ñandú", date(2015, 5, 5), "M", " 1 * Main ", "Springfield", "IL", "62704")
    rp = RenderingProvider("Łukasz*", "Ž:ofia", "1245319599")
    text, _ = render(
        [claim("AC*C~T:1^", subscriber=sub, patient=pat, rendering=rp)],
        submitter=Submitter("Clinic ~ Ünited * Ltd", "HPMSSUBMIT", "Bill^ing", "555*555*0100"),
    )
    assert_valid(text)
    check_envelope(text)
    assert text.isascii()
    segs = segments(text)
    assert find(segs, "NM1", "IL")[0][3:5] == ["OBRIEN", "ZOEANN"]
    assert find(segs, "NM1", "IL")[0][9] == "W1234"
    assert find(segs, "N3")[1] == ["N3", "12 OAK AVE. APT 5", "C/O JOSE MULLER"]
    assert find(segs, "N4")[1] == ["N4", "SAO PAULO", "IL", "62704"]
    assert find(segs, "NM1", "QC")[0][3:5] == ["O'BRIEN-SMITH", "NANDU"]
    assert ["N3", "1 MAIN"] in segs
    assert find(segs, "NM1", "82")[0][3:5] == ["LUKASZ", "ZOFIA"]
    assert find(segs, "CLM")[0][1] == "ACCT1"
    assert find(segs, "NM1", "41")[0][3] == "CLINIC UNITED LTD"
    assert find(segs, "PER")[0] == ["PER", "IC", "BILLING", "TE", "5555550100"]


@pytest.mark.parametrize("per_st", [None, 2, 3])
def test_control_numbers_and_counts_are_consistent(per_st):
    claims = [
        claim(
            f"A{i}",
            patient=JIMMY if i % 2 else None,
            lines=tuple(Line("99213", 100 * (n + 1), 1, (1,)) for n in range(1 + i % 3)),
        )
        for i in range(7)
    ]
    text, summary = render(claims, isa_control=987654321, gs_control=4242, max_claims_per_st=per_st, production=True)
    assert_valid(text)
    check_envelope(text, isa_control=987654321, gs_control=4242)
    segs = segments(text)
    assert summary.segments == len(segs)
    assert summary.transactions == {None: 1, 2: 4, 3: 3}[per_st] == len(find(segs, "ST"))
    assert summary.claims == 7 == len(find(segs, "CLM"))
    assert summary.total_cents == sum(c.total_cents for c in claims)
    assert segs[0][15] == "P" and segs[0][16] == ":" and segs[0][11] == "^"
    assert [s[3] for s in find(segs, "BHT")] == [f"4242{n:04d}" for n in range(1, summary.transactions + 1)]


def test_isa_fields_are_fixed_width():
    text, _ = render(
        [claim()],
        submitter=Submitter("X", "S", "C", "1", isa_id="A-VERY-LONG-SENDER-ID"),
        receiver=Receiver("Y", "R", isa_qualifier="30", isa_id="12-3456789"),
        isa_control=5,
    )
    isa = text.split("\n")[0]
    assert len(isa) == 106
    assert isa.split("*")[5:9] == ["ZZ", "A-VERY-LONG-SEN", "30", "12-3456789     "]
    assert isa.split("*")[13] == "000000005"
    with pytest.raises(ValueError):
        render([claim()], isa_control=1_000_000_000)


def test_empty_run_still_writes_a_consistent_envelope():
    text, summary = render([])
    check_envelope(text)
    assert summary.claims == 0 and summary.segments == len(segments(text))


def test_streams_claims_lazily():
    consumed = 0

    def gen():
        nonlocal consumed
        for i in range(2000):
            consumed += 1
            yield claim(
                f"S{i:05d}",
                subscriber=JANE,
                patient=JIMMY if i % 5 == 0 else None,
                lines=(Line("99213", 10000, 1, (1,)), Line("36415", 1500, 1, (1,))),
            )

    class Recorder(io.StringIO):
        def __init__(self):
            super().__init__()
            self.marks: list[tuple[int, int]] = []  # (claims written so far, claims consumed)

        def write(self, s):
            n = super().write(s)
            self.marks.append((self.getvalue().count("CLM*"), consumed))
            return n

    out = Recorder()
    summary = write_837p(
        out,
        isa_control=1,
        gs_control=1,
        submitter=SUBMITTER,
        receiver=RECEIVER,
        billing_provider=BILLING,
        payer=PAYER,
        claims=gen(),
        created=CREATED,
        production=False,
    )
    # When the first claim reached the stream only the first claim had been pulled, and at
    # no point is more than the claim being formatted held back.
    first = next(c for w, c in out.marks if w >= 1)
    assert first == 1
    assert all(cons - written <= 1 for written, cons in out.marks)
    assert consumed == 2000 and summary.claims == 2000
    assert summary.total_cents == 2000 * 11500
    text = out.getvalue()
    check_envelope(text)
    assert_valid(text)


def test_business_rules_are_not_the_writers_job():
    """The writer formats what it is given; the scrubber must catch these (pyx12 does not)."""
    bad = claim(
        "BAD1",
        total_cents=99999,  # != sum of lines
        diagnoses=("J06.9",),  # dotted ICD-10 code
        lines=(Line("99213", 10000, 1, (1, 4)),),  # pointer to a missing diagnosis
        frequency="7",  # replacement without REF*F8
        rendering=RenderingProvider("Welby", "Marcus", "1234567890"),  # bad NPI check digit
    )
    text, summary = render(
        [bad],
        billing_provider=BillingProvider(
            "HPMS Demo Clinic", "1234567890", "123456789", "100 Main Street", "Springfield", "IL", "62704"
        ),
    )
    assert_valid(text)
    segs = segments(text)
    assert find(segs, "CLM")[0][2] == "999.99" and summary.total_cents == 99999
    assert find(segs, "HI") == [["HI", "ABK:J06.9"]]
    assert find(segs, "SV1")[0][7] == "1:4"
    assert not find(segs, "REF", "F8")
    assert find(segs, "NM1", "85")[0][9] == "1234567890"
    assert ["N4", "SPRINGFIELD", "IL", "62704"] in segs


@pytest.mark.parametrize(
    "cents,text",
    [
        (0, "0"),
        (1, "0.01"),
        (10, "0.1"),
        (10000, "100"),
        (10050, "100.5"),
        (12345, "123.45"),
        (100000001, "1000000.01"),
        (-2550, "-25.5"),
    ],
)
def test_format_amount(cents, text):
    assert format_amount(cents) == text


def test_a_secondary_claim_carries_the_primary_payers_adjudication():
    from hpms.interop.x12.x837p import Adjustment, LineAdjudication, OtherPayer

    paid_on = date(2026, 1, 20)
    primary = OtherPayer(
        "Acme Health",
        "ACME1",
        "Doe",
        "Jane",
        "P998877",
        relationship="18",
        group_number="G1",
        paid_cents=8200,
        remaining_patient_cents=1000,
        adjustments=(Adjustment("OA", "94", 0),),
    )
    lines = (
        Line(
            "99213",
            10000,
            1,
            (1,),
            ("25",),
            adjudication=LineAdjudication(
                7200, "99213", paid_on, ("25",), 1, (Adjustment("CO", "45", 1800), Adjustment("PR", "2", 1000))
            ),
        ),
        Line(
            "36415",
            1500,
            1,
            (1,),
            adjudication=LineAdjudication(1000, "36415", paid_on, adjustments=(Adjustment("CO", "45", 500),)),
        ),
        Line("93000", 4550, 1, (1,)),  # no adjudication: no 2430
    )
    secondary = Subscriber(
        "Doe",
        "Jane",
        "S112233",
        date(1980, 1, 1),
        "F",
        "12 Oak Avenue",
        None,
        "Springfield",
        "IL",
        "62704",
        payer_responsibility="S",
    )
    text, _ = render(
        [claim("SEC1", lines=lines, subscriber=secondary, other_payer=primary)], payer=Payer("Beta Care", "BETA2")
    )
    assert_valid(text)
    check_envelope(text)
    segs = segments(text)
    assert find(segs, "SBR", "S") == [["SBR", "S", "18", "", "", "", "", "", "", "CI"]]
    assert find(segs, "SBR", "P") == [["SBR", "P", "18", "G1", "", "", "", "", "", "CI"]]
    assert find(segs, "AMT", "D") == [["AMT", "D", "82"]] and find(segs, "AMT", "EAF") == [["AMT", "EAF", "10"]]
    assert find(segs, "OI") == [["OI", "", "", "Y", "", "", "Y"]]
    assert find(segs, "NM1", "IL")[1] == ["NM1", "IL", "1", "DOE", "JANE", "", "", "", "MI", "P998877"]
    assert find(segs, "NM1", "PR") == [
        ["NM1", "PR", "2", "BETA CARE", "", "", "", "", "PI", "BETA2"],
        ["NM1", "PR", "2", "ACME HEALTH", "", "", "", "", "PI", "ACME1"],
    ]
    assert find(segs, "SVD") == [
        ["SVD", "ACME1", "72", "HC:99213:25", "", "1"],
        ["SVD", "ACME1", "10", "HC:36415", "", "1"],
    ]
    assert find(segs, "CAS") == [["CAS", "CO", "45", "18"], ["CAS", "PR", "2", "10"], ["CAS", "CO", "45", "5"]]
    assert find(segs, "DTP", "573") == [["DTP", "573", "D8", "20260120"]] * 2
    # the 2320 loop comes after the claim (2300) and before its first line (2400)
    tags = [s[0] for s in segs]
    assert tags.index("CLM") < segs.index(find(segs, "SBR", "P")[0]) < tags.index("AMT") < tags.index("LX")


def test_claim_level_adjustments_of_the_prior_payer_share_a_cas_per_group():
    from hpms.interop.x12.x837p import Adjustment, OtherPayer

    primary = OtherPayer(
        "Acme Health",
        "ACME1",
        "Doe",
        "Jane",
        "P998877",
        paid_cents=0,
        adjustments=tuple(Adjustment("PR", str(r), 100) for r in range(1, 9)),
    )
    sub = Subscriber("Doe", "Jane", "S1", payer_responsibility="S")
    text, _ = render([claim("SEC2", subscriber=sub, other_payer=primary, patient=JIMMY)])
    assert_valid(text)
    cas = find(segments(text), "CAS")
    assert [len(c) for c in cas] == [2 + 6 * 3 - 1, 2 + 2 * 3 - 1]  # six pairs, then two
    assert cas[0][:5] == ["CAS", "PR", "1", "1", ""]
    assert find(segments(text), "AMT", "D") == [["AMT", "D", "0"]]


def test_a_primary_claim_names_the_secondary_payer_still_to_come():
    """2320 with SBR (S, relationship, group, filing, SBR05 for Medicare) and OI, 2330A, 2330B;
    no AMT, no CAS and no 2430: that payer has not adjudicated the claim."""
    from hpms.interop.x12.x837p import Adjustment, LineAdjudication, OtherPayer

    medicare = OtherPayer(
        "Medicare Part B",
        "MCRB1",
        "Doe",
        "Jane",
        "1EG4TE5MK73",
        relationship="18",
        responsibility="S",
        claim_filing="MB",
        insurance_type="43",
        adjustments=(Adjustment("CO", "45", 100),),
    )  # ignored: nothing adjudicated
    spouse_plan = OtherPayer(
        "Beta Care",
        "BETA2",
        "Doe",
        "John",
        "B55",
        relationship="01",
        group_number="GB7",
        responsibility="S",
        claim_filing="BL",
    )
    lines = (Line("99213", 10000, 1, (1,), adjudication=LineAdjudication(5000, "99213", date(2026, 1, 20))),)
    claims = [claim("P1", lines=lines, other_payer=medicare), claim("P2", patient=JIMMY, other_payer=spouse_plan)]
    text, _ = render(claims, payer=Payer("Acme Health", "ACME1", claim_filing="CI"))
    assert_valid(text)
    check_envelope(text)
    segs = segments(text)
    assert find(segs, "SBR") == [
        ["SBR", "P", "18", "", "", "", "", "", "", "CI"],
        ["SBR", "S", "18", "", "", "43", "", "", "", "MB"],
        ["SBR", "P", "", "", "", "", "", "", "", "CI"],
        ["SBR", "S", "01", "GB7", "", "", "", "", "", "BL"],
    ]
    assert find(segs, "OI") == [["OI", "", "", "Y", "", "", "Y"]] * 2
    assert [s[3:5] + s[9:] for s in find(segs, "NM1", "IL")] == [
        ["DOE", "JANE", "W123456789"],
        ["DOE", "JANE", "1EG4TE5MK73"],
        ["DOE", "JANE", "W123456789"],
        ["DOE", "JOHN", "B55"],
    ]
    assert [s[-1] for s in find(segs, "NM1", "PR")] == ["ACME1", "MCRB1", "ACME1", "BETA2"]
    assert not find(segs, "AMT") and not find(segs, "CAS") and not find(segs, "SVD") and not find(segs, "DTP", "573")


def test_sbr05_names_the_medicare_secondary_type():
    from hpms.interop.x12.x837p import OtherPayer

    primary = OtherPayer("Acme Health", "ACME1", "Doe", "Jane", "P1", claim_filing="CI", paid_cents=8000)
    sub = Subscriber(
        "Doe",
        "Jane",
        "1EG4TE5MK73",
        date(1950, 1, 1),
        "F",
        "12 Oak Avenue",
        None,
        "Springfield",
        "IL",
        "62704",
        payer_responsibility="S",
        insurance_type="12",
    )
    text, _ = render(
        [claim("S1", subscriber=sub, other_payer=primary)], payer=Payer("Medicare Part B", "MCRB1", claim_filing="MB")
    )
    assert_valid(text)
    segs = segments(text)
    assert find(segs, "SBR") == [
        ["SBR", "S", "18", "", "", "12", "", "", "", "MB"],
        ["SBR", "P", "18", "", "", "", "", "", "", "CI"],
    ]
    assert find(segs, "AMT", "D") == [["AMT", "D", "80"]]


@pytest.mark.parametrize("gap", ["address1", "city", "state", "zip"])
def test_an_incomplete_address_is_left_out_never_written_empty(gap):
    blank = {"address1": " * ", "city": "", "state": None, "zip": "~"}[gap]
    sub = Subscriber(
        "Doe",
        "Jane",
        "W1",
        date(1980, 1, 1),
        "F",
        **{
            "address1": "12 Oak Avenue",
            "address2": None,
            "city": "Springfield",
            "state": "IL",
            "zip": "62704",
            gap: blank,
        },
    )
    pat = Patient(
        "Doe",
        "Jimmy",
        date(2015, 5, 5),
        "M",
        **{"address1": "12 Oak Avenue", "city": "Springfield", "state": "IL", "zip": "62704", gap: blank},
    )
    bp = BillingProvider(
        "HPMS Demo Clinic",
        "1234567893",
        "123456789",
        **{"address1": "100 Main Street", "city": "Springfield", "state": "IL", "zip": "627040001", gap: blank},
    )
    payer = Payer(
        "Demo Payer",
        "PAYERID01",
        **{"address1": "PO Box 1", "city": "Albany", "state": "NY", "zip": "122010001", gap: blank},
    )
    text, summary = render(
        [claim("A1", subscriber=sub), claim("A2", subscriber=sub, patient=pat)], billing_provider=bp, payer=payer
    )
    segs = segments(text)
    assert not find(segs, "N3") and not find(segs, "N4")
    assert summary.segments == len(segs)
    check_envelope(text)
    # complete, the same parties have their addresses back
    text, _ = render(
        [claim("A1", subscriber=JANE, patient=JIMMY)],
        payer=Payer("Demo Payer", "PAYERID01", "PO Box 1", None, "Albany", "NY", "122010001"),
    )
    assert len(find(segments(text), "N3")) == 4 and all(all(s[1:]) for s in find(segments(text), "N4"))
