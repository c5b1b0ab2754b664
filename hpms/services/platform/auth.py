"""Who is acting: HPMS_USER + HPMS_TOKEN, a stored sign-in, or the OS login mapped to a user.

Unknown or disabled users are refused before any other data is read.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hpms.db import Prepared, check_schema_with
from hpms.errors import Action, AuthError
from hpms.models import Actor, User, UserRole
from hpms.services.platform import audit

if TYPE_CHECKING:
    from argon2 import PasswordHasher
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from hpms.services.platform.credentials import StoredLogin


# A user name and the rows of that user (with roles) read in the current transaction.
KnownUser = tuple[str, list[Any]]


def os_login() -> str:
    """The login name of the effective OS user (not spoofable through $USER)."""
    try:
        return _login_of(os.geteuid())
    except AttributeError:  # pragma: no cover - non-POSIX
        import getpass

        return getpass.getuser()


@functools.lru_cache(maxsize=8)
def _login_of(euid: int) -> str:
    # every transaction authenticates: the password database is asked once per effective uid
    try:
        import pwd

        return pwd.getpwuid(euid).pw_name
    except (ImportError, KeyError):  # pragma: no cover - non-POSIX, or a uid without an entry
        import getpass

        return getpass.getuser()


def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher  # argon2 loads only for token users

    # Tokens carry 256 random bits, so guessing is hopeless whatever the cost; a light argon2id
    # setting keeps each token-authenticated command (every cron call) fast. The parameters are
    # stored in each hash, so verify() also reads hashes made with other settings.
    return PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1)


def hash_token(token: str) -> str:
    return _hasher().hash(token)


def new_token(username: str) -> str:
    return f"hpms_{secrets.token_urlsafe(32)}"


def verify_token(token_hash: str | None, token: str) -> bool:
    if not token_hash:
        return False
    from argon2.exceptions import InvalidHashError, VerificationError  # only for token users

    try:
        return _hasher().verify(token_hash, token)
    except (VerificationError, InvalidHashError):
        return False


# Prepared once and run on the driver: every command and request authenticates.
_ACTOR = Prepared(
    sa.select(User.id, User.org_id, User.disabled, UserRole.role)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .where(User.username == sa.bindparam("username"))
)


# The schema revision and the user most likely acting (HPMS_USER, else the OS login) in one
# statement: a transaction's first read, outer-joined so that the revision comes back whoever
# the user is.
# the statement and, on SQLite, the head of the audit trail that the transaction's appends
# then need not read (see audit.hold_head)
_VERSION = sa.table("alembic_version", sa.column("version_num"))


def _revision_and_actor(*head: Any) -> Prepared:
    return Prepared(
        sa.select(_VERSION.c.version_num, User.id, User.org_id, User.disabled, UserRole.role, *head)
        .select_from(_VERSION)
        .outerjoin(User, User.username == sa.bindparam("username"))
        .outerjoin(UserRole, UserRole.user_id == User.id)
    )


_REVISION_AND_ACTOR = _revision_and_actor()
_REVISION_ACTOR_HEAD = _revision_and_actor(audit.HEAD_SEQ, audit.HEAD_HASH)


def check_schema_and_user(engine: Engine, session: Session, env: Mapping[str, str] | None = None) -> KnownUser:
    """`check_schema` in the transaction of `session`, reading with it the user that
    `authenticate` most likely resolves: pass the result to it as `known`."""
    username = (os.environ if env is None else env).get("HPMS_USER") or os_login()
    sqlite = engine.dialect.name == "sqlite"
    stmt = _REVISION_ACTOR_HEAD if sqlite else _REVISION_AND_ACTOR
    rows = check_schema_with(engine, session, stmt, {"username": username})
    if sqlite and rows:
        audit.hold_head(session, rows[0].audit_last_seq, rows[0].audit_last_hash)
    return username, [r for r in rows if r.id is not None]


def load_actor(session: Session, username: str, *, auth_method: str = "os", known: KnownUser | None = None) -> Actor:
    """The actor for `username`; AuthError when unknown or disabled. `known`: the user's rows
    as read in this transaction by check_schema_and_user (used when they are of `username`)."""
    if known is not None and known[0] == username:
        rows = known[1]
    else:
        rows = _ACTOR.rows(session.connection(), {"username": username})
    if not rows:
        raise AuthError(
            f"unknown hpms user {username!r}",
            action=Action(
                "users", "add", target=username, give=(("role", "ROLE"),), purpose="an admin can add it with"
            ),
        )
    if rows[0].disabled:
        raise AuthError(f"hpms user {username!r} is disabled")
    return Actor(
        user_id=rows[0].id,
        username=username,
        org_id=rows[0].org_id,
        roles=frozenset(r.role for r in rows if r.role),
        auth_method=auth_method,
    )


def _stored_login(session: Session, env: Mapping[str, str]) -> StoredLogin | None:
    from hpms.services.platform import credentials

    if not credentials.may_hold_any(env):
        return None
    return credentials.load(credentials.database_identity(session), env)


def authenticate(session: Session, env: Mapping[str, str] | None = None, *, known: KnownUser | None = None) -> Actor:
    """Resolve the acting user; AuthError on any doubt. In order: HPMS_TOKEN (with HPMS_USER),
    the sign-in stored for this database, the OS login. `known`: what check_schema_and_user
    read in this transaction."""
    if env is None:
        env = os.environ
    login = os_login()
    stored: StoredLogin | None = None
    if not env.get("HPMS_TOKEN"):
        stored = _stored_login(session, env)
    username = env.get("HPMS_USER") or (stored.username if stored else login)
    token = env.get("HPMS_TOKEN")
    if token:
        user = session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()
        if user is None or user.disabled or not verify_token(user.token_hash, token):
            # One message for all three: do not reveal which user names exist.
            raise AuthError(f"authentication failed for hpms user {username!r}")
        return load_actor(session, username, auth_method="token", known=known)
    if stored is not None and stored.username == username:
        user = session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()
        if user is None or user.disabled or not verify_token(user.token_hash, stored.token):
            raise AuthError(
                f"the stored sign-in of hpms user {username!r} no longer works"
                " (its token was replaced or revoked, or the user was disabled); sign in again",
                action=Action("login", target=username, purpose="sign in again with"),
            )
        return load_actor(session, username, auth_method="login", known=known)
    if username != login:
        raise AuthError(
            f"HPMS_USER={username} is not the OS login {login!r}",
            hint=f"set HPMS_TOKEN to the token of {username!r}",
            action=Action("users", "token", target=username, purpose="an admin makes one with"),
        )
    return load_actor(session, username, auth_method="os", known=known)


def load_patient_actor(session: Session, patient_id: int, *, auth_method: str = "portal") -> Actor:
    """The actor of a patient signed in to the portal (the face checked who they are); AuthError
    when the patient is unknown, merged or inactive. Named in the audit trail by id only."""
    from hpms.models import Patient

    row = session.get(Patient, patient_id)
    if row is None or row.merged_into_id or not row.active:
        raise AuthError("this patient account cannot sign in")
    return Actor(
        user_id=None,
        username=f"patient:{patient_id}",
        org_id=row.org_id,
        roles=frozenset(),
        auth_method=auth_method,
        patient_id=patient_id,
    )
