"""Bearer tokens of API clients (an EHR reading the FHIR API): create (the token is shown once;
only its SHA-256 is stored), list, revoke, and the context a request with a token runs in.

A token acts as a service actor named `token:<name>`, with the one role it was given: what it
may do is what the permission table lets that role do. A token carries 256 random bits, so a
plain SHA-256 of it (looked up by equality) is as safe to store as a slow hash, and every
request pays one indexed lookup instead of a key derivation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.errors import AuthError, ConflictError, NotFoundError, ValidationError
from hpms.models import Actor
from hpms.models.identity import ApiToken, ApiTokenOut
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require, validate_role

if TYPE_CHECKING:
    from hpms.config import Settings
    from hpms.services.platform.context import Clock, Ctx

PREFIX = "hpmsapi_"
DEFAULT_DAYS = 90
MAX_DAYS = 3650


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _state(row: ApiToken, now: dt.datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def _out(row: ApiToken, now: dt.datetime, token: str | None = None) -> ApiTokenOut:
    assert row.id is not None
    return ApiTokenOut(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        state=_state(row, now),
        token=token,
    )


def _days(expires_days: int | str | None) -> int | None:
    if expires_days is None:
        return DEFAULT_DAYS
    try:
        days = int(expires_days)
    except (TypeError, ValueError):
        raise ValidationError("expires", f"{expires_days!r} is not a number of days") from None
    if days == 0:
        return None  # never expires
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError("expires", f"must be between 1 and {MAX_DAYS} days (0: never)")
    return days


def create_token(ctx: Ctx, *, name: str | None, role: str | None, expires_days: int | str | None = None) -> ApiTokenOut:
    """A new token named `name` acting with `role`, expiring after `expires_days` (default 90;
    0 never). The answer holds the token; it cannot be shown again. Raises ValidationError,
    ConflictError (name taken), PermissionDenied."""
    require(ctx.actor, "api_token.write")
    checked = v.require_text("name", name, 64)
    if role is None or not str(role).strip():
        raise ValidationError("role", "is required")
    checked_role = validate_role(role)
    days = _days(expires_days)
    taken = ctx.session.execute(
        sa.select(ApiToken.id).where(ApiToken.org_id == ctx.org_id, ApiToken.name == checked)
    ).first()
    if taken is not None:
        raise ConflictError(f"an API token named {checked!r} already exists", field="name")
    now = ctx.now()
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        org_id=ctx.org_id,
        name=checked,
        role=checked_role,
        token_hash=token_hash(token),
        created_at=now,
        created_by=ctx.actor.user_id,
        expires_at=now + dt.timedelta(days=days) if days else None,
    )
    ctx.session.add(row)
    ctx.session.flush()
    audit.record(ctx, audit.Event("create", "api_token", row.id, fields=["token"], detail=f"role={checked_role}"))
    return _out(row, now, token)


def list_tokens(ctx: Ctx) -> list[ApiTokenOut]:
    """Every token of the practice (never the token itself), newest first. Raises PermissionDenied."""
    require(ctx.actor, "api_token.read")
    now = ctx.now()
    rows = ctx.session.execute(
        sa.select(ApiToken).where(ApiToken.org_id == ctx.org_id).order_by(sa.desc(ApiToken.id))
    ).scalars()
    return [_out(r, now) for r in rows]


def revoke_token(ctx: Ctx, token_id: int | str | None) -> ApiTokenOut:
    """Revoke a token: from now on it is refused. Raises NotFoundError, ConflictError (revoked
    already), PermissionDenied."""
    require(ctx.actor, "api_token.write")
    text = "" if token_id is None else str(token_id).strip()
    row = ctx.session.get(ApiToken, int(text)) if text.isdigit() and len(text) < 19 else None
    if row is None or row.org_id != ctx.org_id:
        raise NotFoundError(f"no API token {text!r}", field="token_id")
    if row.revoked_at is not None:
        raise ConflictError(f"API token {row.id} is revoked already", field="token_id")
    now = ctx.now()
    row.revoked_at = now
    ctx.session.flush()
    audit.record(ctx, audit.Event("revoke", "api_token", row.id, fields=["revoked_at"]))
    return _out(row, now)


REFUSED = "the bearer token is missing, unknown, expired or revoked"


def authenticate_token(session: sa.orm.Session, token: str | None, now: dt.datetime) -> Actor:
    """The service actor of a bearer token, its last use recorded; AuthError (one message for
    every reason, so that a caller learns nothing of which tokens exist) otherwise."""
    if not token:
        raise AuthError(REFUSED)
    row = session.execute(sa.select(ApiToken).where(ApiToken.token_hash == token_hash(token))).scalar_one_or_none()
    if row is None or _state(row, now) != "active":
        raise AuthError(REFUSED)
    row.last_used_at = now
    session.flush()
    return Actor(
        user_id=None,
        username=f"token:{row.name}",
        org_id=row.org_id,
        roles=frozenset({row.role}),
        auth_method="api_token",
    )


@contextmanager
def open_token_context(settings: Settings, token: str | None, *, clock: Clock | None = None) -> Iterator[Ctx]:
    """One transaction as the API client holding `token`: checks the schema and the token before
    anything else is read; commits on success, rolls back on error (a refused permission is
    recorded, as for every actor). Raises AuthError."""
    from hpms.db import check_schema, get_engine, session_scope
    from hpms.errors import HpmsError
    from hpms.services.platform.context import Ctx, record_after_rollback, system_clock

    tick = clock or system_clock
    engine = get_engine(settings)
    actor: Actor | None = None
    try:
        with session_scope(engine) as session:
            check_schema(engine, session)
            actor = authenticate_token(session, token, tick())
            yield Ctx(session=session, actor=actor, settings=settings, clock=tick)
    except HpmsError as exc:
        if actor is not None:
            record_after_rollback(engine, settings, actor, tick, exc)
        raise
