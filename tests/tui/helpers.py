"""Driving the scheduler with Pilot: waiting for thread workers, reading the screen and the
database."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable

import sqlalchemy as sa

from hpms.db import get_engine
from tests.tui.conftest import DAY, fixed_clock

SIZE = (120, 36)


def pilot_test(fn):
    """Run an `async def` test (which takes fixtures) on a fresh event loop."""
    assert inspect.iscoroutinefunction(fn)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        asyncio.run(fn(*args, **kwargs))

    return run


def make_app(settings, **kw):
    from hpms.tui.app import HpmsApp

    kw.setdefault("day", DAY)
    kw.setdefault("clock", fixed_clock)
    kw.setdefault("poll_seconds", 30)  # no background reload unless a test asks for it
    app = HpmsApp(settings, **kw)
    app.notified = []  # every notification, kept (toasts expire after a few seconds)
    shown = app.notify

    def notify(message, *args, **kwargs):
        app.notified.append(str(message))
        return shown(message, *args, **kwargs)

    app.notify = notify
    return app


async def wait_for(pilot, predicate: Callable[[], object], timeout: float = 5, what: str = "") -> None:
    """Let the app run until `predicate()` holds (service calls answer from thread workers)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - the widget may not be mounted yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}\n" + describe(pilot.app))
        await pilot.pause(0.05)


def describe(app) -> str:
    """What is on screen, for a failure message."""
    from textual.widgets import Static

    lines = [f"screens: {[type(s).__name__ for s in app.screen_stack]}", f"focused: {app.screen.focused!r}"]
    lines += [f"notification: {m}" for m in notifications(app)]
    for w in app.screen.query(Static):
        text = str(w.content).strip()
        if text:
            lines.append(f"{w.id or type(w).__name__}: {text[:200]}")
    return "\n".join(lines)


def day_screen(app):
    from hpms.tui.app import DayScreen

    return next(s for s in app.screen_stack if isinstance(s, DayScreen))


async def loaded(pilot, what: str = "the day view"):
    """Wait for the first load of the day view; returns the DayScreen."""
    await wait_for(
        pilot, lambda: day_screen(pilot.app).view is not None and not day_screen(pilot.app)._loading, what=what
    )
    return day_screen(pilot.app)


async def settled(pilot) -> None:
    """Wait until no service call is running (thread workers done and their answers applied)."""
    await wait_for(pilot, lambda: not any(w.is_running for w in pilot.app.workers), what="the workers")
    await pilot.pause()


def grid_lines(screen) -> list[str]:
    g = screen.grid
    return [g.render_line(y).text for y in range(g.size.height)]


def grid_text(screen) -> str:
    return "\n".join(grid_lines(screen))


def row_text(screen, hhmm: str) -> str:
    """The grid line of a time (e.g. '11:00'); the time column shows ':15' for quarter hours."""
    h, m = map(int, hhmm.split(":"))
    g = screen.grid
    minute = h * 60 + m
    row = (minute - g.view.first_min) // g.step
    y = row - g.row_offset + 1
    assert 1 <= y < g.size.height, f"{hhmm} is not on screen"
    return g.render_line(y).text


def cell_text(screen, hhmm: str, col: int) -> str:
    """The text of one grid cell (column index as on screen, time as 'HH:MM')."""
    from hpms.tui.widgets.daygrid import TIME_W

    g = screen.grid
    line = row_text(screen, hhmm)
    cw = g._col_width()
    x = TIME_W + (col - g.col_offset) * cw
    return line[x : x + cw - 1].rstrip()


def static_text(screen, selector: str) -> str:
    from textual.widgets import Static

    return str(screen.query_one(selector, Static).content)


def notifications(app) -> list[str]:
    """Every message notified since the app started (see make_app)."""
    return list(app.notified)


async def goto_cell(pilot, screen, hhmm: str, provider_id: int) -> None:
    """Put the grid cursor on a cell (as arrow keys would)."""
    h, m = map(int, hhmm.split(":"))
    screen.grid.goto(h * 60 + m, provider_id)
    await pilot.pause()
    assert screen.grid.minute == h * 60 + m and screen.grid.column_key == provider_id


# ---- the database, read directly --------------------------------------------------------------


def rows(settings, sql: str, **params) -> list[dict]:
    with get_engine(settings).connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def scalar(settings, sql: str, **params):
    with get_engine(settings).connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def appointment_count(settings) -> int:
    return scalar(settings, "SELECT count(*) FROM appointment")


def out_at(ctx_for, when: str, provider: int | None = None):
    """The appointment (AppointmentOut) starting at 'YYYY-MM-DD HH:MM' local, through the services."""
    from hpms.services.scheduling import appointments

    with ctx_for(clock=fixed_clock) as ctx:
        found = [
            a
            for a in appointments.list_appointments(ctx, day=when[:10])
            if a.start.strftime("%Y-%m-%d %H:%M") == when and (provider is None or a.provider_id == provider)
        ]
    return found


class Clock:
    """A fixed clock the test moves by hand (`clock.at(hh, mm)` in New York time)."""

    def __init__(self, now=None) -> None:
        from tests.tui.conftest import NOW

        self.now = now or NOW

    def __call__(self):
        return self.now

    def at(self, hh: int, mm: int) -> None:
        import datetime as dt
        from zoneinfo import ZoneInfo

        from tests.tui.conftest import DAY

        self.now = dt.datetime.combine(DAY, dt.time(hh, mm), ZoneInfo("America/New_York")).astimezone(dt.UTC)


def stored(ctx_for, appointment_id: int):
    """The appointment row as the ORM reads it (aware datetimes), detached."""
    from hpms.models import Appointment

    with ctx_for() as ctx:
        a = ctx.session.get(Appointment, appointment_id)
        ctx.session.expunge(a)
    return a


def utc(value):
    """A stored timestamp as aware UTC (SQLite hands back naive UTC)."""
    import datetime as dt

    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value
