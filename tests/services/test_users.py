"""Users, roles, the last-admin rule and authentication (OS login or HPMS_USER + HPMS_TOKEN)."""

from __future__ import annotations

import pytest

from hpms.db import get_engine, session_scope
from hpms.errors import Action, AuthError, ConflictError, ExitCode, NotFoundError, ValidationError
from hpms.services.platform.auth import authenticate, os_login
from tests.services.helpers import audit_rows, last_seq, snapshot

ROOT = os_login()


def _auth(settings, env):
    with session_scope(get_engine(settings)) as session:
        return authenticate(session, env)


def test_the_os_user_is_the_first_admin(settings, ctx_for):
    from hpms.services.platform import users

    actor = _auth(settings, {})
    assert (actor.username, actor.roles, actor.auth_method) == (ROOT, frozenset({"admin"}), "os")
    with ctx_for() as ctx:
        me = users.whoami(ctx)
    assert me["username"] == ROOT and me["roles"] == ["admin"] and me["organization"] == "Test Clinic"


def test_add_grant_revoke(settings, ctx_for):
    from hpms.services.platform import users

    seq = last_seq(settings)
    with ctx_for() as ctx:
        u = users.add_user(ctx, username="dana", roles=["front-desk", "BILLER"], full_name="Dana Example")
    assert (u.username, u.roles, u.full_name, u.disabled, u.has_token) == (
        "dana",
        ["biller", "front_desk"],
        "Dana Example",
        False,
        False,
    )
    with ctx_for() as ctx:
        assert users.grant(ctx, "dana", "provider").roles == ["biller", "front_desk", "provider"]
        assert users.grant(ctx, "dana", "provider").roles == ["biller", "front_desk", "provider"]  # idempotent
        assert users.revoke(ctx, "dana", "biller").roles == ["front_desk", "provider"]
    with ctx_for("dana") as ctx:
        assert ctx.actor.roles == frozenset({"front_desk", "provider"})
        assert users.show_user(ctx, "dana").username == "dana"  # oneself, without user.read
    with ctx_for() as ctx:
        listed = users.list_users(ctx)
    assert [x.username for x in listed] == sorted([ROOT, "dana"])
    events = [(r["action"], r["entity"], r["detail"]) for r in audit_rows(settings, seq)]
    assert events == [
        ("create", "user", "roles=biller,front_desk"),
        ("grant", "user", "role=provider"),
        ("revoke", "user", "role=biller"),
    ]


@pytest.mark.parametrize(
    ("call", "exc", "field"),
    [
        (lambda u, ctx: u.add_user(ctx, username="eve", roles=["superuser"]), ValidationError, "role"),
        (lambda u, ctx: u.add_user(ctx, username="eve", roles=["admin", "wizard"]), ValidationError, "role"),
        (lambda u, ctx: u.add_user(ctx, username="eve", roles=[]), ValidationError, "role"),
        (lambda u, ctx: u.add_user(ctx, username="Eve Smith", roles=["admin"]), ValidationError, "username"),
        (lambda u, ctx: u.add_user(ctx, username="dana", roles=["admin"]), ConflictError, None),
        (lambda u, ctx: u.grant(ctx, "dana", "overlord"), ValidationError, "role"),
        (lambda u, ctx: u.grant(ctx, "nobody", "admin"), NotFoundError, None),
        (lambda u, ctx: u.revoke(ctx, "dana", "overlord"), ValidationError, "role"),
        (lambda u, ctx: u.revoke(ctx, "dana", "auditor"), ConflictError, None),
        (lambda u, ctx: u.revoke(ctx, "dana", "front_desk"), ConflictError, None),  # the only role
        (lambda u, ctx: u.set_disabled(ctx, "nobody"), NotFoundError, None),
        (lambda u, ctx: u.issue_token(ctx, "nobody"), NotFoundError, None),
    ],
)
def test_refused_user_changes_write_nothing(settings, ctx_for, make_user, call, exc, field):
    from hpms.services.platform import users

    make_user("dana", "front_desk")
    before = snapshot(settings)
    with pytest.raises(exc) as err:
        with ctx_for() as ctx:
            call(users, ctx)
    if field:
        assert err.value.field == field
        assert err.value.exit_code == ExitCode.USAGE
    assert snapshot(settings) == before


