"""The interfaces' work list: the HL7 messages that were not delivered (refused by the
receiver, out of tries, or of unknown fate), sent again; and the ADT messages received that
wait for review (the patient was uncertain), applied to a patient on file or as a new one, or
dismissed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from hpms.tui.screens.base import scheduler
from hpms.tui.screens.panels import Panel

if TYPE_CHECKING:
    from hpms.models import Hl7InboundOut, Hl7MessageOut
    from hpms.services.platform.context import Ctx

STATE_TEXT = {"failed": "failed", "unknown": "unknown fate"}
SHORT = 60  # characters of a problem or a reason shown in a table; the detail line has it whole


def _short(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= SHORT else text[: SHORT - 1] + "…"


def receiver_text(m: Hl7MessageOut) -> str:
    return f"{m.receiver or '?'} (removed)" if m.receiver_active is False else m.receiver or "?"


def message_detail(m: Hl7MessageOut, zone: ZoneInfo) -> str:
    """The detail line of a message not delivered."""
    acked = f" · ACK {m.ack_code} at {m.ack_at.astimezone(zone):%Y-%m-%d %H:%M}" if m.ack_code and m.ack_at else ""
    gone = " · its receiver was removed: add it again to send to it" if m.receiver_active is False else ""
    return (
        f" Out #{m.id} {m.message_type or m.event} to {receiver_text(m)} · control id {m.control_id} · "
        f"{STATE_TEXT.get(m.state, m.state)} after {m.attempts} attempt(s){acked}{gone}\n"
        f" {m.error or 'no problem recorded'}"
    )


def inbound_detail(r: Hl7InboundOut, zone: ZoneInfo) -> str:
    """The detail line of a message received that waits for review."""
    return (
        f" In #{r.id} {r.message_type or r.event} from {r.sending_app} ({r.sending_facility}) · control id "
        f"{r.control_id} · received {r.received_at.astimezone(zone):%Y-%m-%d %H:%M}\n {r.note or ''}"
    )


class InterfacesScreen(Panel):
    """HL7 messages not delivered (r sends the highlighted one again) and messages received to
    review (a applies the highlighted one to an MRN, n as a new patient, x dismisses it). Times
    are in `tz`, the day view's location's zone (the practice's default location's without)."""

    BINDINGS = [
        Binding("r", "resend", "Resend"),
        Binding("a", "accept", "Apply to MRN"),
        Binding("n", "accept_new", "Apply as new"),
        Binding("x", "dismiss_received", "Dismiss"),
        Binding("f5", "load", "Refresh"),
    ]
    LIMIT = 200  # rows of each list (the newest); a table measures every cell it holds

    def __init__(self, tz: str | None = None) -> None:
        super().__init__()
        self.tz = tz
        self.zone = ZoneInfo(tz or "UTC")
        self.failed: list[Hl7MessageOut] = []
        self.staged: list[Hl7InboundOut] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(" HL7 messages not delivered (newest first)", id="failed-title", classes="panel-title")
            yield DataTable(id="failed", cursor_type="row")
            yield Static(" HL7 messages received, to review (newest first)", id="staged-title", classes="panel-title")
            yield DataTable(id="staged", cursor_type="row")
            yield Static("", id="interface-detail")
            yield Static(
                "r resend the message not delivered · a apply the one received to an MRN · n as a new patient"
                " · x dismiss it · Tab next list · F5 refresh · Esc back",
                classes="hint",
            )

    def on_mount(self) -> None:
        self.query_one("#failed", DataTable).add_columns(
            "#", "Queued", "Receiver", "Event", "MRN", "State", "Tries", "Problem"
        )
        self.query_one("#staged", DataTable).add_columns("#", "Received", "From", "Event", "Control ID", "Why")
        self.query_one("#failed", DataTable).focus()
        self.action_load()

    # ---- loading ------------------------------------------------------------------------------

    def action_load(self) -> None:
        limit = self.LIMIT

        def load(ctx: Ctx) -> tuple[list[Hl7MessageOut], list[Hl7InboundOut], str]:
            from hpms.services.interop.hl7 import inbound, outbound
            from hpms.services.lookups import display_zone

            return (
                outbound.for_staff(ctx, limit=limit),
                inbound.list_inbound(ctx, limit=limit),
                self.tz or display_zone(ctx),
            )

        def done(result: tuple[list[Hl7MessageOut], list[Hl7InboundOut], str]) -> None:
            self.failed, self.staged, tz = result
            self.zone = ZoneInfo(tz)
            self.show()

        def failed(_exc: Exception) -> None:
            self.failed, self.staged = [], []
            self.show()
            self.query_one("#interface-detail", Static).update(" not shown: the lists could not be read")

        scheduler(self).service(load, done=done, failed=failed)

    def show(self) -> None:
        z = self.zone
        t = self.query_one("#failed", DataTable)
        t.clear()
        for m in self.failed:
            t.add_row(
                str(m.id),
                f"{m.created_at.astimezone(z):%Y-%m-%d %H:%M}",
                receiver_text(m),
                m.message_type or m.event,
                m.mrn or "",
                STATE_TEXT.get(m.state, m.state),
                str(m.attempts),
                _short(m.error),
            )
        s = self.query_one("#staged", DataTable)
        s.clear()
        for r in self.staged:
            s.add_row(
                str(r.id),
                f"{r.received_at.astimezone(z):%Y-%m-%d %H:%M}",
                f"{r.sending_app} ({r.sending_facility})",
                r.message_type or r.event,
                r.control_id,
                _short(r.note),
            )
        cut = f" (the newest {self.LIMIT})" if len(self.failed) >= self.LIMIT else ""
        self.query_one("#failed-title", Static).update(
            f" HL7 messages not delivered: {len(self.failed)}{cut} (newest first)"
        )
        cut = f" (the newest {self.LIMIT})" if len(self.staged) >= self.LIMIT else ""
        self.query_one("#staged-title", Static).update(
            f" HL7 messages received, to review: {len(self.staged)}{cut} (newest first)"
        )
        self.show_detail()

    def show_detail(self) -> None:
        pane = self.query_one("#interface-detail", Static)
        focused = self.focused
        if isinstance(focused, DataTable) and focused.id == "staged":
            r = self._row(self.staged, "#staged")
            pane.update(inbound_detail(r, self.zone) if r else " No message received waits for review.")
            return
        m = self._row(self.failed, "#failed")
        pane.update(message_detail(m, self.zone) if m else " Every HL7 message was delivered or waits its turn.")

    @on(DataTable.RowHighlighted)
    def _highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def on_descendant_focus(self, _event: events.DescendantFocus) -> None:
        self.show_detail()

    # ---- the chosen rows ----------------------------------------------------------------------

    def _row(self, rows: list[Any], selector: str) -> Any:
        t = self.query_one(selector, DataTable)
        if not rows or t.cursor_row is None or not 0 <= t.cursor_row < len(rows):
            return None
        return rows[t.cursor_row]

    def _chosen(self, rows: list[Any], selector: str, none: str) -> Any:
        row = self._row(rows, selector)
        if row is None:
            self.app.notify(none, severity="warning")
        return row

    # ---- actions ------------------------------------------------------------------------------

    def action_resend(self) -> None:
        from hpms.services.interop.hl7 import outbound

        m = self._chosen(self.failed, "#failed", "no message to send again here")
        if m is None:
            return

        def done(out: Hl7MessageOut) -> None:
            self.app.notify(f"HL7 message {out.id} ({out.message_type or out.event} to {out.receiver}) queued again")
            self.action_load()

        scheduler(self).service(outbound.resend, m.id, done=done, failed=lambda _e: self.action_load())

    def _accept(self, r: Hl7InboundOut, **kw: Any) -> None:
        from hpms.services.interop.hl7 import inbound

        def done(out: Hl7InboundOut) -> None:
            said = {"created": "registered as a new patient", "updated": "applied to the patient"}
            self.app.notify(f"HL7 message received {out.id}: {said.get(out.outcome, out.outcome)}")
            self.action_load()

        scheduler(self).service(inbound.accept, r.id, done=done, failed=lambda _e: self.action_load(), **kw)

    def action_accept(self) -> None:
        from hpms.tui.screens.dialogs import TextDialog

        r = self._chosen(self.staged, "#staged", "no message received to review here")
        if r is None:
            return

        def given(mrn: str | None) -> None:
            if mrn:
                self._accept(r, patient=mrn)

        self.app.push_screen(TextDialog(f"Apply message {r.id} to the patient", "MRN"), given)

    def action_accept_new(self) -> None:
        r = self._chosen(self.staged, "#staged", "no message received to review here")
        if r is not None:
            self._accept(r, new=True)

    def action_dismiss_received(self) -> None:
        from hpms.services.interop.hl7 import inbound

        r = self._chosen(self.staged, "#staged", "no message received to review here")
        if r is None:
            return

        def done(out: Hl7InboundOut) -> None:
            self.app.notify(f"HL7 message received {out.id} dismissed")
            self.action_load()

        scheduler(self).service(inbound.dismiss, r.id, done=done, failed=lambda _e: self.action_load())
