"""The context a service call runs in: session, acting user, clock, settings, crypto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.config import Settings, load_settings
from hpms.db import check_schema, get_engine, session_scope
from hpms.errors import HpmsError, PermissionDenied
from hpms.models import Actor
from hpms.services.platform.auth import authenticate, check_schema_and_user, load_actor, load_patient_actor
from hpms.services.platform.conflicts import integrity_conflict
from hpms.services.platform.crypto import FieldCrypto, KeyRing, bind_to_database, load_keyring

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Ctx:
    """What every service function takes: the transaction it works in (the face owns it), the
    actor it runs as, the clock (UTC, aware), the settings, and field encryption on demand."""

    session: Session
    actor: Actor
    settings: Settings
    clock: Clock = system_clock
    _crypto: FieldCrypto | None = field(default=None, repr=False)
    _key_checked: bool = field(default=False, repr=False)
    _ring: KeyRing | None = field(default=None, repr=False)

    def now(self) -> dt.datetime:
        return self.clock()

    @property
    def org_id(self) -> int:
        return self.actor.org_id

    @property
    def crypto(self) -> FieldCrypto:
        """Field encryption, loaded on first use (only commands that need the key pay for it)."""
        if not self._key_checked:
            self._crypto = bind_to_database(self.session, self._crypto, self.settings)
            self._key_checked = True
        assert self._crypto is not None
        return self._crypto

    @property
    def key_ring(self) -> KeyRing:
        """The practice key ring (which seals the audit trail), read once per context; the
        field-encryption machinery is not built for it. Raises EncryptionKeyError."""
        if self._crypto is not None:
            return self._crypto.ring
        if self._ring is None:
            self._ring = load_keyring(self.settings)
        return self._ring


@contextmanager
def open_context(
    settings: Settings | None = None,
    *,
    readonly: bool = False,
    clock: Clock = system_clock,
    env: Mapping[str, str] | None = None,
    connection: sa.Connection | None = None,
) -> Iterator[Ctx]:
    """One transaction as the authenticated user: checks the schema, authenticates before
    reading anything else, commits on success and rolls back on error. On `connection` (of
    the settings' engine), held by the caller for several transactions, when given."""
    settings = settings or load_settings()
    engine = get_engine(settings)
    actor: Actor | None = None
    try:
        with session_scope(engine, readonly=readonly, connection=connection) as session:
            # in the transaction (no connection of its own), the acting user read with it
            known = check_schema_and_user(engine, session, env)
            actor = authenticate(session, env, known=known)
            yield Ctx(session=session, actor=actor, settings=settings, clock=clock)
    except sa.exc.IntegrityError as exc:
        # A concurrent writer got there first (unique key, foreign key): a conflict, not a crash.
        raise integrity_conflict(exc) from None
    except HpmsError as exc:
        if actor is not None:
            record_after_rollback(engine, settings, actor, clock, exc)
        raise


def record_after_rollback(engine: Engine, settings: Settings, actor: Actor, clock: Clock, exc: HpmsError) -> None:
    """The audit events that stand although the work was rolled back, in a transaction of
    their own: a refused operation ("denied", naming what was refused) and what a refusal
    showed. A failure here never hides the refusal itself."""
    from hpms.services.platform import audit

    events = [e for e in exc.audit_after_rollback if isinstance(e, audit.Event)]
    if isinstance(exc, PermissionDenied):
        events.insert(0, audit.Event("denied", "permission", exc.refused, detail=exc.message[:500]))
    if not events:
        return
    try:
        with session_scope(engine) as session:
            audit.record_many(Ctx(session=session, actor=actor, settings=settings, clock=clock), events)
    except (HpmsError, sa.exc.SQLAlchemyError):
        pass  # the refusal is what the person must see; verify shows a chain in trouble


def context_for(session: Session, settings: Settings, username: str, *, clock: Clock = system_clock) -> Ctx:
    """A context for a known user name (tests, the TUI after it authenticated once)."""
    return Ctx(session=session, actor=load_actor(session, username), settings=settings, clock=clock)


def patient_context(session: Session, settings: Settings, patient_id: int, *, clock: Clock = system_clock) -> Ctx:
    """A context whose actor is a signed-in patient (the portal, after it checked who they are)."""
    return Ctx(session=session, actor=load_patient_actor(session, patient_id), settings=settings, clock=clock)


@contextmanager
def open_patient_context(
    settings: Settings | None = None, *, patient_id: int, clock: Clock = system_clock
) -> Iterator[Ctx]:
    """One transaction as a signed-in patient: checks the schema, commits on success and rolls
    back on error; a write another writer beat is a conflict."""
    settings = settings or load_settings()
    engine = get_engine(settings)
    try:
        with session_scope(engine) as session:
            check_schema(engine, session)
            yield patient_context(session, settings, patient_id, clock=clock)
    except sa.exc.IntegrityError as exc:
        raise integrity_conflict(exc) from None
