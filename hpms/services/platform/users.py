"""Users, roles and service-account tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hpms.errors import Action, ConflictError, NotFoundError, ValidationError
from hpms.models import User, UserOut, UserRole
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.auth import hash_token, new_token
from hpms.services.platform.org import organization
from hpms.services.platform.permissions import require, validate_role

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.services.platform.context import Ctx


def _out(session: Session, user: User) -> UserOut:
    roles = sorted(session.scalars(sa.select(UserRole.role).where(UserRole.user_id == user.id)))
    return UserOut(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        roles=roles,
        disabled=user.disabled,
        has_token=bool(user.token_hash),
        created_at=user.created_at,
    )


def _get(ctx: Ctx, username: str) -> User:
    user = ctx.session.execute(
        sa.select(User).where(User.username == username, User.org_id == ctx.org_id)
    ).scalar_one_or_none()
    if user is None:
        raise NotFoundError(f"no hpms user {username!r}", action=Action("users", "list"))
    return user


def whoami(ctx: Ctx) -> dict[str, Any]:
    require(ctx.actor, "user.self")
    user = ctx.session.get(User, ctx.actor.user_id)
    assert user is not None  # authentication just read it
    return {
        "username": user.username,
        "full_name": user.full_name,
        "roles": sorted(ctx.actor.roles),
        "auth_method": ctx.actor.auth_method,
        "organization": organization(ctx).name,
    }


def add_user(ctx: Ctx, *, username: str, roles: list[str], full_name: str | None = None) -> UserOut:
    """Create a user with at least one role. Raises ValidationError, ConflictError, PermissionDenied."""
    require(ctx.actor, "user.write")
    username = v.parse_username("username", username)
    if not roles:
        raise ValidationError("role", "at least one role is required")
    checked = sorted({validate_role(r, "role") for r in roles})
    full_name = v.optional_text("full_name", full_name, 200)
    if ctx.session.execute(sa.select(User.id).where(User.username == username)).first():
        raise ConflictError(f"hpms user {username!r} already exists")
    user = User(org_id=ctx.org_id, username=username, full_name=full_name)
    ctx.session.add(user)
    ctx.session.flush()
    for role in checked:
        ctx.session.add(UserRole(user_id=user.id, role=role))
    ctx.session.flush()
    audit.record(
        ctx,
        audit.Event(
            "create", "user", user.id, fields=["username", "roles", "full_name"], detail=f"roles={','.join(checked)}"
        ),
    )
    return _out(ctx.session, user)


def list_users(ctx: Ctx) -> list[UserOut]:
    require(ctx.actor, "user.read")
    users = ctx.session.scalars(sa.select(User).where(User.org_id == ctx.org_id).order_by(User.username))
    return [_out(ctx.session, u) for u in users]


def show_user(ctx: Ctx, username: str) -> UserOut:
    if username != ctx.actor.username:
        require(ctx.actor, "user.read")
    return _out(ctx.session, _get(ctx, username))


def _admins_left(ctx: Ctx, excluding: int) -> int:
    return ctx.session.execute(
        sa.select(sa.func.count())
        .select_from(UserRole)
        .join(User, User.id == UserRole.user_id)
        .where(UserRole.role == "admin", User.disabled.is_(False), User.id != excluding)
    ).scalar_one()


def set_disabled(ctx: Ctx, username: str, disabled: bool = True) -> UserOut:
    """Disable (or enable) a user; refuses to lock out the last admin or oneself."""
    require(ctx.actor, "user.write")
    user = _get(ctx, username)
    if disabled:
        if user.id == ctx.actor.user_id:
            raise ConflictError("you cannot disable yourself")
        is_admin = ctx.session.get(UserRole, (user.id, "admin")) is not None
        if is_admin and _admins_left(ctx, user.id) == 0:
            raise ConflictError(f"{username!r} is the last active admin")
    if user.disabled != disabled:
        user.disabled = disabled
        if disabled:
            user.token_hash = None  # a disabled account's token must not come back to life
        ctx.session.flush()
        audit.record(ctx, audit.Event("disable" if disabled else "enable", "user", user.id, fields=["disabled"]))
    return _out(ctx.session, user)


def grant(ctx: Ctx, username: str, role: str) -> UserOut:
    require(ctx.actor, "user.write")
    role = validate_role(role, "role")
    user = _get(ctx, username)
    if ctx.session.get(UserRole, (user.id, role)) is None:
        ctx.session.add(UserRole(user_id=user.id, role=role))
        ctx.session.flush()
        audit.record(ctx, audit.Event("grant", "user", user.id, fields=["roles"], detail=f"role={role}"))
    return _out(ctx.session, user)


def revoke(ctx: Ctx, username: str, role: str) -> UserOut:
    """Remove a role; refuses to remove the last admin's admin role or a user's only role."""
    require(ctx.actor, "user.write")
    role = validate_role(role, "role")
    user = _get(ctx, username)
    link = ctx.session.get(UserRole, (user.id, role))
    if link is None:
        raise ConflictError(f"{username!r} does not have role {role!r}")
    if role == "admin" and _admins_left(ctx, user.id) == 0:
        raise ConflictError(f"{username!r} is the last active admin")
    count = ctx.session.execute(sa.select(sa.func.count()).where(UserRole.user_id == user.id)).scalar_one()
    if count == 1:
        raise ConflictError(f"{role!r} is the only role of {username!r}; disable the user instead")
    ctx.session.delete(link)
    ctx.session.flush()
    audit.record(ctx, audit.Event("revoke", "user", user.id, fields=["roles"], detail=f"role={role}"))
    return _out(ctx.session, user)


def issue_token(ctx: Ctx, username: str) -> str:
    """Create (or replace) the user's API token; only its argon2 hash is stored."""
    require(ctx.actor, "user.write")
    user = _get(ctx, username)
    if user.disabled:
        raise ConflictError(f"hpms user {username!r} is disabled")
    token = new_token(username)
    user.token_hash = hash_token(token)
    user.token_created_at = ctx.now()
    ctx.session.flush()
    audit.record(ctx, audit.Event("token", "user", user.id, fields=["token"]))
    return token
