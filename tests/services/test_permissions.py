"""The role x action table, walked as a whole matrix, and refusals seen through the services."""

from __future__ import annotations

import pytest

from hpms.errors import ExitCode, NotFoundError, PermissionDenied
from hpms.models import Actor
from hpms.services.platform.permissions import (
    PATIENT_ACTIONS,
    PERMISSIONS,
    ROLES,
    allowed,
    describe,
    require,
    roles_for,
)
from tests.services.conftest import fixed_clock
from tests.services.helpers import query, snapshot

ROLE_COLUMNS = ("admin", "front_desk", "biller", "provider", "auditor", "service")

# The intended policy, written out by hand: x = allowed, . = refused.
MATRIX = """
action              admin front_desk biller provider auditor service
org.read              x       x        x       x        x       x
location.read         x       x        x       x        x       x
location.write        x       .        .       .        .       .
user.self             x       x        x       x        x       x
user.read             x       .        .       .        x       .
user.write            x       .        .       .        .       .
patient.read          x       x        x       x        .       .
patient.create        x       x        .       .        .       .
patient.update        x       x        .       .        .       .
patient.import        x       x        .       .        .       .
patient.merge         x       x        .       .        .       .
patient.reveal_ssn    x       .        x       .        .       .
coverage.read         x       x        x       x        .       .
coverage.write        x       x        x       .        .       .
payer.read            x       x        x       x        .       x
payer.write           x       .        x       .        .       .
audit.read            x       .        .       .        x       .
audit.verify          x       .        .       .        x       x
keys.rotate           x       .        .       .        .       .
keys.export           x       .        .       .        .       .
doctor.run            x       .        .       .        x       x
db.check              x       .        .       .        x       x
db.backup             x       .        .       .        .       x
db.admin              x       .        .       .        .       .
demo.build            x       .        .       .        .       .
provider.read         x       x        x       x        .       x
provider.write        x       .        .       .        .       .
schedule.read         x       x        x       x        .       x
schedule.setup        x       .        .       .        .       .
schedule.write        x       x        .       .        .       .
appointment.read      x       x        x       x        .       x
appointment.book      x       x        .       x        .       .
appointment.update    x       x        .       x        .       .
appointment.override  x       .        .       x        .       .
appointment.export    x       x        .       x        .       x
waitlist.read         x       x        x       x        .       .
waitlist.write        x       x        .       .        .       .
codes.read            x       x        x       x        .       x
codes.import          x       .        x       .        .       .
fee.read              x       x        x       x        .       .
fee.write             x       .        x       .        .       .
encounter.read        x       x        x       x        .       .
encounter.write       x       .        x       x        .       .
encounter.sign        x       .        x       x        .       .
billing.read          x       .        x       .        .       x
billing.setup         x       .        x       .        .       .
billing.run           x       .        x       .        .       x
claims.read           x       .        x       .        .       .
claims.write          x       .        x       .        .       .
reports.run           x       x        x       x        .       x
reports.revenue       x       .        x       .        .       x
surveys.write         x       x        .       .        .       .
ledger.read           x       x        x       .        .       .
ledger.post           x       .        x       .        .       .
remits.import         x       .        x       .        .       x
fhir.import           x       .        .       .        .       .
payments.record       x       x        x       .        .       .
payments.refund       x       .        x       .        .       .
statements.run        x       .        x       .        .       x
eligibility.read      x       x        x       x        .       .
eligibility.write     x       x        x       .        .       x
messages.read         x       x        .       x        .       .
messages.write        x       x        .       .        .       .
messages.send         x       .        .       .        .       x
messages.setup        x       .        .       .        .       .
messages.inbound      x       x        .       .        .       x
hl7.admin             x       .        .       .        .       .
hl7.send              x       .        .       .        .       x
hl7.receive           x       .        .       .        .       x
hl7.review            x       x        .       .        .       .
interfaces.read       x       x        .       .        .       x
online.read           x       x        .       x        .       .
online.setup          x       .        .       .        .       .
portal.serve          x       .        .       .        .       x
proxy.read            x       x        .       x        .       .
proxy.write           x       x        .       .        .       .
fhir.export           x       .        .       .        .       .
api_token.read        x       .        .       .        x       .
api_token.write       x       .        .       .        .       .
intake.read           x       x        .       .        .       .
intake.write          x       x        .       .        .       .
"""

