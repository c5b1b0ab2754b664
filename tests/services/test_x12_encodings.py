"""X12 files as they arrive from clearinghouses: a UTF-8 byte order mark, names outside ASCII
(as UTF-8 or as Latin-1 bytes) in 271 answers and 835 remittances, and files that are not X12
text, refused with one line naming the file and the fault while nothing is imported."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hpms.errors import ValidationError
from tests.eligibility_fixtures import active_loop, answer_271, setup_practice
from tests.remit_fixtures import claim, interchange, line, payment
from tests.services.conftest import fixed_clock
from tests.services.helpers import counts, query

BOM = b"\xef\xbb\xbf"
ENCODINGS = {
    "utf-8": lambda t: t.encode("utf-8"),
    "utf-8 with a BOM": lambda t: BOM + t.encode("utf-8"),
    "latin-1": lambda t: t.encode("latin-1"),
}


def run(ctx_for, fn, *args, **kw):
    from hpms.services.billing import eligibility

    with ctx_for(clock=fixed_clock) as ctx:
        return getattr(eligibility, fn)(ctx, *args, **kw)


# ---- 271 -----------------------------------------------------------------------------------


@pytest.fixture
def muellers(settings, ctx_for, register, tmp_path):
    """José Müller (self) and his daughter Zoë share ACME1's member id M4242; both are asked
    about for 16 June 2026. Returns {first name: check id} and the reference of Zoë's 270."""
    from hpms.services.people import coverage

    setup_practice(ctx_for, register)
    jose = register(first_name="José", last_name="Müller", dob="1980-01-01")
    zoe = register(first_name="Zoë", last_name="Müller", dob="2012-02-02")
    with ctx_for(clock=fixed_clock) as ctx:
        coverage.add_coverage(ctx, patient=jose.mrn, payer="ACME1", member_id="M4242")
        coverage.add_coverage(
            ctx,
            patient=zoe.mrn,
            payer="ACME1",
            member_id="M4242",
            relationship="child",
            subscriber="Müller, José",
            subscriber_dob="1980-01-01",
        )
    ids = {}
    for who, p in (("JOSÉ", jose), ("ZOË", zoe)):
        out = tmp_path / f"{p.mrn}.270"
        r = run(ctx_for, "request", patient=p.mrn, date="2026-06-16", out=out)
        ids[who] = r.check_ids[0]
    # the 270 is ASCII: the names go out folded
    assert "NM1*03*1*MULLER*ZOE~" in out.read_text() and "NM1*IL*1*MULLER*JOSE****MI*M4242~" in out.read_text()
    return ids, r.reference


def statuses(settings) -> dict[int, tuple]:
    return {
        c["id"]: (c["status"], c["plan_name"])
        for c in query(settings, "SELECT id, status, plan_name FROM eligibility_check ORDER BY id")
    }


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_271_with_names_outside_ascii_is_matched_by_name(settings, ctx_for, muellers, tmp_path, encoding):
    ids, reference = muellers
    text = answer_271(
        active_loop(None, "M4242", "MÜLLER", "JOSÉ", plan="PLAN JOSÉ"),
        [
            "DEP",
            ["NM1*IL*1*MÜLLER*JOSÉ****MI*M4242"],
            "NM1*03*1*MÜLLER*ZOË",
            "DMG*D8*20120202",
            "DTP*291*D8*20260616",
            "EB*6**30**PLAN ZOË",
        ],
        reference=reference,
    )
    path = tmp_path / "answer.271"
    path.write_bytes(ENCODINGS[encoding](text))
    r = run(ctx_for, "import_271", path)
    assert (r.answers, r.updated, r.recorded, r.unmatched) == (2, 2, 0, [])
    assert statuses(settings) == {ids["JOSÉ"]: ("active", "PLAN JOSÉ"), ids["ZOË"]: ("inactive", "PLAN ZOË")}
    before = statuses(settings)
    again = run(ctx_for, "import_271", path)
    assert (again.updated, again.unchanged, again.recorded) == (0, 2, 0)
    assert statuses(settings) == before


