"""Tests for the 271 eligibility answer reader (hpms.interop.x12.x271)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from hpms.interop.x12.x270 import Dependent, Inquiry, PayerInquiries, Receiver, Subscriber, write_270
from hpms.interop.x12.x271 import AAA_REASONS, X12Error, parse_271
from tests.conftest import TEST_DATA
from tests.eligibility_fixtures import active_loop, answer_271

X12 = TEST_DATA / "x12"
SAMPLES = sorted(p.name for p in X12.glob("*.271"))


def load(name: str) -> str:
    return (X12 / name).read_text(encoding="ascii")


def test_all_four_samples_are_present():
    assert SAMPLES == [
        "271_005010X279A1__dependent-health-benefit-check.271",
        "271_005010X279A1__subscriber-health-benefit-check-error.271",
        "271_005010X279A1__subscriber-health-benefit-check.271",
        "demo-file__demo.271",
    ]


@pytest.mark.parametrize("name", ["271_005010X279A1__subscriber-health-benefit-check.271", "demo-file__demo.271"])
def test_active_subscriber(name):
    (r,) = parse_271(load(name))
    assert (r.isa_control, r.gs_control, r.st_control, r.reference) == ("000000907", "1", "4321", "10001234")
    assert (r.payer_name, r.payer_id, r.receiver_name, r.receiver_id) == (
        "ABC COMPANY",
        "841610001",
        "BONE AND JOIN CLINIC",
        "2000035",
    )
    assert r.rejections == () and r.warnings == ()
    (m,) = r.answers
    assert (m.level, m.member_id, m.last, m.first, m.dob) == (
        "subscriber",
        "123456789",
        "SMITH",
        "JOHN",
        date(1963, 5, 19),
    )
    assert m.echoed_traces == ("93175-012547",) and m.traces == (("2", "93175-012547", "9877281234"),)
    assert (m.status, m.plan_name, m.plan_begin, m.plan_end) == ("active", "GOLD 123 PLAN", date(2006, 1, 1), None)
    assert m.copay == Decimal("10.00")  # in network (EB12 Y) before out of network (30.00)
    assert [b.code for b in m.benefits] == ["1", "L", "1", "B", "B"]  # the 2120 loop (LS/LE) is skipped
    assert m.benefits[3].service_types == ("1", "33", "35", "47", "86", "88", "98", "AL", "MH", "UC")
    assert (m.benefits[3].time_period, m.benefits[3].in_network, m.benefits[4].amount) == ("27", "Y", Decimal("30.00"))
    assert m.rejections == () and m.reasons == ()


def test_dependent_answer():
    (r,) = parse_271(load("271_005010X279A1__dependent-health-benefit-check.271"))
    assert [m.level for m in r.members] == ["subscriber", "dependent"]
    assert r.members[0].has_dependents and r.members[0].benefits == ()
    (d,) = r.answers
    assert (d.level, d.last, d.first, d.dob, d.member_id, d.subscriber_member_id) == (
        "dependent",
        "SMITH",
        "MARY",
        date(1998, 10, 14),
        None,
        "123456789",
    )
    assert d.echoed_traces == ("93175-012547",)
    assert (d.status, d.plan_name, d.plan_begin, d.copay) == (
        "active",
        "GOLD 123 PLAN",
        date(2006, 1, 1),
        Decimal("10.00"),
    )


def test_error_answer_with_aaa_at_the_receiver_level():
    (r,) = parse_271(load("271_005010X279A1__subscriber-health-benefit-check-error.271"))
    assert r.members == () and r.answers == ()
    (rej,) = r.rejections
    assert (rej.level, rej.code, rej.follow_up, rej.valid_request) == ("2100B", "50", "N", True)
    assert r.reasons == ("provider ineligible for inquiries (resubmission not allowed) [2100B]",)
    assert r.warnings == ("segment 10 (SE): SE02 control number '4323' does not match ST02 '4321'",)


def test_benefit_amounts_dates_and_percent():
    (r,) = parse_271(answer_271(active_loop("17", "M1", "DOE", "PAT")))
    (m,) = r.answers
    assert (m.status, m.plan_name, m.plan_begin, m.plan_end) == (
        "active",
        "GOLD PLAN",
        date(2026, 1, 1),
        date(2026, 12, 31),
    )
    assert (m.copay, m.coinsurance_percent, m.deductible, m.deductible_remaining) == (
        Decimal("25"),
        Decimal("20"),
        Decimal("1500"),
        Decimal("750.50"),
    )
    assert m.benefits[-1].dates == {"291": (date(2026, 6, 16), None)}


@pytest.mark.parametrize("code, level", [("72", "2100C"), ("75", "2100C"), ("58", "2100C")])
def test_aaa_at_the_subscriber_level_is_an_error_with_a_readable_reason(code, level):
    (r,) = parse_271(answer_271(["TRN*2*5*1123456789", "NM1*IL*1*DOE*PAT****MI*M1", f"AAA*Y**{code}*C"]))
    (m,) = r.answers
    assert m.status == "error"
    assert m.reasons == (f"{AAA_REASONS[code]} (correct and resubmit) [{level}]",)


def test_inactive_range_dates_and_aaa_at_payer_level():
    (r,) = parse_271(
        answer_271(["TRN*2*9*1123456789", "NM1*IL*1*DOE*PAT****MI*M1", "DTP*307*RD8*20250101-20251231", "EB*6**30"])
    )
    (m,) = r.answers
    assert (m.status, m.plan_begin, m.plan_end) == ("inactive", date(2025, 1, 1), date(2025, 12, 31))
    text = (
        answer_271()
        .replace("NM1*PR*2*ACME HEALTH*****PI*ACME1~\n", "NM1*PR*2*ACME HEALTH*****PI*ACME1~\nAAA*Y**42*R~\n")
        .replace("SE*7*", "SE*8*")
    )
    (r,) = parse_271(text)
    assert r.reasons == ("unable to respond at current time (resubmission allowed) [2100A]",)


def test_a_written_270_reads_back_structurally():
    """The 270 writer's output goes through the shared tokeniser; its questions come back when
    a payer answers them loop for loop."""
    text = write_270(
        isa_control=5,
        gs_control=6,
        sender_id="SUB01",
        receiver_id="CH01",
        receiver=Receiver(name="Clinic", npi="1234567893"),
        created=datetime(2026, 6, 15, tzinfo=UTC),
        production=True,
        trace_originator="9123456789",
        payers=[
            PayerInquiries(
                name="Acme",
                payer_id="ACME1",
                inquiries=(
                    Inquiry(
                        trace="11",
                        service_date=date(2026, 6, 16),
                        subscriber=Subscriber(member_id="M1", last="Doe", first="Pat", dob=date(1980, 1, 1)),
                    ),
                    Inquiry(
                        trace="12",
                        service_date=date(2026, 6, 16),
                        subscriber=Subscriber(member_id="M1", last="Doe", first="Pat"),
                        dependent=Dependent(last="Doe", first="Kid", dob=date(2015, 5, 5)),
                    ),
                ),
            )
        ],
    )
    # Turn the request into an answer: same loops, TRN*1 echoed as TRN*2, coverage active.
    answer = (
        text.replace("GS*HS", "GS*HB")
        .replace("ST*270", "ST*271")
        .replace("BHT*0022*13", "BHT*0022*11")
        .replace("TRN*1*", "TRN*2*")
        .replace("EQ*30~", "EB*1**30**GOLD~")
    )
    (r,) = parse_271(answer)
    assert (r.isa_control, r.payer_id, r.receiver_id, r.reference) == ("000000005", "ACME1", "1234567893", "5")
    assert [
        (m.level, m.echoed_traces, m.status, m.member_id or m.subscriber_member_id, m.first) for m in r.answers
    ] == [("subscriber", ("11",), "active", "M1", "PAT"), ("dependent", ("12",), "active", "M1", "KID")]
    assert r.answers[1].dob == date(2015, 5, 5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty input"),
        ("hello, world", "expected an ISA segment"),
        ("%PDF-1.4 binary", "expected an ISA segment"),
    ],
)
def test_not_x12(text, message):
    with pytest.raises(X12Error, match=message):
        parse_271(text)


def test_truncated():
    text = load("271_005010X279A1__subscriber-health-benefit-check.271")
    with pytest.raises(X12Error, match="missing SE"):
        parse_271(text[: text.index("EB*L")])
    with pytest.raises(X12Error, match="ISA segment is truncated"):
        parse_271(text[:60])
    with pytest.raises(X12Error, match="missing IEA"):
        parse_271(text[: text.index("IEA")])


def test_wrong_terminators():
    text = load("271_005010X279A1__subscriber-health-benefit-check.271")
    # the ISA names "~" but the rest of the file ends its segments with "|"
    bad = text[: text.index("~") + 1] + text[text.index("~") + 1 :].replace("~", "|")
    with pytest.raises(X12Error, match="missing IEA|segment terminator"):
        parse_271(bad)
    with pytest.raises(X12Error, match="invalid segment terminator"):
        parse_271(text.replace(":~", ":A", 1))


def test_other_transaction_sets_and_counts_are_refused():
    with pytest.raises(X12Error, match="'835' is not a 271"):
        parse_271((TEST_DATA / "x12" / "835_005010X221A1__managed-care.835").read_text())
    text = load("271_005010X279A1__subscriber-health-benefit-check.271").replace("SE*22*", "SE*21*")
    with pytest.raises(X12Error, match="SE01 says 21 segments but the transaction set has 22"):
        parse_271(text)


def test_one_response_per_payer_loop():
    """hpms's 270 asks several payers in one transaction set (one 2000A loop each): the answer
    comes back the same way, and each payer keeps its own answers and rejections."""
    from tests.eligibility_fixtures import Source, answer_271_sources

    text = answer_271_sources(
        Source("ACME1", "ACME HEALTH", (active_loop("11", "M1", "DOE", "PAT"),)),
        Source("BETA2", "BETA CARE", payer_aaa="AAA*Y**42*R"),
        Source("GAMMA3", "GAMMA", (["NM1*IL*1*DOE*PAT****MI*M3", "EB*6**30"],), receiver_aaa="AAA*N**43*C"),
        reference="5-20260616",
    )
    acme, beta, gamma = parse_271(text)
    assert [(r.payer_id, r.payer_name, r.st_control, r.reference) for r in (acme, beta, gamma)] == [
        ("ACME1", "ACME HEALTH", "0001", "5-20260616"),
        ("BETA2", "BETA CARE", "0001", "5-20260616"),
        ("GAMMA3", "GAMMA", "0001", "5-20260616"),
    ]
    assert [(m.member_id, m.status) for m in acme.answers] == [("M1", "active")] and acme.rejections == ()
    assert (beta.members, beta.receiver_id, beta.reasons) == (
        (),
        None,
        ("unable to respond at current time (resubmission allowed) [2100A]",),
    )
    assert [(m.member_id, m.status) for m in gamma.answers] == [("M3", "inactive")]
    assert gamma.reasons == ("invalid/missing provider identification (correct and resubmit) [2100B]",)
    assert [r.warnings for r in (acme, beta, gamma)] == [(), (), ()]


def test_a_set_mismatch_warning_is_given_once_for_several_payer_loops():
    from tests.eligibility_fixtures import Source, answer_271_sources

    text = answer_271_sources(Source("ACME1"), Source("BETA2")).replace("SE*11*0001", "SE*11*0002")
    responses = parse_271(text)
    assert [w for r in responses for w in r.warnings] == [
        "segment 13 (SE): SE02 control number '0002' does not match ST02 '0001'"
    ]


def test_a_dependent_answer_takes_the_trace_echoed_in_its_subscriber_loop():
    """Some payers echo the dependent's trace in the 2000C loop: the answer is the 2000D loop's."""
    (r,) = parse_271(
        answer_271(["DEP", ["TRN*2*12*1123456789", "NM1*IL*1*DOE*PAT****MI*M1"], "NM1*03*1*DOE*KID", "EB*1**30"])
    )
    (d,) = r.answers
    assert (d.level, d.first, d.echoed_traces, d.traces, d.status) == ("dependent", "KID", ("12",), (), "active")
    # with a trace of its own (and one in the 2000C loop too) each loop keeps its own
    (r,) = parse_271(
        answer_271(
            [
                "DEP",
                ["TRN*2*11*1123456789", "NM1*IL*1*DOE*PAT****MI*M1", "EB*1**30"],
                "TRN*2*12*1123456789",
                "NM1*03*1*DOE*KID",
                "EB*1**30",
            ]
        )
    )
    assert [(m.level, m.echoed_traces) for m in r.answers] == [("subscriber", ("11",)), ("dependent", ("12",))]


@pytest.mark.parametrize("prefix", ["\ufeff", "\xef\xbb\xbf", "\ufeff\n"])
def test_a_byte_order_mark_is_skipped(prefix):
    (r,) = parse_271(prefix + answer_271(active_loop("17", "M1", "DOE", "PAT")))
    assert [m.echoed_traces for m in r.answers] == [("17",)]


def test_names_may_be_non_ascii():
    (r,) = parse_271(
        answer_271(
            active_loop(None, "M1", "NGUYỄN", "JOSÉ"),
            ["DEP", ["NM1*IL*1*MÜLLER*JÜRGEN****MI*M2"], "NM1*03*1*MÜLLER*ZOË", "EB*1**30"],
        )
    )
    assert [(m.last, m.first) for m in r.answers] == [("NGUYỄN", "JOSÉ"), ("MÜLLER", "ZOË")]


@pytest.mark.parametrize(
    "text",
    ["ISA\x00*00*", "\x00\x00\x00", answer_271().encode("utf-16").decode("latin-1")],
    ids=["nul-in-isa", "nul-only", "utf-16"],
)
def test_nul_characters_are_not_x12(text):
    with pytest.raises(X12Error, match="NUL characters"):
        parse_271(text)