def test_the_last_admin_cannot_be_revoked_or_disabled(settings, ctx_for, make_user):
    from hpms.services.platform import users

    make_user("ann", "admin", "auditor")
    with ctx_for() as ctx:
        users.revoke(ctx, "ann", "admin")  # ROOT is still an admin
    before = snapshot(settings)
    with pytest.raises(ConflictError) as err:
        with ctx_for() as ctx:
            users.revoke(ctx, ROOT, "admin")
    assert "last active admin" in err.value.message and err.value.exit_code == 4
    with pytest.raises(ConflictError) as err:
        with ctx_for() as ctx:
            users.set_disabled(ctx, ROOT)
    assert "yourself" in err.value.message
    assert snapshot(settings) == before


def test_a_disabled_admin_does_not_count(settings, ctx_for, make_user):
    from hpms.services.platform import users

    make_user("ann", "admin", "auditor")
    make_user("ben", "admin")
    with ctx_for() as ctx:
        users.set_disabled(ctx, "ben")
    with ctx_for("ann") as ctx:
        users.set_disabled(ctx, ROOT)
    # ann is now the only active admin: ben (disabled) does not save her from being the last.
    before = snapshot(settings)
    with pytest.raises(ConflictError):
        with ctx_for("ann") as ctx:
            users.revoke(ctx, "ann", "admin")
    assert snapshot(settings) == before
    with ctx_for("ann") as ctx:
        users.set_disabled(ctx, ROOT, False)
    with ctx_for("ann") as ctx:
        assert users.revoke(ctx, "ann", "admin").roles == ["auditor"]


def test_disabled_user_is_refused_by_authenticate(settings, ctx_for, make_user):
    from hpms.services.platform import users

    make_user("ann", "admin")
    with ctx_for("ann") as ctx:
        out = users.set_disabled(ctx, ROOT)
    assert out.disabled is True
    with pytest.raises(AuthError) as err:
        _auth(settings, {})
    assert err.value.exit_code == ExitCode.DENIED == 5
    assert "disabled" in err.value.message
    with pytest.raises(AuthError):
        with ctx_for(ROOT):
            pass
    with ctx_for("ann") as ctx:
        assert users.set_disabled(ctx, ROOT, False).disabled is False
    assert _auth(settings, {}).username == ROOT


def test_open_context_refuses_before_reading_anything(settings, make_user):
    from hpms.services.people import patients
    from hpms.services.platform.context import open_context

    make_user("ann", "admin")
    before = snapshot(settings)
    reached = []
    for env in ({"HPMS_USER": "ghost"}, {"HPMS_USER": "ann"}, {"HPMS_USER": "ghost", "HPMS_TOKEN": "hpms_x"}):
        with pytest.raises(AuthError) as err:
            with open_context(settings, env=env) as ctx:
                reached.append(patients.list_patients(ctx))
        assert err.value.exit_code == 5
    assert reached == []
    assert snapshot(settings) == before


def test_unknown_os_user_is_refused(settings):
    from hpms.services.platform.auth import load_actor

    with pytest.raises(AuthError) as err:
        with session_scope(get_engine(settings)) as session:
            load_actor(session, "nobody_here")
    assert err.value.exit_code == 5
    assert err.value.action == Action(
        "users", "add", target="nobody_here", give=(("role", "ROLE"),), purpose="an admin can add it with"
    )


def test_token_authentication(settings, make_user, token_for):
    make_user("cron", "service")
    token = token_for("cron")
    assert token.startswith("hpms_") and len(token) > 30
    actor = _auth(settings, {"HPMS_USER": "cron", "HPMS_TOKEN": token})
    assert (actor.username, actor.roles, actor.auth_method) == ("cron", frozenset({"service"}), "token")
    # Only the argon2 hash is stored.
    from tests.services.helpers import query

    stored = query(settings, "SELECT token_hash FROM hpms_user WHERE username = 'cron'")[0]["token_hash"]
    assert stored.startswith("$argon2") and token not in stored


