"""The lock that keeps two billing runs apart (a `job_lock` row): taken in the caller's
transaction, kept alive by a heartbeat, released at the end; the lock of a run that died (same
host and its process gone, or no heartbeat for 10 minutes) is taken over."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hpms.errors import LockHeldError
from hpms.fileio import pid_alive
from hpms.models import BillingRun, JobLock

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

LOCK_NAME = "billing_run"
STALE_AFTER = dt.timedelta(minutes=10)
_WHAT = {LOCK_NAME: "billing run", "outbox": "outbox sender"}  # who holds a lock, in words


def acquire_lock(ctx: Ctx, name: str = LOCK_NAME) -> None:
    """Take the named lock in the caller's transaction (commit it to hold it). Raises
    LockHeldError while a live run holds it."""
    session = ctx.session
    now = ctx.now()
    host, pid = socket.gethostname(), os.getpid()
    table = JobLock.__table__
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING
    res = session.execute(
        insert(table)
        .values(name=name, holder=ctx.actor.username, host=host, pid=pid, acquired_at=now, heartbeat_at=now)
        .on_conflict_do_nothing()
        .returning(table.c.name)
    )
    if res.first() is not None:
        return
    held = session.execute(sa.select(JobLock).where(JobLock.name == name).with_for_update()).scalar_one()
    dead = (held.host == host and not pid_alive(held.pid)) or now - held.heartbeat_at > STALE_AFTER
    if not dead:
        raise LockHeldError(
            f"another {_WHAT.get(name, name)} holds the lock ({held.holder}, pid {held.pid} on {held.host}, "
            f"since {held.acquired_at:%Y-%m-%d %H:%M:%S} UTC)",
            hint="cron may retry later",
        )
    held.holder, held.host, held.pid, held.acquired_at, held.heartbeat_at = ctx.actor.username, host, pid, now, now
    if name == LOCK_NAME:  # the run that died is no longer running
        session.execute(
            sa.update(BillingRun)
            .where(BillingRun.org_id == ctx.org_id, BillingRun.status == "running")
            .values(status="abandoned", finished_at=now)
        )
    session.flush()


def heartbeat(ctx: Ctx, name: str = LOCK_NAME) -> None:
    ctx.session.execute(
        sa.update(JobLock).where(JobLock.name == name, JobLock.pid == os.getpid()).values(heartbeat_at=ctx.now())
    )


def release_lock(ctx: Ctx, name: str = LOCK_NAME) -> None:
    ctx.session.execute(
        sa.delete(JobLock).where(JobLock.name == name, JobLock.pid == os.getpid(), JobLock.host == socket.gethostname())
    )


class PassSummary(Protocol):
    """What a sender's pass counts: the claims of a dead sender it found, and a sum of passes."""

    found_unknown: int

    def add(self, other: Self, /) -> None: ...


S = TypeVar("S", bound=PassSummary)


def repeat_locked(
    context: Callable[[], AbstractContextManager[Ctx]],
    name: str,
    *,
    permission: str,
    stop: threading.Event,
    interval_s: float,
    new: Callable[[], S],
    sweep: Callable[[Ctx], int],
    one_pass: Callable[[S], None],
    on_pass: Callable[[S], None] | None = None,
) -> S:
    """The worker of a sender that runs alone in its database: checks `permission`, takes the
    named lock for the whole time, then until `stop` is set makes a pass every `interval_s`
    seconds (the lock renewed and a dead sender's claims swept, `sweep`, in a transaction of
    their own first), and releases the lock however it ends. Returns the sum of the passes.
    Raises LockHeldError, PermissionDenied."""
    from hpms.services.platform.permissions import require

    totals = new()
    with context() as ctx:
        require(ctx.actor, permission)
        acquire_lock(ctx, name)
    try:
        while not stop.is_set():
            summary = new()
            with context() as ctx:
                heartbeat(ctx, name)
                summary.found_unknown = sweep(ctx)
            one_pass(summary)
            totals.add(summary)
            if on_pass is not None:
                on_pass(summary)
            stop.wait(interval_s)
    finally:
        with context() as ctx:
            release_lock(ctx, name)
    return totals
