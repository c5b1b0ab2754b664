"""The claim scrubber: every rule id, on drafts built directly (no database)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from hpms.services.billing.scrubber import ClaimDraft, ClaimParties, DraftLine, rules, scrub, scrub_parties

TODAY = dt.date(2026, 6, 15)
DOS = dt.date(2026, 6, 10)


def line(seq=1, code="99213", modifiers=(), units=1, pointers=(1,), charge=10000, date=DOS) -> DraftLine:
    return DraftLine(
        seq=seq,
        code=code,
        modifiers=tuple(modifiers),
        units=units,
        pointers=tuple(pointers),
        charge_cents=charge,
        service_date=date,
    )


def draft(**changes) -> ClaimDraft:
    """A clean draft (no finding) with the given fields replaced; `total_cents` follows the lines
    unless given."""
    lines = changes.pop("lines", None) or [line(1), line(2, code="36415", pointers=(1, 2), charge=1500)]
    base = ClaimDraft(
        encounter_id=1,
        service_date=DOS,
        place_of_service="11",
        diagnoses=("E119", "I10"),
        lines=lines,
        total_cents=sum(ln.charge_cents or 0 for ln in lines),
        billing_npi="1234567893",
        billing_zip="12345-6789",
        billing_address1="1 Main St",
        billing_city="Springfield",
        billing_state="NY",
        patient_address1="5 Elm",
        patient_city="Springfield",
        patient_state="NY",
        patient_zip="12345",
        tax_id="123456789",
        rendering_npi="1245319599",
        payer_id=7,
        payer_code="ACME1",
        subscriber_member_id="enc:M123",
        subscriber_last="Jones",
        subscriber_first="Bob",
        subscriber_dob=dt.date(1970, 1, 1),
        today=TODAY,
    )
    return dataclasses.replace(base, **changes)


def ids(d: ClaimDraft) -> list[str]:
    return [f.rule_id for f in scrub(d)]


def only(d: ClaimDraft, rule_id: str):
    """Assert the draft's findings are all of `rule_id` (at least one); return them."""
    found = scrub(d)
    assert found, f"expected {rule_id}, got no finding"
    assert {f.rule_id for f in found} == {rule_id}, [(f.rule_id, f.message) for f in found]
    assert all(f.severity == "error" for f in found)
    return found


def test_the_clean_draft_has_no_finding():
    assert scrub(draft()) == []


def test_findings_state_facts_and_name_no_command():
    """The field of a finding names what to fix; its message says what is wrong, in words."""
    found = scrub(
        draft(
            billing_npi=None,
            rendering_npi=None,
            tax_id=None,
            lines=[line(1, charge=None)],
        )
    )
    assert {f.rule_id for f in found} >= {"NPI-BILLING", "NPI-RENDERING", "TAX-ID", "FEE-PRESENT"}
    assert [f.message for f in found if "hpms" in f.message or "--" in f.message] == []


# ---- identities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "npi, words",
    [
        (None, "no group NPI"),
        ("", "no group NPI"),
        ("1234567890", "fails the check digit"),
        ("123456789", "fails the check digit"),
        ("12345678AB", "fails the check digit"),
    ],
)
def test_npi_billing(npi, words):
    (f,) = only(draft(billing_npi=npi), "NPI-BILLING")
    assert f.field == "location.npi" and words in f.message


@pytest.mark.parametrize("npi", ["1234567893", "1245319599", "1003000126"])
def test_npi_luhn_with_prefix_80840_passes(npi):
    assert "NPI-BILLING" not in ids(draft(billing_npi=npi))
    assert "NPI-RENDERING" not in ids(draft(rendering_npi=npi))


@pytest.mark.parametrize(
    "npi, words",
    [
        (None, "no NPI"),
        ("1245319598", "fails the check digit"),
        # passes a plain Luhn check but not with the 80840 prefix
        ("1234567897", "fails the check digit"),
    ],
)
def test_npi_rendering(npi, words):
    from hpms.codes.npi import luhn_ok

    if npi == "1234567897":
        assert luhn_ok(npi)
    (f,) = only(draft(rendering_npi=npi), "NPI-RENDERING")
    assert f.field == "provider.npi" and words in f.message


@pytest.mark.parametrize("tax_id", [None, "", "12345678", "1234567890", "12345678A", "12-345678"])
def test_tax_id(tax_id):
    (f,) = only(draft(tax_id=tax_id), "TAX-ID")
    assert f.field == "billing.tax_id"


