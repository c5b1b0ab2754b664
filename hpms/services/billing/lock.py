"""The lock that keeps two billing runs apart (a `job_lock` row): taken in the caller's
transaction, kept alive by a heartbeat, released at the end; the lock of a run that died (same
host and its process gone, or no heartbeat for 10 minutes) is taken over."""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import TYPE_CHECKING

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
