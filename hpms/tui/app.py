"""`hpms tui`: the front-desk scheduler.

Every read and write goes through the service layer in a thread worker (one transaction per
call, as the acting user), so the screen never freezes and the permissions and audit trail
are the CLI's. A cheap change marker is polled every second; the day is reloaded only when it
changed.
"""

from __future__ import annotations

import datetime as dt
import gc
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Static

from hpms.tui.screens.base import scheduler
from hpms.tui.widgets.daygrid import CONFIRM_TEXT, DayGrid

if TYPE_CHECKING:  # the service layer (SQLAlchemy) loads in the first worker, after the first frame
    from hpms.config import Settings
    from hpms.models import Actor
    from hpms.services.platform.context import Ctx
    from hpms.services.scheduling.schedule_view import Block, DayView

STEPS = (5, 10, 15, 30)


class HpmsApp(App):
    """The scheduler. `settings`, `env` and `clock` are those of the service context (tests
    pass a user through `env` and a fixed clock); `location` is a location's id or name; `date`
    the day to open as typed (`today`, `+7`), read against the location's today by the first
    load, which `day` spares. With `refuse_start`, an error of the first load (an unknown
    location, a bad date, an hpms not initialized, a user it does not know) ends the app, which
    returns it for the face that launched it to report; otherwise it is shown on screen."""

    CSS_PATH = "app.tcss"
    TITLE = "hpms scheduler"
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        location: int | str | None = None,
        day: dt.date | None = None,
        date: str | None = None,
        env: dict[str, str] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        poll_seconds: float = 1.0,
        step: int = 15,
        refuse_start: bool = False,
    ) -> None:
        super().__init__()
        if settings is None:
            from hpms.config import load_settings

            settings = load_settings()
        self.settings = settings
        self.env = env
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.start_location = location
        self.start_day = day
        self.start_date = date
        self.start_step = step
        self.refuse_start = refuse_start
        self.actor: Actor | None = None

    # ---- service calls ------------------------------------------------------------------------

    def context(self) -> AbstractContextManager[Ctx]:
        from hpms.services.platform.context import open_context, system_clock

        return open_context(self.settings, env=self.env, clock=self.clock or system_clock)

    def call(self, fn: Callable, *args: Any, **kw: Any) -> Any:
        """Run one service call in its own transaction (in the calling thread)."""
        with self.context() as ctx:
            return fn(ctx, *args, **kw)

    def service(
        self,
        fn: Callable,
        *args: Any,
        done: Callable[[Any], object] | None = None,
        failed: Callable[[Exception], object] | None = None,
        group: str = "action",
        **kw: Any,
    ) -> None:
        """Run a service call in a thread worker; `done(result)` or a notification (or
        `failed(error)`) back on the UI thread. Never a traceback on screen."""

        def job() -> None:
            try:
                result = self.call(fn, *args, **kw)
            except Exception as exc:  # noqa: BLE001 - shown to the user, not raised
                self.call_from_thread(self._failed, exc, failed)
                return
            if done is not None:
                self.call_from_thread(done, result)

        self.run_worker(job, thread=True, group=group, exit_on_error=False)

    def now(self) -> dt.datetime:
        """The service clock's now (tests fix it; screenshots stay stable)."""
        from hpms.services.platform.context import system_clock

        return (self.clock or system_clock)()

    def _failed(self, exc: Exception, failed: Callable[[Exception], object] | None) -> None:
        from hpms.tui.errors import say

        if failed is not None:
            failed(exc)
        message = say(exc).text
        self.notify(
            message.splitlines()[0][:300] if message else type(exc).__name__,
            title="Not done",
            severity="error",
            timeout=8,
        )

    # ---- lifecycle ----------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen(DayScreen())


