"""Signing in and out: a token verified against the database, then kept for it (where:
hpms.services.platform.credentials), and the audit event of the sign-in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hpms.errors import AuthError, UsageError
from hpms.models import User
from hpms.services.platform.credentials import StoredLogin, database_identity, remove, store

if TYPE_CHECKING:
    from hpms.config import Settings


def login(settings: Settings, *, username: str, token: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Verify `token` for `username` against the database, then store it for this database and
    record the sign-in. AuthError (nothing stored) when the token does not verify."""
    from hpms.db import check_schema, get_engine, session_scope
    from hpms.services.platform import audit
    from hpms.services.platform.auth import load_actor, verify_token
    from hpms.services.platform.context import Ctx

    token = token.strip()
    if not token:
        raise UsageError("no token given")
    engine = get_engine(settings)
    check_schema(engine)
    with session_scope(engine) as session:
        user = session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()
        if user is None or user.disabled or not verify_token(user.token_hash, token):
            raise AuthError(f"authentication failed for hpms user {username!r}")
        actor = load_actor(session, username, auth_method="token")
        identity = database_identity(session)
        audit.record(Ctx(session=session, actor=actor, settings=settings), audit.Event("login", "user", user.id))
        session.flush()
        where = store(identity, StoredLogin(username, token), env)
    return {"username": username, "stored_in": where, "database": identity.split("#", 1)[0]}


def logout(settings: Settings, *, everywhere: bool = False, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Forget the sign-in stored for this database (or all of them); says how many there were."""
    if everywhere:
        return {"removed": remove(None, env), "database": None}
    from hpms.db import check_schema, get_engine, session_scope

    engine = get_engine(settings)
    check_schema(engine)
    with session_scope(engine, readonly=True) as session:
        identity = database_identity(session)
    return {"removed": remove(identity, env), "database": identity.split("#", 1)[0]}