@pytest.mark.parametrize("zip_", [None, "12345", "12345-678", "1234567890"])
def test_zip9(zip_):
    (f,) = only(draft(billing_zip=zip_), "ZIP-9")
    assert f.field == "location.postal_code" and "9 digits" in f.message


@pytest.mark.parametrize("zip_", ["12345-6789", "123456789"])
def test_zip9_accepts_nine_digits(zip_):
    assert scrub(draft(billing_zip=zip_)) == []


# ---- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, name, words",
    [
        ("billing_address1", "address_line1", "no street address"),
        ("billing_city", "city", "no city"),
        ("billing_state", "state", "no state"),
    ],
)
@pytest.mark.parametrize("value", [None, "", "  ", "*~"])
def test_addr_billing(field, name, words, value):
    (f,) = only(draft(**{field: value}), "ADDR-BILLING")
    assert f.field == f"location.{name}" and f.message == f"the billing location has {words}"


def test_addr_billing_leaves_the_zip_to_zip9():
    assert ids(draft(billing_zip=None, billing_city=None)) == ["ZIP-9", "ADDR-BILLING"]


@pytest.mark.parametrize(
    "field, name",
    [
        ("patient_address1", "address_line1"),
        ("patient_city", "city"),
        ("patient_state", "state"),
        ("patient_zip", "postal_code"),
    ],
)
@pytest.mark.parametrize("value", [None, "", " "])
def test_addr_patient(field, name, value):
    (f,) = only(draft(**{field: value}), "ADDR-PATIENT")
    assert f.field == f"patient.{name}" and f.message.startswith("the patient has no ")


def test_addr_patient_all_missing_gives_four_findings():
    found = only(draft(patient_address1=None, patient_city=None, patient_state=None, patient_zip=None), "ADDR-PATIENT")
    assert [f.field for f in found] == ["patient.address_line1", "patient.city", "patient.state", "patient.postal_code"]


@pytest.mark.parametrize("state", ["New York", "N.Y.", "XX", "ZZ", "N Y", "1"])
def test_addr_state(state):
    (f,) = only(draft(patient_state=state), "ADDR-STATE")
    assert f.field == "patient.state" and repr(state) in f.message
    (f,) = only(draft(billing_state=state), "ADDR-STATE")
    assert f.field == "location.state" and "billing location" in f.message


@pytest.mark.parametrize("state", ["NY", "ny", " CT ", "DC", "PR", "VI", "GU", "AS", "MP", "AA", "AE", "AP", "WY"])
def test_addr_state_accepts_usps_codes(state):
    assert scrub(draft(patient_state=state, billing_state=state)) == []


@pytest.mark.parametrize("zip_", ["1234", "123456", "12345-678", "1234567890", "ABCDE", "12345-67890", "12.345"])
def test_addr_zip(zip_):
    (f,) = only(draft(patient_zip=zip_), "ADDR-ZIP")
    assert f.field == "patient.postal_code" and "5 or 9 digits" in f.message


@pytest.mark.parametrize("zip_", ["12345", "12345-6789", "123456789", " 06103 ", "06103 1234"])
def test_addr_zip_accepts_five_or_nine_digits(zip_):
    assert scrub(draft(patient_zip=zip_)) == []


# ---- Medicare as secondary payer -------------------------------------------------------------


@pytest.mark.parametrize("filing", ["MB", "MA"])
@pytest.mark.parametrize("responsibility", ["S", "T"])
def test_msp_type_missing_on_a_medicare_secondary_claim(filing, responsibility):
    (f,) = only(draft(payer_filing=filing, responsibility=responsibility), "MSP-TYPE")
    assert f.field == "coverage.medicare_secondary_type" and "no Medicare secondary type" in f.message
    (f,) = only(draft(payer_filing=filing, responsibility=responsibility, medicare_secondary_type="99"), "MSP-TYPE")
    assert "'99' is not a Medicare secondary type" in f.message


@pytest.mark.parametrize("code", ["12", "13", "14", "15", "16", "41", "42", "43", "47"])
def test_msp_type_present(code):
    assert scrub(draft(payer_filing="MB", responsibility="S", medicare_secondary_type=code)) == []


@pytest.mark.parametrize("filing, responsibility", [("MB", "P"), ("MA", "P"), ("CI", "S"), ("MC", "S"), ("16", "S")])
def test_msp_type_only_for_medicare_when_not_primary(filing, responsibility):
    assert scrub(draft(payer_filing=filing, responsibility=responsibility)) == []


