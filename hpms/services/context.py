"""The context a service call runs in: session, acting user, clock, settings, crypto."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hpms.config import Settings, load_settings
from hpms.models import Actor


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Ctx:
    session: object
    actor: Actor
    settings: Settings
    clock: Callable[[], dt.datetime] = system_clock
    _crypto: object | None = field(default=None, repr=False)
    _key_checked: bool = field(default=False, repr=False)

    def now(self) -> dt.datetime:
        return self.clock()

    @property
    def org_id(self) -> int:
        return self.actor.org_id

    @property
    def crypto(self):
        """Field encryption, loaded on first use (only commands that need the key pay for it)."""
        if not self._key_checked:
            from hpms.services.crypto import bind_to_database

            self._crypto = bind_to_database(self.session, self._crypto, self.settings)
            self._key_checked = True
        return self._crypto


@contextmanager
def open_context(
    settings: Settings | None = None, *, readonly: bool = False,
    clock: Callable[[], dt.datetime] = system_clock, env: dict[str, str] | None = None,
) -> Iterator[Ctx]:
    """One transaction as the authenticated user: checks the schema, authenticates before
    reading anything else, commits on success and rolls back on error."""
    from hpms.db import check_schema, get_engine, session_scope
    from hpms.services.auth import authenticate

    settings = settings or load_settings()
    engine = get_engine(settings)
    check_schema(engine)
    import sqlalchemy as sa

    from hpms.errors import ConflictError

    try:
        with session_scope(engine, readonly=readonly) as session:
            actor = authenticate(session, env)
            yield Ctx(session=session, actor=actor, settings=settings, clock=clock)
    except sa.exc.IntegrityError as exc:
        # A concurrent writer got there first (unique key, foreign key): a conflict, not a crash.
        from hpms.services.appointments import overlap_error

        err = overlap_error(exc)
        if err is not None:
            raise err from None
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "constraint violated"
        raise ConflictError(f"the change conflicts with data already stored ({reason})",
                            hint="reload and try again") from None


def context_for(session, settings: Settings, username: str, *, clock=system_clock) -> Ctx:
    """A context for a known user name (tests, the TUI after it authenticated once)."""
    from hpms.services.auth import load_actor

    return Ctx(session=session, actor=load_actor(session, username), settings=settings, clock=clock)
