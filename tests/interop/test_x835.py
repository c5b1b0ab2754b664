"""Tests for the 835 remittance reader (hpms.interop.x12.x835)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from hpms.interop.x12.x835 import (
    Adjustment,
    Procedure,
    ProviderAdjustment,
    X12Error,
    balance_problems,
    parse_835,
)
from tests.conftest import TEST_DATA

X12 = TEST_DATA / "x12"
SAMPLES = sorted(p.name for p in X12.glob("835*"))


def load(name: str) -> str:
    return (X12 / name).read_text(encoding="ascii")


def one(name: str):
    (r,) = parse_835(load(name))
    return r


def test_all_six_samples_are_present():
    assert len(SAMPLES) == 6


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_parses_and_balances(name):
    remittances = parse_835(load(name))
    assert len(remittances) == 1
    r = remittances[0]
    assert r.claims
    assert balance_problems(r) == []
    assert all(isinstance(c.charge_amount, Decimal) for c in r.claims)


def test_managed_care():
    r = one("835_005010X221A1__managed-care.835")
    assert (r.isa_control, r.gs_control, r.st_control) == ("000000907", "1", "112233")
    assert (r.handling_code, r.payment_amount, r.credit_debit, r.payment_method) == ("I", Decimal("945.00"), "C", "ACH")
    assert (r.trace_number, r.trace_originator) == ("7170066655", "1935665544")
    assert r.production_date == date(2002, 3, 14)
    assert r.payer_name == "RUSHMORE LIFE" and r.payer_id is None
    assert (r.payee_name, r.payee_npi, r.payee_tin) == ("ACME MEDICAL CENTER", "5544667733", "777667755")
    # BPR16 in this published example is 20002316, which is no date
    assert r.payment_date is None
    assert r.warnings == ("segment 4 (BPR): element 16 is not a valid date: '20002316'",)
    assert [c.patient_control_number for c in r.claims] == ["5554555444", "8765432112"]
    c1, c2 = r.claims
    assert (c1.status_code, c1.charge_amount, c1.paid_amount, c1.patient_responsibility) == (
        "1",
        Decimal("800.00"),
        Decimal("450.00"),
        Decimal("300.00"),
    )
    assert (c1.filing_indicator, c1.payer_claim_control_number) == ("12", "94060555410000")
    assert c1.adjustments == (Adjustment("CO", "A2", Decimal("50.00")),)
    assert (c1.patient.name, c1.patient.first, c1.patient_member_id) == ("BUDD", "WILLIAM", "33344555510")
    assert c1.rendering_provider is None and c1.rendering_npi is None and not c1.is_reversal
    (line,) = c1.lines
    assert line.procedure == Procedure("HC", "99211")
    assert (line.charge_amount, line.paid_amount, line.units) == (Decimal("800.00"), Decimal("500.00"), Decimal("1"))
    assert (line.service_date_from, line.service_date_to) == (date(2002, 3, 1), date(2002, 3, 4))
    assert line.adjustments == (Adjustment("PR", "1", Decimal("300.00")),)
    assert c2.lines[0].adjustments == (
        Adjustment("PR", "1", Decimal("600.00")),
        Adjustment("CO", "45", Decimal("50.00")),
    )
    assert len(c2.all_adjustments()) == 3


def test_medicare_part_a_with_plb_and_moa():
    r = one("835_005010X221A1__medicare-part-a.835")
    assert r.payment_amount == Decimal("150000.00") and r.payment_date == date(2002, 9, 13)
    assert (r.payer_name, r.payer_id) == ("INSURANCE COMPANY OF TIMBUCKTU", "999")
    assert (r.payee_npi, r.trace_number) == ("6543210903", "12345")
    assert r.provider_adjustments == (
        ProviderAdjustment("6543210903", date(2002, 12, 31), "CV", "CP", Decimal("-1.27")),
    )
    c1, c2 = r.claims
    assert (c1.facility_code, c1.frequency_code, c1.filing_indicator) == ("11", "1", "MA")
    assert c1.patient.id_qualifier == "HN" and c1.patient.id == "666666666A" and c1.patient.middle == "O"
    assert (c1.service_date_from, c1.service_date_to) == (date(2002, 8, 16), date(2002, 8, 24))
    assert c1.lines == () and c1.remark_codes == ()
    assert c2.remark_codes == ("MA02",)
    assert c2.adjustments == (Adjustment("CO", "45", Decimal("3019.67")),)


def test_secondary_payment_lines_and_cas_triples():
    r = one("835_005010X221A1__secondary-payment.835")
    assert r.payment_amount == Decimal("1222.00") and r.payee_tin == "599944521"
    # the sample writes its date in BPR15, not BPR16
    assert r.payment_date is None and r.warnings == ()
    c1, c2 = r.claims
    assert c1.lines == () and c1.rendering_provider.id == "987" and c1.rendering_npi is None
    assert [len(c.lines) for c in r.claims] == [0, 2]
    l1, l2 = c2.lines
    # SVC01 uses ">" although ISA16 is ":"
    assert l1.procedure == Procedure("HC", "12345", ("26",))
    assert l1.refs == {"1B": "43285"} and l1.line_item_control_number is None
    assert l1.service_date_from == l1.service_date_to == date(2005, 1, 6)
    assert (l2.revenue_code, l2.units) == ("220", Decimal("1.00"))
    assert l2.adjustments == (
        Adjustment("PR", "1", Decimal("150.00")),
        Adjustment("PR", "2", Decimal("70.00")),
        Adjustment("CO", "42", Decimal("85.00")),
    )


def test_cob_negative_adjustment_and_tertiary():
    r = one("835_005010X221A1__cob-contractural-adjustment.835")
    (c,) = r.claims
    assert c.lines[0].adjustments[1] == Adjustment("OA", "94", Decimal("-9.00"))
    assert r.payee_tin == "3UR334563" and r.payee_name == "ATONEWITHHEALTH"
    t = one("835_005010X221A1__tertiary-payment.835")
    (c,) = t.claims
    assert c.status_code == "3" and c.rendering_provider.id == "AB34U"
    # this sample's SVC01 has no procedure code (qualifier only)
    assert c.lines[0].procedure == Procedure("HC", "")
    assert (c.lines[0].charge_amount, c.lines[0].paid_amount) == (Decimal("24599.00"), Decimal("1766.50"))


def test_mult_loops_remark_codes_and_units():
    r = one("835_mult_loops.txt")
    assert (r.handling_code, r.payment_amount, r.payment_method) == ("H", Decimal("0"), "NON")
    (c,) = r.claims
    assert c.status_code == "4" and c.paid_amount == Decimal("0")
    assert [line.units for line in c.lines] == [Decimal("68"), Decimal("16"), Decimal("36")]
    assert all(line.remark_codes == ("N14",) for line in c.lines)
    assert c.lines[1].adjustments == (Adjustment("OA", "A7", Decimal("127.8")),)


MINIMAL = """ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*P*:~
GS*HP*SENDER*RECEIVER*20240101*1200*7*X*005010X221A1~
ST*835*0001~
BPR*I*80*C*ACH*CCP*01*111*DA*222*1234567890**01*333*DA*444*20240105~
TRN*1*EFT123*1234567890~
DTM*405*20240102~
N1*PR*ACME HEALTH*XV*PAYER01~
N1*PE*GOOD CLINIC*XX*1234567893~
LX*1~
CLP*PCN1*1*100*90*10*12*CCN1*11*1~
NM1*QC*1*DOE*JANE****MI*M123~
NM1*74*1*DOE*JANET~
NM1*82*1*SMITH*JOHN****XX*1999999984~
REF*EA*MRN42~
SVC*HC:99213:25*100*90**1*HC:99214~
DTM*472*20231215~
CAS*PR*3*10*1~
REF*6R*LINE-1~
PLB*1234567890*20241231*WO:CCN0*10~
SE*18*0001~
ST*835*0002~
BPR*I*-50*C*ACH~
TRN*1*EFT124*1234567890~
N1*PR*ACME HEALTH~
N1*PE*GOOD CLINIC~
CLP*PCN1*22*-100*-50**12*CCN1*11*1~
CAS*CR*45*-40~
SE*8*0002~
GE*2*7~
IEA*1*000000001~
"""


def test_several_transactions_in_one_interchange():
    first, second = parse_835(MINIMAL)
    assert (first.st_control, second.st_control) == ("0001", "0002")
    assert first.gs_control == second.gs_control == "7" and first.isa_control == "000000001"
    assert (first.payer_id, first.payee_npi, first.payment_date) == ("PAYER01", "1234567893", date(2024, 1, 5))
    (c,) = first.claims
    assert c.corrected_insured.first == "JANET" and c.rendering_npi == "1999999984" and c.refs == {"EA": "MRN42"}
    (line,) = c.lines
    assert line.procedure == Procedure("HC", "99213", ("25",)) and line.original_procedure == Procedure("HC", "99214")
    assert line.line_item_control_number == "LINE-1" and line.service_date_from == date(2023, 12, 15)
    assert line.adjustments == (Adjustment("PR", "3", Decimal("10"), Decimal("1")),)
    assert first.provider_adjustments == (
        ProviderAdjustment("1234567890", date(2024, 12, 31), "WO", "CCN0", Decimal("10")),
    )
    assert balance_problems(first) == []
    (rev,) = second.claims
    assert rev.is_reversal and not c.is_reversal
    assert balance_problems(second) == [
        "ST 0002 claim 1 (PCN1): charge -100 - paid -50 = -50 but adjustments total -40"
    ]


def test_unbalanced_payment_is_reported():
    text = MINIMAL.replace("BPR*I*80*", "BPR*I*81*")
    assert balance_problems(parse_835(text)[0]) == [
        "ST 0001: BPR02 payment 81 != claims paid 90 - provider adjustments 10 = 80"
    ]


def test_several_interchanges_other_separators_and_line_breaks():
    other = load("835_mult_loops.txt").replace("*", "|").replace("~\n", "\r\n")
    other = other.replace("|:\r\n", "|>\n", 1).replace("HC:", "HC>")
    remittances = parse_835(load("835_005010X221A1__managed-care.835") + "\n" + other)
    assert [r.st_control for r in remittances] == ["112233", "0001"]
    assert remittances[1].claims[0].lines[0].procedure == Procedure("HC", "T1005")
    assert remittances[1].isa_control == "000238388"
    # no newlines at all
    flat = load("835_005010X221A1__tertiary-payment.835").replace("\n", "")
    assert parse_835(flat)[0].payment_amount == Decimal("187.50")


def _error(text: str) -> str:
    with pytest.raises(X12Error) as info:
        parse_835(text)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_malformed_inputs():
    assert _error("") == "segment 1: empty input: no ISA segment"
    assert _error("GS*HP~") == "segment 1 (GS): expected an ISA segment (interchange header)"
    assert (
        _error(MINIMAL.replace("ST*835*0001", "ST*837*0001")) == "segment 3 (ST): transaction set '837' is not an 835"
    )
    assert (
        _error(MINIMAL.replace("SE*18*0001~\n", ""))
        == "segment 20 (ST): missing SE: transaction set '0001' (segment 3) is not closed"
    )
    assert (
        _error(MINIMAL.replace("SE*18*", "SE*17*"))
        == "segment 20 (SE): SE01 says 17 segments but the transaction set has 18"
    )
    assert (
        _error(MINIMAL.replace("SE*18*0001", "SE*18*0009"))
        == "segment 20 (SE): SE02 control number '0009' does not match ST02 '0001'"
    )
    truncated = MINIMAL.split("SE*8*0002")[0]
    assert (
        _error(truncated)
        == "segment 21 (ST): missing SE: transaction set '0002' is not closed at the end of the input (truncated file?)"
    )
    assert (
        _error(MINIMAL.replace("CLP*PCN1*1*100*", "CLP*PCN1*1*1O0*"))
        == "segment 10 (CLP): element 03 is not a number: '1O0'"
    )
    assert (
        _error(MINIMAL.replace("BPR*I*80*C*ACH*CCP", "ZZZ*I*80*C*ACH*CCP"))
        == "segment 3 (ST): transaction set has no BPR segment"
    )
    assert (
        _error(MINIMAL.replace("BPR*I*80*C*ACH*CCP", "BPRX*I*80*C*ACH*CCP"))
        == "segment 4 (BPRX): 'BPRX' is not a segment id (wrong segment terminator?)"
    )
    assert (
        _error(MINIMAL.replace("IEA*1*000000001~\n", ""))
        == "segment 29 (GE): missing IEA at the end of the input (truncated file or wrong segment terminator?)"
    )
    assert _error(MINIMAL.replace("GS*HP", "XX*HP")) == "segment 2 (XX): segment outside a transaction set"