# ---- the party rules alone (claims built earlier, checked before they are written) ---------------


def parties(**changes) -> ClaimParties:
    base = ClaimParties(
        billing_zip="12345-6789",
        billing_address1="1 Main St",
        billing_city="Springfield",
        billing_state="NY",
        patient_address1="5 Elm",
        patient_city="Springfield",
        patient_state="NY",
        patient_zip="12345",
        payer_filing="MB",
        responsibility="S",
        medicare_secondary_type="12",
    )
    return dataclasses.replace(base, **changes)


def test_scrub_parties_runs_only_the_party_rules():
    from hpms.services.billing.scrubber import PARTY_RULES

    assert [rid for rid, _, _ in PARTY_RULES] == [
        "ZIP-9",
        "ADDR-BILLING",
        "ADDR-PATIENT",
        "ADDR-STATE",
        "ADDR-ZIP",
        "MSP-TYPE",
    ]
    assert scrub_parties(parties()) == []
    found = scrub_parties(
        parties(billing_zip="12345", patient_city=None, patient_state="Ohio", medicare_secondary_type=None)
    )
    assert [(f.rule_id, f.field) for f in found] == [
        ("ZIP-9", "location.postal_code"),
        ("ADDR-PATIENT", "patient.city"),
        ("ADDR-STATE", "patient.state"),
        ("MSP-TYPE", "coverage.medicare_secondary_type"),
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"billing_zip": None},
        {"billing_address1": " "},
        {"billing_city": None},
        {"billing_state": "XX"},
        {"billing_state": None},
        {"patient_address1": None},
        {"patient_city": "~"},
        {"patient_state": "Ohio"},
        {"patient_state": ""},
        {"patient_zip": "1234"},
        {"patient_zip": None},
        {"medicare_secondary_type": None},
        {"medicare_secondary_type": "11"},
        {"responsibility": "P", "medicare_secondary_type": None},
        {"payer_filing": "CI", "medicare_secondary_type": None},
    ],
)
def test_the_party_fast_path_agrees_with_the_party_rules(changes):
    from hpms.services.billing.scrubber import PARTY_RULES

    p = parties(**changes)
    assert scrub_parties(p) == [f for _, _, fn in PARTY_RULES for f in fn(p)]


# ---- diagnoses -------------------------------------------------------------------------------


def test_dx_present_none():
    d = draft(diagnoses=(), lines=[line(1, pointers=())])
    found = scrub(d)
    assert [f.rule_id for f in found] == ["DX-PRESENT", "DX-POINTER"]
    assert found[0].message == "no diagnosis"


def test_dx_present_thirteen():
    codes = ("E119", "I10", "J069", "R059", "R509", "M5450", "K219", "E785", "F419", "G4700", "N390", "R519", "Z0000")
    (f,) = only(draft(diagnoses=codes), "DX-PRESENT")
    assert "13 diagnoses" in f.message


def test_dx_present_twelve_is_fine():
    codes = ("E119", "I10", "J069", "R059", "R509", "M5450", "K219", "E785", "F419", "G4700", "N390", "Z0000")
    assert scrub(draft(diagnoses=codes)) == []


def test_dx_nodot():
    (f,) = only(draft(diagnoses=("E11.9", "I10")), "DX-NODOT")
    assert f.field == "diagnosis 1" and "E119" in f.message


def test_dx_exists():
    found = only(draft(diagnoses=("E119", "Q999X")), "DX-EXISTS")
    assert [f.field for f in found] == ["diagnosis 2"]
    assert "Q999X is not an ICD-10-CM code" in found[0].message


def test_dx_billable_category():
    (f,) = only(draft(diagnoses=("E11", "I10")), "DX-BILLABLE")
    assert f.field == "diagnosis 1" and "E11" in f.message and "category" in f.message


def test_dx_billable_leaf_is_fine():
    assert "DX-BILLABLE" not in ids(draft(diagnoses=("E119", "I10")))


def test_dx_pointer_to_a_missing_diagnosis():
    (f,) = only(draft(lines=[line(1, pointers=(1, 3))]), "DX-POINTER")
    assert f.field == "line 1" and "pointer 3" in f.message


