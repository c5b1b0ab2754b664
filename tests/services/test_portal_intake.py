"""Registrations and pre-visit forms staged from the portal: checked before anything is written,
the member id and card photos encrypted, the likely duplicates shown, accepted through the
patient and coverage services (or rejected), the photo read back; another patient's visit is
not found, and the staff actions take the front desk."""

from __future__ import annotations

import pytest

from hpms.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from tests.conftest import count_rows
from tests.services.conftest import NOW, fixed_clock
from tests.services.helpers import audit_rows, query
from tests.services.sched import book_one, clinic

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
FORM = {
    "first_name": "Jamie",
    "last_name": "Lane",
    "dob": "1991-04-05",
    "sex_at_birth": "female",
    "email": "jamie.lane@example.org",
    "phone": "",
    "address_line1": "1 Elm St",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
    "consent_email": "on",
    "reason": "Back pain",
    "payer_name": "Acme Health",
    "member_id": "XZ-12345",
    "group_number": "G7",
}


def _register(ctx_for, form=None, uploads=(), client="127.0.0.9"):
    from hpms.services.portal import intake

    with ctx_for(clock=fixed_clock) as ctx:
        return intake.register_online(ctx, form=dict(form or FORM), uploads=list(uploads), client=client)


def test_a_registration_is_staged_encrypted_and_audited_as_the_applicant(ctx_for, settings):
    from hpms.services.portal import intake

    patients_before = count_rows(settings, "patient")
    out = _register(ctx_for, uploads=[intake.Upload("front", PNG)])
    assert out.id and not out.throttled
    assert count_rows(settings, "patient") == patients_before  # nothing in the chart yet
    row = query(settings, "SELECT * FROM intake_request WHERE id = :i", i=out.id)[0]
    assert row["state"] == "pending" and row["kind"] == "register"
    assert "XZ-12345" not in row["fields_json"] and "XZ-12345" not in (row["member_id_enc"] or "")
    up = query(settings, "SELECT * FROM intake_upload WHERE request_id = :i", i=out.id)[0]
    assert up["content_type"] == "image/png" and up["size"] == len(PNG) and "PNG" not in up["data_enc"]
    ev = [e for e in audit_rows(settings) if e["entity"] == "intake_request"][-1]
    assert ev["action"] == "create" and ev["username"] == "applicant:127.0.0.9"
    assert "member_id" in ev["fields_list"] and "XZ-12345" not in str(ev)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"last_name": ""}, "last_name", "required"),
        ({"dob": "2999-01-01"}, "dob", ""),
        ({"email": "", "phone": ""}, "email", "mobile"),
        ({"member_id": "no spaces!"}, "member_id", "letters, digits"),
        ({"payer_name": ""}, "payer_name", "required"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(ctx_for, settings, change, field, words):
    before = count_rows(settings, "intake_request"), count_rows(settings, "portal_throttle")
    with pytest.raises(ValidationError) as err:
        _register(ctx_for, {**FORM, **change})
    assert err.value.field == field and words in err.value.message
    assert (count_rows(settings, "intake_request"), count_rows(settings, "portal_throttle")) == before


def test_a_photo_must_be_an_image_or_pdf_under_the_cap(ctx_for, settings):
    from hpms.services.portal import intake

    with pytest.raises(ValidationError) as err:
        _register(ctx_for, uploads=[intake.Upload("back", b"GIF89a....")])
    assert err.value.field == "card_back" and "JPEG, PNG or PDF" in err.value.message
    big = b"\xff\xd8\xff" + b"\0" * (settings.portal_upload_mb * 1024 * 1024)
    with pytest.raises(ValidationError) as err:
        _register(ctx_for, uploads=[intake.Upload("front", big)])
    assert err.value.field == "card_front" and "larger than 5 MB" in err.value.message
    assert count_rows(settings, "intake_request") == 0 and count_rows(settings, "intake_upload") == 0


def test_registrations_from_one_address_are_throttled(ctx_for, settings):
    for _ in range(10):
        assert not _register(ctx_for, client="10.0.0.1").throttled
    out = _register(ctx_for, client="10.0.0.1")
    assert out.throttled and out.id is None
    assert not _register(ctx_for, client="10.0.0.2").throttled
    assert count_rows(settings, "intake_request") == 11


def test_accept_creates_the_patient_and_coverage_through_their_services(ctx_for, settings, payer):
    from hpms.services.people import coverage
    from hpms.services.portal import intake

    rid = _register(ctx_for).id
    with ctx_for() as ctx:
        shown = intake.list_requests(ctx)
        assert [r.id for r in shown] == [rid] and shown[0].name == "Jamie Lane"
        detail = intake.show(ctx, rid)
        assert detail.member_id == "XZ-12345" and detail.candidates == []
        out = intake.accept(ctx, rid)
    assert out.created and out.coverage_id
    with ctx_for() as ctx:
        cov = coverage.list_coverage(ctx, out.patient_mrn)
        assert [(c.member_id, c.group_number) for c in cov] == [("XZ-12345", "G7")]
        assert intake.list_requests(ctx) == []
        assert intake.list_requests(ctx, state="accepted")[0].patient_mrn == out.patient_mrn
        with pytest.raises(ConflictError, match="already accepted"):
            intake.accept(ctx, rid)
    p = query(settings, "SELECT consent_email, consent_sms, email FROM patient WHERE id = :i", i=out.patient_id)[0]
    assert bool(p["consent_email"]) and not p["consent_sms"] and p["email"] == "jamie.lane@example.org"
    actions = {(e["action"], e["entity"]) for e in audit_rows(settings)}
    assert {("create", "patient"), ("create", "coverage"), ("accept", "intake_request")} <= actions


def test_a_likely_duplicate_is_shown_and_refused_unless_merged_or_new(ctx_for, settings, register, payer):
    from hpms.services.people.patients import LikelyDuplicate
    from hpms.services.portal import intake

    known = register(first_name="Jamie", last_name="Lane", dob="1991-04-05")
    rid = _register(ctx_for).id
    with ctx_for() as ctx:
        assert [c.patient.mrn for c in intake.show(ctx, rid).candidates] == [known.mrn]
    patients_before = count_rows(settings, "patient")
    with pytest.raises(LikelyDuplicate), ctx_for() as ctx:
        intake.accept(ctx, rid)
    assert count_rows(settings, "patient") == patients_before
    assert query(settings, "SELECT state FROM intake_request")[0]["state"] == "pending"
    with ctx_for() as ctx:
        out = intake.accept(ctx, rid, merge_into=known.mrn)
    assert not out.created and out.patient_mrn == known.mrn
    assert count_rows(settings, "patient") == patients_before
    assert query(settings, "SELECT email FROM patient WHERE id = :i", i=known.id)[0]["email"] == FORM["email"]


def test_an_unknown_payer_writes_nothing(ctx_for, settings):
    from hpms.services.portal import intake

    rid = _register(ctx_for).id
    before = count_rows(settings, "patient")
    with pytest.raises(NotFoundError) as err, ctx_for() as ctx:
        intake.accept(ctx, rid)
    assert err.value.field == "payer"
    assert count_rows(settings, "patient") == before
    with ctx_for() as ctx:
        assert intake.accept(ctx, rid, skip_coverage=True).coverage_id is None


def test_reject_keeps_the_reason_and_photo_reads_back(ctx_for, settings):
    from hpms.services.portal import intake

    rid = _register(ctx_for, uploads=[intake.Upload("front", PNG)]).id
    with ctx_for() as ctx:
        with pytest.raises(ValidationError) as err:
            intake.reject(ctx, rid, reason=" ")
        assert err.value.field == "reason"
        assert intake.photo(ctx, rid, side="front").data == PNG
        with pytest.raises(NotFoundError) as err:
            intake.photo(ctx, rid, side="back")
        assert err.value.field == "side"
        assert intake.reject(ctx, rid, reason="sent twice").state == "rejected"
    assert query(settings, "SELECT decision_note FROM intake_request")[0]["decision_note"] == "sent twice"
    assert any(e["entity"] == "intake_upload" and e["action"] == "read" for e in audit_rows(settings))


def test_a_pre_visit_form_is_for_ones_own_visit_to_come(ctx_for, settings, register, payer):
    from hpms.services.portal import access, intake

    c = clinic(ctx_for, register)
    other = register(first_name="Alex", last_name="Roe")
    visit = book_one(ctx_for, c, "2026-06-22 09:00")
    with ctx_for(clock=fixed_clock) as ctx:
        pctx = access.as_patient(ctx, c.patient)
        rid = intake.submit_intake(
            pctx, appointment=str(visit.id), form={"phone": "(217) 555-0100", "reason": "Check-up"}, uploads=[]
        )
        with pytest.raises(NotFoundError) as err:
            intake.submit_intake(access.as_patient(ctx, other.id), appointment=str(visit.id), form={}, uploads=[])
        assert err.value.field == "appointment"
        with pytest.raises(ValidationError) as verr:
            intake.submit_intake(pctx, appointment=str(visit.id), form={"reason": " "}, uploads=[])
        assert verr.value.field == "reason" and "what changed" in verr.value.message
    with ctx_for() as ctx:
        detail = intake.show(ctx, rid)
        assert detail.kind == "update" and detail.patient_mrn == c.mrn
        assert detail.fields["phone"] and "first_name" not in detail.fields
        out = intake.accept(ctx, rid)
    assert out.patient_id == c.patient and not out.created
    assert query(settings, "SELECT phone_digits FROM patient WHERE id = :i", i=c.patient)[0]["phone_digits"]
    assert NOW  # the visit is to come at the fixed clock


def test_staff_actions_take_the_front_desk(ctx_for, make_user):
    from hpms.services.portal import intake

    make_user("bill", "biller")
    with pytest.raises(PermissionDenied, match="read the registrations"), ctx_for("bill") as ctx:
        intake.list_requests(ctx)


def test_key_rotation_reencrypts_the_staged_member_id_and_photos(ctx_for, settings):
    from hpms.services.platform import admin
    from hpms.services.portal import intake

    rid = _register(ctx_for, uploads=[intake.Upload("back", PNG)]).id
    enc = query(settings, "SELECT member_id_enc FROM intake_request")[0]["member_id_enc"]
    with ctx_for() as ctx:
        out = admin.rotate_keys(ctx)
    assert out["reencrypted"]["member_id"] == 1 and out["reencrypted"]["attachment"] == 1
    admin.finish_rotation(settings, out["key_id"])
    assert query(settings, "SELECT member_id_enc FROM intake_request")[0]["member_id_enc"] != enc
    with ctx_for() as ctx:
        assert intake.show(ctx, rid).member_id == "XZ-12345"
        assert intake.photo(ctx, rid, side="back").data == PNG