# What a signed-in patient may do (on their own records only); everything else is "not found".
PATIENT_MATRIX = {
    "online.slots",
    "online.book",
    "online.reschedule",
    "online.cancel",
    "online.visits",
    "intake.submit",
    "portal.account",
    "portal.statement",
}


def _expected() -> dict[str, dict[str, bool]]:
    lines = [ln.split() for ln in MATRIX.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert tuple(header[1:]) == ROLE_COLUMNS
    table = {}
    for row in rows:
        assert len(row) == len(header), row
        assert set(row[1:]) <= {"x", "."}, row
        table[row[0]] = {role: mark == "x" for role, mark in zip(ROLE_COLUMNS, row[1:], strict=True)}
    return table


EXPECTED = _expected()
CELLS = [(role, action) for action in EXPECTED for role in ROLE_COLUMNS]


def actor(*roles: str, username: str = "someone") -> Actor:
    return Actor(user_id=42, username=username, org_id=1, roles=frozenset(roles))


def test_roles_are_the_documented_six():
    assert set(ROLES) == set(ROLE_COLUMNS)
    assert len(ROLES) == len(ROLE_COLUMNS)


def test_matrix_covers_every_action_of_the_table():
    """A new action added to the table without a row here fails this test (and vice versa)."""
    assert set(PERMISSIONS) == set(EXPECTED)


def test_every_role_listed_in_the_table_exists():
    for action, roles in PERMISSIONS.items():
        assert roles <= set(ROLES), action


@pytest.mark.parametrize(("role", "action"), CELLS, ids=[f"{r}-{a}" for r, a in CELLS])
def test_cell(role, action):
    want = EXPECTED[action][role]
    assert allowed(frozenset({role}), action) is want
    assert allowed({role}, action) is want
    who = actor(role)
    if want:
        assert require(who, action) is None
    else:
        with pytest.raises(PermissionDenied) as err:
            require(who, action)
        assert err.value.exit_code == ExitCode.DENIED == 5
        message = err.value.message
        assert action not in message
        assert f"may not {describe(action)}: that takes " in message
        assert all(r in message for r in roles_for(action))
        assert "someone" in message


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_roles_combine_as_a_union(action):
    everyone = actor(*ROLE_COLUMNS)
    assert allowed(everyone.roles, action) is any(EXPECTED[action].values())
    for role in ROLE_COLUMNS:
        for other in ROLE_COLUMNS:
            assert allowed(frozenset({role, other}), action) is (EXPECTED[action][role] or EXPECTED[action][other])


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_no_role_is_refused_everything(action):
    assert allowed(frozenset(), action) is False
    with pytest.raises(PermissionDenied) as err:
        require(actor(), action)
    assert err.value.exit_code == 5
    assert "no role" in err.value.message


def test_unknown_action_is_refused_and_require_flags_the_typo():
    assert allowed(frozenset(ROLE_COLUMNS), "patient.delete_everything") is False
    with pytest.raises(KeyError):
        require(actor("admin"), "patient.delete_everything")


def patient_actor(**kw) -> Actor:
    return Actor(user_id=None, username="patient:7", org_id=1, roles=frozenset(), patient_id=7, **kw)


def test_the_patient_actions_are_the_documented_ones():
    assert set(PATIENT_ACTIONS) == PATIENT_MATRIX
    assert not set(PATIENT_ACTIONS) & set(PERMISSIONS)


@pytest.mark.parametrize("action", sorted(PATIENT_MATRIX))
def test_a_patient_may_do_the_patient_actions_and_staff_may_not(action):
    assert require(patient_actor(), action) is None
    for role in ROLE_COLUMNS:
        with pytest.raises(PermissionDenied) as err:
            require(actor(role), action)
        assert err.value.exit_code == 5 and "only a signed-in patient may" in err.value.message
        assert err.value.refused == action


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_a_patient_is_told_not_found_for_every_staff_action(action):
    with pytest.raises(NotFoundError) as err:
        require(patient_actor(), action)
    assert err.value.exit_code == 3 and err.value.message == "not found"
    # an online operation's grant covers exactly what it names, for the patient only
    assert require(patient_actor(grants=frozenset({action})), action) is None


def test_unknown_role_grants_nothing():
    for action in EXPECTED:
        assert allowed(frozenset({"superuser"}), action) is False


# --- refusals through the services: exit 5, and nothing written (not even an audit event) ---


def _denied(ctx_for, username, call):
    with pytest.raises(PermissionDenied) as err:
        with ctx_for(username, clock=fixed_clock) as ctx:
            call(ctx)
    assert err.value.exit_code == 5
    return err.value


def test_auditor_cannot_register_a_patient(settings, ctx_for, make_user):
    from hpms.services.people import patients

    make_user("audrey", "auditor")
    before = snapshot(settings)
    err = _denied(
        ctx_for,
        "audrey",
        lambda ctx: patients.register(ctx, first_name="Ida", last_name="Quill", dob="1970-05-05", ssn="123-45-6789"),
    )
    assert "register patients" in err.message
    assert snapshot(settings) == before
    assert before["patient"] == 0


def test_provider_can_read_but_not_write_patients(settings, ctx_for, make_user, register):
    from hpms.services.people import patients

    p = register(first_name="Ida", last_name="Quill")
    make_user("doc", "provider")
    with ctx_for("doc") as ctx:
        assert patients.show(ctx, p.mrn).last_name == "Quill"
    before = snapshot(settings)
    _denied(ctx_for, "doc", lambda ctx: patients.update(ctx, p.mrn, phone="555-201-3344"))
    _denied(ctx_for, "doc", lambda ctx: patients.register(ctx, first_name="A", last_name="B", dob="1990-01-01"))
    assert snapshot(settings) == before


def test_front_desk_cannot_read_the_audit_log(settings, ctx_for, make_user, register):
    from hpms.services.platform import audit, audit_query

    p = register()
    make_user("desk", "front_desk")
    before = snapshot(settings)
    _denied(ctx_for, "desk", lambda ctx: audit_query.log(ctx))
    _denied(ctx_for, "desk", lambda ctx: audit_query.log(ctx, patient=p.mrn))
    _denied(ctx_for, "desk", lambda ctx: audit.log(ctx))
    _denied(ctx_for, "desk", lambda ctx: audit.verify(ctx))
    assert snapshot(settings) == before
    make_user("audrey", "auditor")
    with ctx_for("audrey") as ctx:
        assert any(e.action == "create" and e.patient_id == p.id for e in audit_query.log(ctx, patient=p.mrn))
        assert audit.verify(ctx).ok


def test_biller_can_reveal_ssn_but_front_desk_cannot(settings, ctx_for, make_user, register):
    from hpms.services.people import patients

    p = register(first_name="Ida", last_name="Quill", ssn="123-45-6789")
    make_user("bill", "biller")
    make_user("desk", "front_desk")
    with ctx_for("bill") as ctx:
        assert patients.show(ctx, p.mrn, reveal_ssn=True).ssn_masked == "123-45-6789"
        assert [r.id for r in patients.search(ctx, "123-45-6789")] == [p.id]
    with ctx_for("desk") as ctx:
        assert patients.show(ctx, p.mrn).ssn_masked == "***-**-6789"
        assert patients.can_reveal_ssn(ctx) is False
    before = snapshot(settings)
    _denied(ctx_for, "desk", lambda ctx: patients.show(ctx, p.mrn, reveal_ssn=True))
    _denied(ctx_for, "desk", lambda ctx: patients.search(ctx, "123-45-6789"))
    assert snapshot(settings) == before


def test_service_account_cannot_touch_patients(settings, ctx_for, make_user, register):
    from hpms.services.people import patients
    from hpms.services.platform import audit

    p = register()
    make_user("cron", "service")
    before = snapshot(settings)
    _denied(ctx_for, "cron", lambda ctx: patients.show(ctx, p.mrn))
    _denied(ctx_for, "cron", lambda ctx: patients.list_patients(ctx))
    _denied(ctx_for, "cron", lambda ctx: patients.search(ctx, "patient"))
    assert snapshot(settings) == before
    with ctx_for("cron") as ctx:
        assert audit.verify(ctx).ok


def test_only_admins_manage_users_keys_and_locations(settings, ctx_for, make_user):
    from hpms.services.platform import admin, org, users

    make_user("desk", "front_desk")
    make_user("audrey", "auditor")
    before = snapshot(settings)
    _denied(ctx_for, "desk", lambda ctx: users.add_user(ctx, username="eve", roles=["admin"]))
    _denied(ctx_for, "desk", lambda ctx: users.grant(ctx, "desk", "admin"))
    _denied(ctx_for, "desk", lambda ctx: users.list_users(ctx))
    _denied(ctx_for, "audrey", lambda ctx: users.set_disabled(ctx, "desk"))
    _denied(ctx_for, "desk", lambda ctx: admin.rotate_keys(ctx))
    _denied(ctx_for, "desk", lambda ctx: org.add_location(ctx, name="Annex", tz="UTC"))
    assert snapshot(settings) == before
    with ctx_for("audrey") as ctx:
        assert {u.username for u in users.list_users(ctx)} >= {"desk", "audrey"}


def test_payers_and_coverage_by_role(settings, ctx_for, make_user, register):
    from hpms.services.people import coverage

    p = register()
    make_user("desk", "front_desk")
    make_user("bill", "biller")
    make_user("doc", "provider")
    before = snapshot(settings)
    _denied(ctx_for, "desk", lambda ctx: coverage.add_payer(ctx, name="Acme", payer_id="ACME1"))
    assert snapshot(settings) == before
    with ctx_for("bill") as ctx:
        coverage.add_payer(ctx, name="Acme", payer_id="ACME1")
    with ctx_for("desk") as ctx:
        coverage.add_coverage(ctx, patient=p.mrn, payer="ACME1", member_id="M100")
    before = snapshot(settings)
    _denied(
        ctx_for,
        "doc",
        lambda ctx: coverage.add_coverage(ctx, patient=p.mrn, payer="ACME1", member_id="M200", priority="secondary"),
    )
    assert snapshot(settings) == before
    with ctx_for("doc") as ctx:
        assert [c.member_id for c in coverage.list_coverage(ctx, p.mrn)] == ["M100"]


# --- scheduling ---


def _sched(ctx_for, register):
    from tests.services.sched import clinic

    return clinic(ctx_for, register)


def test_biller_cannot_book_or_move_visits(settings, ctx_for, make_user, register):
    from hpms.services.scheduling import appointments, waitlist
    from tests.services.sched import book_one

    c = _sched(ctx_for, register)
    a = book_one(ctx_for, c, "2026-06-16 09:00")
    make_user("bill", "biller")
    before = snapshot(settings)
    rows = query(settings, "SELECT id, status, start_utc FROM appointment")
    err = _denied(
        ctx_for,
        "bill",
        lambda ctx: appointments.book(ctx, patient=c.mrn, provider=c.provider, type=c.type, at="2026-06-16 10:00"),
    )
    assert "book appointments" in err.message
    _denied(ctx_for, "bill", lambda ctx: appointments.cancel(ctx, a.id, reason="x"))
    _denied(ctx_for, "bill", lambda ctx: appointments.reschedule(ctx, a.id, at="2026-06-16 11:00"))
    _denied(ctx_for, "bill", lambda ctx: waitlist.add(ctx, patient=c.mrn, type=c.type))
    assert snapshot(settings) == before
    assert query(settings, "SELECT id, status, start_utc FROM appointment") == rows
    with ctx_for("bill", clock=fixed_clock) as ctx:  # billers see the day sheet
        assert [x.id for x in appointments.list_appointments(ctx, day="2026-06-16")] == [a.id]


def test_auditor_cannot_read_appointments(settings, ctx_for, make_user, register):
    from hpms.services.scheduling import appointments, waitlist
    from tests.services.sched import book_one

    c = _sched(ctx_for, register)
    a = book_one(ctx_for, c, "2026-06-16 09:00")
    make_user("audrey", "auditor")
    before = snapshot(settings)
    err = _denied(ctx_for, "audrey", lambda ctx: appointments.list_appointments(ctx, day="2026-06-16"))
    assert "read appointments" in err.message
    _denied(ctx_for, "audrey", lambda ctx: appointments.show(ctx, a.id))
    _denied(ctx_for, "audrey", lambda ctx: appointments.history(ctx, c.mrn))
    _denied(ctx_for, "audrey", lambda ctx: appointments.find_slot(ctx, type=c.type))
    _denied(ctx_for, "audrey", lambda ctx: waitlist.offers(ctx))
    assert snapshot(settings) == before


def test_front_desk_schedules_but_does_not_set_up(settings, ctx_for, make_user, register):
    from hpms.services.scheduling import appointments, availability, resources

    c = _sched(ctx_for, register)
    make_user("desk", "front_desk")
    before = snapshot(settings)
    _denied(ctx_for, "desk", lambda ctx: resources.add_provider(ctx, first_name="A", last_name="B"))
    _denied(ctx_for, "desk", lambda ctx: resources.add_type(ctx, name="X", duration_min=15))
    _denied(ctx_for, "desk", lambda ctx: resources.add_room(ctx, location="Main", name="Exam 9"))
    _denied(ctx_for, "desk", lambda ctx: availability.set_policy(ctx, slot_step_min=30))
    _denied(
        ctx_for,
        "desk",
        lambda ctx: appointments.book(
            ctx, patient=c.mrn, provider=c.provider, type=c.type, at="2026-06-16 07:00", override=True
        ),
    )
    assert snapshot(settings) == before
    with ctx_for("desk", clock=fixed_clock) as ctx:
        availability.add_time_off(ctx, provider=c.provider, start="2026-06-19")
        availability.set_hours(ctx, c.provider, days="SA", start="9", end="12")
        assert (
            appointments.book(ctx, patient=c.mrn, provider=c.provider, type=c.type, at="2026-06-20 09:00")
            .booked[0]
            .status
            == "booked"
        )


def test_service_account_reads_the_schedule_but_books_nothing(settings, ctx_for, make_user, register):
    from hpms.services.scheduling import appointments, waitlist

    c = _sched(ctx_for, register)
    make_user("cron", "service")
    before = snapshot(settings)
    _denied(
        ctx_for,
        "cron",
        lambda ctx: appointments.book(ctx, patient=c.mrn, provider=c.provider, type=c.type, at="2026-06-16 09:00"),
    )
    _denied(ctx_for, "cron", lambda ctx: waitlist.list_entries(ctx))
    assert snapshot(settings) == before
    with ctx_for("cron", clock=fixed_clock) as ctx:
        assert len(appointments.find_slot(ctx, type=c.type, count=2)) == 2
        assert b"BEGIN:VCALENDAR" in appointments.ical(ctx, provider=c.provider)