def test_dx_pointer_none_and_more_than_four():
    dx = ("E119", "I10", "J069", "R059", "R509")
    found = only(
        draft(diagnoses=dx, lines=[line(1, pointers=()), line(2, code="36415", pointers=(1, 2, 3, 4, 5))]), "DX-POINTER"
    )
    assert [(f.field, f.message) for f in found] == [
        ("line 1", "no diagnosis pointer"),
        ("line 2", "more than 4 diagnosis pointers"),
    ]


def test_dx_pointer_zero():
    (f,) = only(draft(lines=[line(1, pointers=(0,))]), "DX-POINTER")
    assert "pointer 0" in f.message


def test_four_pointers_are_fine():
    dx = ("E119", "I10", "J069", "R059")
    assert scrub(draft(diagnoses=dx, lines=[line(1, pointers=(1, 2, 3, 4))])) == []


# ---- lines -----------------------------------------------------------------------------------


def test_lines_present_none():
    d = draft()
    d.lines = []
    d.total_cents = 0
    (f,) = only(d, "LINES-PRESENT")
    assert f.message == "no service line"


def test_lines_present_more_than_fifty():
    lines = [line(i, modifiers=(), pointers=(1,), charge=100, date=DOS - dt.timedelta(days=i)) for i in range(1, 52)]
    (f,) = only(draft(lines=lines), "LINES-PRESENT")
    assert "51 lines" in f.message
    assert scrub(draft(lines=lines[:50])) == []


@pytest.mark.parametrize("code", ["9921", "ABCDE", "992134", "Z9999", "0000A"])
def test_proc_valid(code):
    (f,) = only(draft(lines=[line(1, code=code)]), "PROC-VALID")
    assert f.field == "line 1"


@pytest.mark.parametrize("code", ["99213", "0001U", "G0008", "J1100", "0521F", "0042T"])
def test_proc_valid_accepts_cpt_and_hcpcs(code):
    assert "PROC-VALID" not in ids(draft(lines=[line(1, code=code)]))


def test_modifier_valid_unknown_and_too_many():
    found = only(
        draft(lines=[line(1, modifiers=("ZZ",)), line(2, code="36415", modifiers=("25", "59", "76", "91", "GA"))]),
        "MODIFIER-VALID",
    )
    assert [f.field for f in found] == ["line 1", "line 2"]
    assert "more than 4 modifiers" in found[1].message
    assert scrub(draft(lines=[line(1, modifiers=("25", "59", "76", "91"))])) == []


@pytest.mark.parametrize("units", [0, -1])
def test_units_positive(units):
    (f,) = only(draft(lines=[line(1, units=units)]), "UNITS-POSITIVE")
    assert f"units {units}" in f.message


def test_dos_not_future():
    tomorrow = TODAY + dt.timedelta(days=1)
    (f,) = only(draft(service_date=tomorrow, lines=[line(1, date=tomorrow)]), "DOS-NOT-FUTURE")
    assert str(tomorrow) in f.message
    # a line in the future is caught too; today is fine
    assert ids(draft(lines=[line(1, date=tomorrow)])) == ["DOS-NOT-FUTURE"]
    assert scrub(draft(service_date=TODAY, lines=[line(1, date=TODAY)])) == []


def test_line_duplicate():
    (f,) = only(draft(lines=[line(1), line(2)]), "LINE-DUPLICATE")
    assert f.field == "line 2" and "line 1" in f.message
    # another modifier or another date makes it a different line
    assert scrub(draft(lines=[line(1), line(2, modifiers=("76",))])) == []
    assert scrub(draft(lines=[line(1), line(2, date=DOS - dt.timedelta(days=1))])) == []


@pytest.mark.parametrize("pos", ["00", "1", "35", "XX", ""])
def test_pos_valid(pos):
    (f,) = only(draft(place_of_service=pos), "POS-VALID")
    assert f.field == "place_of_service"


@pytest.mark.parametrize("pos", ["11", "02", "22", "99"])
def test_pos_valid_accepts_cms_codes(pos):
    assert scrub(draft(place_of_service=pos)) == []


# ---- payer, subscriber, money ----------------------------------------------------------------


def test_payer_id_no_coverage():
    # without coverage there is no subscriber to check: only PAYER-ID
    (f,) = only(
        draft(
            payer_id=None,
            payer_code=None,
            subscriber_member_id=None,
            subscriber_last=None,
            subscriber_first=None,
            subscriber_dob=None,
        ),
        "PAYER-ID",
    )
    assert f.field == "coverage" and "no active insurance coverage" in f.message