def test_a_271_answer_about_someone_unknown_keeps_the_name_as_sent(settings, ctx_for, muellers, tmp_path):
    path = tmp_path / "answer.271"
    path.write_bytes(BOM + answer_271(active_loop(None, "X77", "NGUYỄN", "THỊ LAN")).encode("utf-8"))
    r = run(ctx_for, "import_271", path)
    assert [(u["name"], u["member"]) for u in r.unmatched] == [("NGUYỄN, THỊ LAN", "…X77")]


@pytest.mark.parametrize(
    "content, fault",
    [
        (b"\x00\x01\x02\x03PK binary \xff\xfe", "NUL characters"),
        ("ISA*00".encode("utf-16"), "NUL characters"),
        (BOM + b"Dear billing office, please find attached", "expected an ISA segment"),
        (BOM, "empty input"),
        (b"   \n", "empty input"),
    ],
)
def test_a_271_that_is_not_x12_text_is_refused_in_one_line(settings, ctx_for, muellers, tmp_path, content, fault):
    path = tmp_path / "odd.271"
    path.write_bytes(content)
    before = statuses(settings), counts(settings, "eligibility_check", "audit_event")
    with pytest.raises(ValidationError) as exc:
        run(ctx_for, "import_271", path)
    message = exc.value.message
    assert exc.value.field == "file" and "\n" not in message
    assert message.startswith("odd.271 is not a valid 271: ") and fault in message and "nothing imported" in message
    assert (statuses(settings), counts(settings, "eligibility_check", "audit_event")) == before


# ---- 835 -----------------------------------------------------------------------------------

REMIT_TABLES = ("ledger_entry", "remit_file", "remittance", "remit_claim", "remit_adjustment")


@pytest.fixture
def billed(settings, ctx_for, tmp_path):
    """Bob's visit billed to ACME1: returns the claim's control number."""
    from hpms.services.billing import runner as billing
    from tests.billing_fixtures import setup_practice as billing_practice
    from tests.billing_fixtures import signed

    p = billing_practice(ctx_for)
    signed(ctx_for, p.bob, "E11.9", "99213:1")
    out = tmp_path / "out"
    out.mkdir()
    assert billing.run(settings, out_dir=str(out)).claims == 1
    return query(settings, "SELECT control_number FROM claim")[0]["control_number"]


def post(ctx_for, path):
    from hpms.services.payments import remits

    with ctx_for() as ctx:
        return remits.import_file(ctx, path)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_an_835_with_a_bom_or_names_outside_ascii_posts(settings, ctx_for, billed, tmp_path, encoding):
    paid = claim(billed, [line("99213", "100", "80", ("CO", "45", "20"))], patient=("MÜLLER", "JOSÉ", "M123456"))
    path = tmp_path / "era.835"
    path.write_bytes(ENCODINGS[encoding](interchange(payment([paid], payer=("ACME SANTÉ", "ACME1")))))
    out = post(ctx_for, path)
    assert (out.posted, out.unmatched, out.paid) == (1, [], Decimal("80.00"))
    assert query(settings, "SELECT patient_name FROM remit_claim") == [{"patient_name": "MÜLLER, JOSÉ"}]


def test_an_835_with_a_bom_only_posts_like_without(settings, ctx_for, billed, tmp_path):
    paid = claim(billed, [line("99213", "100", "80", ("CO", "45", "20"))])
    path = tmp_path / "era.835"
    path.write_bytes(BOM + interchange(payment([paid])).encode("ascii"))
    assert post(ctx_for, path).posted == 1


@pytest.mark.parametrize(
    "content, fault",
    [
        (b"\x00\x01\x02\x03PK binary \xff\xfe", "NUL characters"),
        ("ISA*00".encode("utf-16"), "NUL characters"),
        (BOM + b"Dear billing office, please find attached", "expected an ISA segment"),
    ],
)
def test_an_835_that_is_not_x12_text_is_refused_in_one_line(settings, ctx_for, billed, tmp_path, content, fault):
    path = tmp_path / "odd.835"
    path.write_bytes(content)
    before = counts(settings, *REMIT_TABLES)
    with pytest.raises(ValidationError) as exc:
        post(ctx_for, path)
    message = exc.value.message
    assert exc.value.field == "file" and "\n" not in message
    assert message.startswith("odd.835 is not a valid 835: ") and fault in message
    assert counts(settings, *REMIT_TABLES) == before