class DayScreen(Screen):
    """The day view of one location: one column per provider (or room)."""

    BINDINGS = [
        Binding("t", "today", "Today"),
        Binding("left_square_bracket", "day(-1)", "Prev day"),
        Binding("right_square_bracket", "day(1)", "Next day"),
        Binding("g", "goto_date", "Go to date"),
        Binding("L", "switch_location", "Location"),
        Binding("o", "toggle_mode", "Providers/rooms"),
        Binding("plus,equals_sign", "step(-1)", "Finer", show=False),
        Binding("minus", "step(1)", "Coarser", show=False),
        Binding("n", "book", "Book"),
        Binding("c", "act('confirm')", "Confirm"),
        Binding("i", "act('checkin')", "Check in"),
        Binding("m", "to_room", "To room"),
        Binding("e", "act('complete')", "Complete"),
        Binding("N", "act('noshow')", "No-show"),
        Binding("x", "cancel_visit", "Cancel visit"),
        Binding("r", "move", "Reschedule"),
        Binding("p", "patient", "Patient"),
        Binding("w", "week", "Week"),
        Binding("f", "flow", "Flow board"),
        Binding("s", "find_slot", "Find slot"),
        Binding("v", "waitlist", "Waitlist"),
        Binding("d", "dashboard", "Dashboard"),
        Binding("R", "requests", "Portal requests"),
        Binding("I", "interfaces", "Interfaces"),
        Binding("f5,ctrl+r", "reload", "Refresh", show=False),
        Binding("escape", "abort_move", "Abort move", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: DayView | None = None
        self.location: int | str | None = None  # an id, or the name given at start
        self.day: dt.date | None = None
        self.mode = "provider"
        self.refreshed_at: dt.datetime | None = None
        self.last_poll_ok: float | None = None
        self._polling = False
        self._loading = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="topbar")
            yield DayGrid(id="grid")
            yield Static("", id="detail")
            yield Static("", id="status")

    @property
    def grid(self) -> DayGrid:
        return self.query_one(DayGrid)

    @property
    def hpms(self) -> HpmsApp:
        return scheduler(self)

    def on_mount(self) -> None:
        app = self.hpms
        self.location = app.start_location
        self.day = app.start_day
        self.grid.step = app.start_step
        self.grid.focus()
        self._loading = True  # until the first load has answered (the grid says "Loading…")
        # the first frame (the bars and the empty grid) goes out before the first load imports
        # the service layer (SQLAlchemy, the models) in its thread
        self.call_after_refresh(self.reload, keep_cursor=False)
        self.set_interval(app.poll_seconds, self.poll)
        self.set_interval(1.0, self.show_status)

    # ---- loading ------------------------------------------------------------------------------

    def reload(self, *, keep_cursor: bool = True, then: Callable[[], None] | None = None) -> None:
        self._loading = True

        def done(result) -> None:
            view, actor = result
            self._loading = False
            self.hpms.actor = actor
            self.view = view
            self.location = view.location_id
            self.day = view.day
            self.grid.load(view, keep_cursor=keep_cursor)
            self.refreshed_at = self.hpms.now().astimezone(ZoneInfo(view.tz))
            self.last_poll_ok = time.monotonic()
            self.show_top()
            self.show_detail()
            self.show_status()
            if first:
                # what the imports and the start built lives as long as the app: kept out of
                # the collector's full passes, which rescanned all of it during later loads
                gc.freeze()
            if then:
                then()

        first = self.view is None

        def failed(exc: Exception) -> None:
            self._loading = False
            if first and self.hpms.refuse_start:
                self.app.exit(result=exc)

        def load(ctx: Ctx) -> tuple[Any, Any]:
            # imported in the worker thread: the first frame does not wait for the service layer
            from hpms.services.scheduling import schedule_view

            location, day, date = self.location, self.day, self.hpms.start_date if first else None
            if date:
                from hpms.services.lookups import resolve_location
                from hpms.services.platform.localtime import local_now, parse_day

                loc = resolve_location(ctx, location, field="location")
                location, day = loc.id, parse_day("date", date, today=local_now(ctx.now(), loc.tz).date())
            return schedule_view.day_view(ctx, location=location, day=day, mode=self.mode), ctx.actor

        self.hpms.service(load, done=done, failed=failed, group="load")

    def poll(self) -> None:
        """Reload when the change marker moved (other users, scripts)."""
        if self.view is None or self._polling or self._loading or self.grid.moving is not None:
            return
        from hpms.services.scheduling import schedule_view

        self._polling = True
        view = self.view

        def done(marker) -> None:
            self._polling = False
            self.last_poll_ok = time.monotonic()
            if marker != view.marker and self.view is view:
                self.reload()
            else:
                self.show_status()

        def failed(_exc) -> None:
            self._polling = False

        def job() -> None:
            try:
                marker = self.hpms.call(schedule_view.change_marker, view.location_id, view.day)
            except Exception:  # noqa: BLE001 - the status line shows the data is stale
                self.app.call_from_thread(failed, None)
                return
            self.app.call_from_thread(done, marker)

        self.run_worker(job, thread=True, group="poll", exit_on_error=False)

    # ---- display ------------------------------------------------------------------------------

    def show_top(self) -> None:
        v = self.view
        if v is None:
            return
        mode = "rooms" if v.mode == "room" else "providers"
        today = " (today)" if v.now_min is not None else ""
        self.query_one("#topbar", Static).update(
            f" {v.location} · {v.day:%a %d %b %Y}{today} · {mode} · {self.grid.step} min · {v.tz}"
        )

    def show_detail(self) -> None:
        v = self.view
        if v is None:
            return
        g = self.grid
        if g.moving is not None:
            blk, minute, col = g.moving
            label = v.columns[col].label if v.columns else ""
            text = (
                f" MOVE {blk.patient}: {minute // 60:02d}:{minute % 60:02d} {label} "
                f"— arrows move, Enter confirms, Esc aborts"
            )
        elif g.block is not None:
            b = g.block
            text = (
                f" #{b.id} {b.start:%H:%M}-{b.end:%H:%M} {b.patient} (MRN {b.mrn}) · {b.type} · "
                f"{b.status.replace('_', ' ')}"
                + (f" · {CONFIRM_TEXT[b.confirmation]}" if b.confirmation in CONFIRM_TEXT else "")
                + (f" · {b.room}" if b.room else "")
                + (f" · {b.reason}" if b.reason else "")
            )
        else:
            column = v.columns[g.col].label if v.columns else ""
            m = g.minute
            text = f" {m // 60:02d}:{m % 60:02d} {column} · free" + (" · n or Enter to book" if v.can_book else "")
        self.query_one("#detail", Static).update(text)

    def show_status(self) -> None:
        actor = self.hpms.actor
        who = f"{actor.username} ({', '.join(sorted(actor.roles))})" if actor else "…"
        where = self.view.location if self.view else "…"
        if self.refreshed_at is None:
            fresh = "loading…"
        else:
            fresh = f"refreshed {self.refreshed_at:%H:%M:%S}"
            if self.last_poll_ok and time.monotonic() - self.last_poll_ok > max(5.0, 3 * self.hpms.poll_seconds):
                fresh = f"⚠ STALE: no answer from the database for {time.monotonic() - self.last_poll_ok:.0f} s"
        self.query_one("#status", Static).update(f" {who} · {where} · {fresh} · ? help")

    @on(DayGrid.CursorMoved)
    def _moved(self, _msg) -> None:
        self.show_detail()

    # ---- navigation ---------------------------------------------------------------------------

    def action_today(self) -> None:
        self.day = None
        self.reload(keep_cursor=False)

    def action_day(self, delta: int) -> None:
        if self.day is None:
            return
        self.day = self.day + dt.timedelta(days=delta)
        self.reload()

    def action_goto_date(self) -> None:
        from hpms.tui.screens.dialogs import TextDialog

        def chosen(text: str | None) -> None:
            if not text:
                return
            from hpms.errors import ValidationError
            from hpms.services.platform.localtime import local_now, parse_day
            from hpms.tui.errors import say

            # today, tomorrow, +N: from the clinic's today (the service clock), not the day shown
            today = local_now(self.hpms.now(), self.view.tz).date() if self.view else self.day
            try:
                self.day = parse_day("date", text, today=today or dt.date.today())
            except ValidationError as exc:
                self.notify(say(exc).text, severity="error")
                return
            self.reload()

        self.app.push_screen(TextDialog("Go to date", "YYYY-MM-DD, today, tomorrow, +7"), chosen)

    def action_switch_location(self) -> None:
        from hpms.services.scheduling import schedule_view
        from hpms.tui.screens.dialogs import ChoiceDialog

        def show(locs) -> None:
            def chosen(value) -> None:
                if value is not None:
                    self.location = value
                    self.reload(keep_cursor=False)

            self.app.push_screen(ChoiceDialog("Location", [(i, f"{n} ({tz})") for i, n, tz in locs]), chosen)

        self.hpms.service(schedule_view.locations, done=show)

    def action_toggle_mode(self) -> None:
        self.mode = "room" if self.mode == "provider" else "provider"
        self.reload(keep_cursor=False)

    def action_step(self, direction: int) -> None:
        g = self.grid
        i = STEPS.index(g.step) if g.step in STEPS else 2
        g.step = STEPS[max(0, min(len(STEPS) - 1, i + direction))]
        self.show_top()

    def action_reload(self) -> None:
        self.reload()

    # ---- booking ------------------------------------------------------------------------------

    @on(DayGrid.CellChosen)
    def _chosen(self, msg: DayGrid.CellChosen) -> None:
        g = self.grid
        if g.moving is not None:
            self.confirm_move()
        elif msg.block is not None:
            self.open_details(msg.block)
        else:
            self.action_book()

    def _slot_text(self, day: dt.date, minute: int) -> str:
        start = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
        return start.strftime("%Y-%m-%d %H:%M")

    def action_book(self, at: str | None = None, provider_id: int | None = None) -> None:
        v = self.view
        if v is None:
            return
        if not v.can_book:
            self.notify("your role may not book appointments", severity="error")
            return
        g = self.grid
        if at is None and g.block is not None:
            self.notify("this time is taken; move to a free cell", severity="warning")
            return
        if provider_id is None:
            if v.mode != "provider" or not v.columns:
                self.notify("switch to the provider columns (o) to book", severity="warning")
                return
            provider_id = g.column_key
            at = self._slot_text(v.day, g.minute)
            provider_label = v.columns[g.col].label
        else:
            provider_label = next((c.label for c in v.columns if c.key == provider_id), str(provider_id))
        if provider_id is None or at is None:  # a column always has a key; a slot given has its time
            return
        from hpms.tui.screens.dialogs import BookingDialog

        def saved(result) -> None:
            if result is not None:
                self.notify(
                    f"booked #{result.booked[0].id} {result.booked[0].start:%a %H:%M} {result.booked[0].patient}"
                )
            self.reload()

        self.app.push_screen(
            BookingDialog(provider_id=provider_id, provider_label=provider_label, location_id=v.location_id, at=at),
            saved,
        )

    # ---- actions on an appointment ------------------------------------------------------------

    def _block(self) -> Block | None:
        b = self.grid.block
        if b is None:
            self.notify("no appointment here", severity="warning")
        return b

    def transition(self, block: Block, action: str, **kw: Any) -> None:
        from hpms.services.scheduling import appointments

        names = {
            "confirm": "confirmed",
            "checkin": "checked in",
            "room": "in room",
            "complete": "completed",
            "noshow": "marked no-show",
        }

        def done(out) -> None:
            self.notify(f"#{out.id} {out.patient}: {names[action]}")
            self.reload()

        self.hpms.service(
            appointments.transition,
            block.id,
            action,
            expected_version=block.version,
            done=done,
            failed=lambda _e: self.reload(),
            **kw,
        )

    def action_act(self, action: str) -> None:
        b = self._block()
        if b is not None:
            self.transition(b, action)

    def action_to_room(self) -> None:
        b = self._block()
        if b is None:
            return
        from hpms.services.scheduling import resources
        from hpms.tui.screens.dialogs import ChoiceDialog

        location_id = self.view.location_id if self.view else None

        def chosen(room_id: int | None) -> None:
            if room_id is not None:
                self.transition(b, "room", room=room_id)

        def show(rooms) -> None:
            options = [(r.id, r.name) for r in rooms if r.location_id == location_id]
            if not options:
                self.notify("this location has no rooms", severity="warning")
                return
            self.app.push_screen(ChoiceDialog(f"Room for {b.patient}", options), chosen)

        self.hpms.service(resources.list_rooms, done=show)

    def action_cancel_visit(self) -> None:
        b = self._block()
        if b is None:
            return
        from hpms.services.scheduling import appointments
        from hpms.tui.screens.dialogs import TextDialog

        def reason(text: str | None) -> None:
            if not text:
                return

            def done(outs) -> None:
                late = " (late)" if outs and outs[0].late_cancel else ""
                self.notify(f"#{b.id} {b.patient}: cancelled{late}")
                self.reload()

            self.hpms.service(
                appointments.cancel,
                b.id,
                reason=text,
                expected_version=b.version,
                done=done,
                failed=lambda _e: self.reload(),
            )

        self.app.push_screen(TextDialog(f"Cancel {b.start:%H:%M} {b.patient}", "reason (required)"), reason)

    def action_move(self) -> None:
        b = self._block()
        if b is None:
            return
        g = self.grid
        g.moving = (b, b.start_min, g.col)
        g.refresh()
        self.show_detail()

    def action_abort_move(self) -> None:
        g = self.grid
        if g.moving is not None:
            blk = g.moving[0]
            g.moving = None
            g.goto(blk.start_min, blk.column)
            self.show_detail()
            self.notify("move aborted")

    def confirm_move(self) -> None:
        from hpms.services.scheduling import appointments

        g, v = self.grid, self.view
        if g.moving is None or v is None:
            return
        blk, minute, col = g.moving
        g.moving = None
        key = v.columns[col].key
        kw: dict[str, Any] = {"room": key} if v.mode == "room" and key else {}
        if v.mode == "provider":
            kw["provider"] = key

        def done(outs) -> None:
            self.notify(f"#{blk.id} {blk.patient} moved to {outs[0].start:%a %H:%M}")
            self.reload()

        self.hpms.service(
            appointments.reschedule,
            blk.id,
            at=self._slot_text(v.day, minute),
            expected_version=blk.version,
            done=done,
            failed=lambda _e: self.reload(),
            **kw,
        )
        self.show_detail()

    def open_details(self, block: Block) -> None:
        from hpms.tui.screens.dialogs import AppointmentDialog

        def chosen(action: str | None) -> None:
            if action is None:
                return
            if action in ("confirm", "checkin", "complete", "noshow"):
                self.transition(block, action)
            elif action == "room":
                self.action_to_room()
            elif action == "cancel":
                self.action_cancel_visit()
            elif action == "move":
                self.action_move()
            elif action == "patient":
                self.action_patient()

        self.app.push_screen(AppointmentDialog(block), chosen)

    # ---- panels -------------------------------------------------------------------------------

    def action_patient(self) -> None:
        b = self._block()
        if b is not None:
            from hpms.tui.screens.panels import PatientScreen

            self.app.push_screen(PatientScreen(b.patient_id))

    def action_week(self) -> None:
        v = self.view
        provider_id = self.grid.column_key
        if v is None or v.mode != "provider" or provider_id is None:
            self.notify("move to a provider column first", severity="warning")
            return
        from hpms.tui.screens.panels import WeekScreen

        self.app.push_screen(WeekScreen(provider_id, v.day, v.location_id))

    def action_flow(self) -> None:
        if self.view is not None:
            from hpms.tui.screens.panels import FlowScreen

            self.app.push_screen(FlowScreen(self.view.location_id))

    def action_find_slot(self) -> None:
        v = self.view
        if v is None:
            return
        from hpms.tui.screens.panels import FindSlotScreen

        provider = self.grid.column_key if v.mode == "provider" else None

        def chosen(slot) -> None:
            if slot is None:
                return
            if slot.location_id != v.location_id or slot.start.date() != v.day:
                self.location, self.day = slot.location_id, slot.start.date()
                self.reload(
                    then=lambda: self.action_book(
                        at=slot.start.strftime("%Y-%m-%d %H:%M"), provider_id=slot.provider_id
                    )
                )
            else:
                self.action_book(at=slot.start.strftime("%Y-%m-%d %H:%M"), provider_id=slot.provider_id)

        self.app.push_screen(FindSlotScreen(v.location_id, provider), chosen)

    def action_waitlist(self) -> None:
        from hpms.tui.screens.panels import WaitlistScreen

        self.app.push_screen(WaitlistScreen(), lambda _r: self.reload())

    def action_dashboard(self) -> None:
        if self.view is not None:
            from hpms.tui.screens.panels import DashboardScreen

            self.app.push_screen(DashboardScreen(self.view.location_id, self.view.day))

    def action_requests(self) -> None:
        from hpms.tui.screens.intake import IntakeScreen

        self.app.push_screen(IntakeScreen())

    def action_interfaces(self) -> None:
        from hpms.tui.screens.interfaces import InterfacesScreen

        self.app.push_screen(InterfacesScreen(self.view.tz if self.view else None))

    def action_help(self) -> None:
        from hpms.tui.screens.panels import HelpScreen

        self.app.push_screen(HelpScreen())


def launch(*, location: str | None = None, date: str | None = None, step: int = 15) -> None:
    """Open the scheduler. What can be checked without the database (a terminal, the step) is
    checked first; the schema, the user, the location and the date are checked by the first
    load, while the screen is already drawn (so that it is out before the service layer is
    imported), and an error there closes the screen and is raised here, so that the face that
    launched it reports it its own way. The errors name the fields `location`, `date` and
    `step`."""
    import sys

    from hpms.errors import Action, UsageError, ValidationError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the scheduler needs a terminal", action=Action("appointments", "list", purpose="in scripts, use")
        )
    if step not in STEPS:
        raise ValidationError("step", f"must be one of {', '.join(map(str, STEPS))}")
    refused = HpmsApp(location=location, date=date, step=step, refuse_start=True).run()
    if isinstance(refused, Exception):
        raise refused