def test_payer_id_payer_without_x12_id():
    (f,) = only(draft(payer_code=None), "PAYER-ID")
    assert f.field == "payer.payer_id"


@pytest.mark.parametrize(
    "field, name",
    [
        ("subscriber_member_id", "member_id"),
        ("subscriber_last", "last_name"),
        ("subscriber_first", "first_name"),
        ("subscriber_dob", "date_of_birth"),
    ],
)
def test_subscriber(field, name):
    (f,) = only(draft(**{field: None}), "SUBSCRIBER")
    assert f.field == f"subscriber.{name}"


def test_subscriber_all_missing_gives_four_findings():
    found = only(
        draft(subscriber_member_id=None, subscriber_last=None, subscriber_first=None, subscriber_dob=None), "SUBSCRIBER"
    )
    assert len(found) == 4


def test_fee_present_missing_and_not_positive():
    found = only(draft(lines=[line(1, charge=None), line(2, code="36415", charge=0)], total_cents=0), "FEE-PRESENT")
    assert [f.field for f in found] == ["line 1", "line 2"]
    assert "no fee for 99213" in found[0].message and "not positive" in found[1].message


def test_claim_total():
    (f,) = only(draft(total_cents=11400), "CLAIM-TOTAL")
    assert "114.00" in f.message and "115.00" in f.message


def test_claim_total_is_not_checked_when_a_fee_is_missing():
    assert ids(draft(lines=[line(1, charge=None)], total_cents=5)) == ["FEE-PRESENT"]


# ---- the list --------------------------------------------------------------------------------

ALL_RULES = [
    "NPI-BILLING",
    "NPI-RENDERING",
    "TAX-ID",
    "ZIP-9",
    "ADDR-BILLING",
    "ADDR-PATIENT",
    "ADDR-STATE",
    "ADDR-ZIP",
    "DX-PRESENT",
    "DX-NODOT",
    "DX-EXISTS",
    "DX-BILLABLE",
    "DX-POINTER",
    "LINES-PRESENT",
    "PROC-VALID",
    "MODIFIER-VALID",
    "UNITS-POSITIVE",
    "DOS-NOT-FUTURE",
    "LINE-DUPLICATE",
    "POS-VALID",
    "PAYER-ID",
    "SUBSCRIBER",
    "MSP-TYPE",
    "FEE-PRESENT",
    "CLAIM-TOTAL",
]


def test_rule_ids_are_stable_and_unique():
    listed = [rid for rid, _ in rules()]
    assert listed == ALL_RULES
    assert all(desc for _, desc in rules())


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"billing_npi": "1234567890"},
        {"rendering_npi": None},
        {"tax_id": "12345"},
        {"billing_zip": "12345"},
        {"diagnoses": ()},
        {"diagnoses": ("E11.9",)},
        {"diagnoses": ("E11",)},
        {"diagnoses": ("Q99999",)},
        {"place_of_service": "98"},
        {"payer_id": None},
        {"payer_code": ""},
        {"subscriber_dob": None},
        {"service_date": DOS + dt.timedelta(days=400)},
        {"total_cents": 1},
        {"lines": [line(units=0)]},
        {"lines": [line(pointers=(2,))]},
        {"lines": [line(modifiers=("ZZ",))]},
        {"lines": [line(code="9921")]},
        {"lines": [line(charge=None)]},
        {"lines": [line(), line(seq=2)]},
        {"billing_address1": None},
        {"billing_city": "*"},
        {"billing_state": "New York"},
        {"billing_state": None},
        {"patient_address1": ""},
        {"patient_city": None},
        {"patient_state": "XX"},
        {"patient_state": None},
        {"patient_zip": "123"},
        {"patient_zip": None},
        {"patient_zip": "12345 6789"},
        {"payer_filing": "MB", "responsibility": "S"},
        {"payer_filing": "MB", "responsibility": "S", "medicare_secondary_type": "43"},
        {"payer_filing": "MA", "responsibility": "T", "medicare_secondary_type": "1"},
        {"payer_filing": "MB", "responsibility": "P"},
    ],
)
def test_the_fast_path_agrees_with_the_rules(changes):
    """scrub() skips the rules for a draft its inline check finds clean: both must agree."""
    from hpms.services.billing.scrubber import RULES

    d = draft(**changes)
    full = [f for _, _, fn in RULES for f in fn(d)]
    assert scrub(d) == full