def test_token_authentication_through_open_context(settings, make_user, token_for):
    from hpms.services.platform import audit
    from hpms.services.platform.context import open_context

    make_user("cron", "service")
    token = token_for("cron")
    with open_context(settings, env={"HPMS_USER": "cron", "HPMS_TOKEN": token}) as ctx:
        assert ctx.actor.username == "cron"
        assert audit.verify(ctx).ok


@pytest.mark.parametrize(
    "env",
    [
        {"HPMS_USER": "cron", "HPMS_TOKEN": "hpms_wrong"},
        {"HPMS_USER": "cron", "HPMS_TOKEN": "TOKEN_OF_ANN"},
        {"HPMS_USER": "ghost", "HPMS_TOKEN": "TOKEN_OF_CRON"},
        {"HPMS_USER": "ann", "HPMS_TOKEN": "TOKEN_OF_CRON"},
        {"HPMS_USER": "cron"},
        {"HPMS_USER": "ann"},
        {"HPMS_TOKEN": "TOKEN_OF_CRON"},  # a token is checked against the OS login's user
    ],
    ids=[
        "wrong",
        "other-users-token",
        "unknown-user",
        "token-for-another-user",
        "no-token",
        "no-token-2",
        "token-without-user",
    ],
)
def test_bad_credentials_are_refused(settings, make_user, token_for, env):
    make_user("cron", "service")
    make_user("ann", "front_desk")
    tokens = {"TOKEN_OF_CRON": token_for("cron"), "TOKEN_OF_ANN": token_for("ann")}
    env = {k: tokens.get(v, v) for k, v in env.items()}
    with pytest.raises(AuthError) as err:
        _auth(settings, env)
    assert err.value.exit_code == 5
    if "HPMS_TOKEN" in env and env.get("HPMS_USER", ROOT) != ROOT:
        # One message whether the user exists or not.
        assert err.value.message == f"authentication failed for hpms user {env.get('HPMS_USER', ROOT)!r}"


def test_hpms_user_equal_to_the_os_login_needs_no_token(settings):
    assert _auth(settings, {"HPMS_USER": ROOT}).username == ROOT


def test_hpms_user_different_from_the_login_without_token_is_refused(settings, make_user):
    make_user("cron", "service")
    with pytest.raises(AuthError) as err:
        _auth(settings, {"HPMS_USER": "cron"})
    assert "HPMS_TOKEN" in err.value.hint
    assert err.value.action == Action("users", "token", target="cron", purpose="an admin makes one with")


def test_a_new_token_replaces_the_old_one(settings, make_user, token_for):
    make_user("cron", "service")
    first = token_for("cron")
    second = token_for("cron")
    assert first != second
    assert _auth(settings, {"HPMS_USER": "cron", "HPMS_TOKEN": second}).username == "cron"
    with pytest.raises(AuthError):
        _auth(settings, {"HPMS_USER": "cron", "HPMS_TOKEN": first})


def test_disabling_a_user_kills_its_token(settings, ctx_for, make_user, token_for):
    from hpms.services.platform import users

    make_user("cron", "service")
    token = token_for("cron")
    env = {"HPMS_USER": "cron", "HPMS_TOKEN": token}
    assert _auth(settings, env).username == "cron"
    with ctx_for() as ctx:
        out = users.set_disabled(ctx, "cron")
    assert out.disabled and not out.has_token
    with pytest.raises(AuthError):
        _auth(settings, env)
    with pytest.raises(ConflictError):
        with ctx_for() as ctx:
            users.issue_token(ctx, "cron")
    with ctx_for() as ctx:
        users.set_disabled(ctx, "cron", False)
    with pytest.raises(AuthError):  # enabling again does not revive the old token
        _auth(settings, env)
    fresh = token_for("cron")
    assert _auth(settings, {"HPMS_USER": "cron", "HPMS_TOKEN": fresh}).username == "cron"


def test_token_events_hold_no_secret(settings, make_user, token_for):
    make_user("cron", "service")
    seq = last_seq(settings)
    token = token_for("cron")
    rows = audit_rows(settings, seq)
    assert [(r["action"], r["entity"]) for r in rows] == [("token", "user")]
    assert token not in str(rows)
