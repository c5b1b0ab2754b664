"""Full screens over the day view: a provider's week, the patient flow board, slot search,
the waitlist, a patient's details, and the key help."""

from __future__ import annotations

import datetime as dt
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label, Select, Static

from hpms.tui.screens.base import scheduler
from hpms.tui.widgets.daygrid import STATUS_MARK


class Panel(Screen):
    BINDINGS = [Binding("escape,q", "close", "Back")]

    def action_close(self) -> None:
        self.dismiss(None)


class WeekScreen(Panel):
    """One provider's week: hours, free time and bookings per day."""

    BINDINGS = [
        Binding("left_square_bracket", "shift(-7)", "Prev week"),
        Binding("right_square_bracket", "shift(7)", "Next week"),
    ]

    def __init__(self, provider_id: int, day: dt.date, location_id: int) -> None:
        super().__init__()
        self.provider_id, self.day, self.location_id = provider_id, day, location_id

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="title", classes="panel-title")
            yield DataTable(id="week", cursor_type="row")
            yield Static("[ ] previous/next week · Esc back", classes="hint")

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("Day", "Location", "Hours", "Free", "Booked", "Min booked")
        t.focus()
        self.load()

    def load(self) -> None:
        from hpms.services.scheduling import availability

        def done(week) -> None:
            self.query_one("#title", Static).update(f" {week['provider']} · week {week['week']}")
            t = self.query_one(DataTable)
            t.clear()
            for d in week["days"]:
                hours = ", ".join(d["hours"]) or ("time off" if d["time_off"] else "-")
                t.add_row(
                    f"{d['weekday']} {d['date']:%d %b}",
                    d["location"],
                    hours,
                    ", ".join(d["free"]) or "-",
                    str(d["booked"]),
                    str(d["booked_min"]),
                )

        scheduler(self).service(availability.week, self.provider_id, week_of=self.day.isoformat(), done=done)

    def action_shift(self, days: int) -> None:
        self.day += dt.timedelta(days=days)
        self.load()


class FlowScreen(Panel):
    """Today's patients by stage with waiting times; refreshed every few seconds."""

    def __init__(self, location_id: int) -> None:
        super().__init__()
        self.location_id = location_id

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(" Patient flow · today", classes="panel-title")
            yield DataTable(id="flow", cursor_type="row")
            yield Static("refreshes every 2 s · Esc back", classes="hint")

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("Stage", "Time", "Patient", "Provider", "Type", "Room", "Waited", "In room")
        t.focus()
        self.load()
        self.set_interval(2.0, self.load)

    def load(self) -> None:
        from hpms.services.scheduling import schedule_view

        def done(board) -> None:
            t = self.query_one(DataTable)
            t.clear()
            for stage in ("waiting", "in room", "expected", "done", "no-show"):
                for e in board[stage]:
                    t.add_row(
                        stage,
                        e["time"],
                        e["patient"],
                        e["provider"],
                        e["type"],
                        e["room"] or "",
                        "" if e["waited_min"] is None else f"{e['waited_min']} min",
                        "" if e["in_room_min"] is None else f"{e['in_room_min']} min",
                    )

        scheduler(self).service(schedule_view.flow_board, location=self.location_id, done=done, group="flow")


class FindSlotScreen(ModalScreen):
    """The next free slots for a type, at the current provider or any; Enter books one."""

    BINDINGS = [Binding("escape", "close", "Back"), Binding("a", "scope", "Any/this provider")]

    def __init__(self, location_id: int, provider_id: int | None) -> None:
        super().__init__()
        self.location_id = location_id
        self.provider_id = provider_id
        self.any_provider = provider_id is None
        self.slots: list = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Find a slot", classes="dialog-title")
            yield Select([], prompt="appointment type", id="type")
            yield Static("", id="scope")
            yield DataTable(id="slots", cursor_type="row")
            yield Static("a: any provider / this provider · Enter book · Esc back", classes="hint")

    def on_mount(self) -> None:
        from hpms.services.scheduling import resources

        self.query_one(DataTable).add_columns("When", "Provider", "Location", "Room")
        self.show_scope()

        def loaded(types) -> None:
            self.query_one("#type", Select).set_options([(f"{t.name} ({t.duration_min} min)", t.id) for t in types])
            self.query_one("#type", Select).focus()

        scheduler(self).service(resources.list_types, done=loaded)

    def show_scope(self) -> None:
        self.query_one("#scope", Static).update("any provider" if self.any_provider else "this provider")

    def action_scope(self) -> None:
        if self.provider_id is not None:
            self.any_provider = not self.any_provider
            self.show_scope()
            self.search()

    @on(Select.Changed, "#type")
    def _type(self, _event) -> None:
        self.search()

    def search(self) -> None:
        from hpms.services.scheduling import appointments

        type_select = self.query_one("#type", Select)
        type_id = type_select.value
        if type_select.is_blank() or type_id is None:
            return

        def done(slots) -> None:
            self.slots = slots
            t = self.query_one(DataTable)
            t.clear()
            for s in slots:
                t.add_row(f"{s.start:%a %d %b %H:%M}", s.provider, s.location, s.room or "")
            t.focus()

        kw: dict[str, Any] = {"any_provider": True} if self.any_provider else {"provider": self.provider_id}
        scheduler(self).service(
            appointments.find_slot, type=type_id, location=self.location_id, count=12, done=done, **kw
        )

    @on(DataTable.RowSelected, "#slots")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        if 0 <= event.cursor_row < len(self.slots):
            self.dismiss(self.slots[event.cursor_row])

    def action_close(self) -> None:
        self.dismiss(None)


class WaitlistScreen(Panel):
    """Waiting patients and the offers freed slots make them; b books the chosen offer."""

    BINDINGS = [Binding("b", "book_offer", "Book offer"), Binding("f5", "load", "Refresh")]

    def __init__(self) -> None:
        super().__init__()
        self.offers: list = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(" Offers: freed slots that fit a waiting patient (best first)", classes="panel-title")
            yield DataTable(id="offers", cursor_type="row")
            yield Static(" Waitlist", classes="panel-title")
            yield DataTable(id="entries", cursor_type="row")
            yield Static("b book the highlighted offer · Esc back", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#offers", DataTable).add_columns(
            "When", "Patient", "Type", "Provider", "Location", "Waiting since"
        )
        self.query_one("#entries", DataTable).add_columns("#", "Patient", "Type", "Provider", "Window", "Note")
        self.query_one("#offers", DataTable).focus()
        self.action_load()

    def action_load(self) -> None:
        from hpms.services.scheduling import waitlist

        def done(result) -> None:
            offers, entries = result
            self.offers = offers
            t = self.query_one("#offers", DataTable)
            t.clear()
            for o in offers:
                t.add_row(
                    f"{o.start:%a %d %b %H:%M}",
                    o.patient,
                    o.type,
                    o.provider,
                    o.location,
                    f"{o.waiting_since:%Y-%m-%d}",
                )
            e = self.query_one("#entries", DataTable)
            e.clear()
            for w in entries:
                window = f"{w.earliest or ''}..{w.latest or ''}" if (w.earliest or w.latest) else "any time"
                e.add_row(str(w.id), w.patient, w.type, w.provider or "any", window, w.note or "")

        scheduler(self).service(lambda ctx: (waitlist.offers(ctx), waitlist.list_entries(ctx)), done=done)

    def action_book_offer(self) -> None:
        from hpms.services.scheduling import waitlist

        t = self.query_one("#offers", DataTable)
        if not self.offers or t.cursor_row is None or t.cursor_row >= len(self.offers):
            self.app.notify("no offer chosen", severity="warning")
            return
        offer = self.offers[t.cursor_row]

        def done(result) -> None:
            a = result.booked[0]
            self.app.notify(f"booked #{a.id} {a.start:%a %d %b %H:%M} {a.patient}")
            self.action_load()

        scheduler(self).service(
            waitlist.fill, offer.entry_id, slot=offer.slot_id, done=done, failed=lambda _e: self.action_load()
        )


# the communication log's icons: a message by its state, a reply, a staff entry by its kind
# (plain symbols one cell wide, like the grid's markers)
COMM_STATE_ICON = {
    "sent": "✓",
    "delivered": "✓",
    "failed": "✗",
    "queued": "…",
    "sending": "…",
    "unknown": "?",
    "skipped": "–",
    "cancelled": "–",
}
COMM_KIND_ICON = {"call": "☎", "letter": "✉", "note": "✎", "visit": "•"}
REPLY_ICON = "←"


def comm_icon(entry: Any) -> str:
    """The icon of one communication log entry (hpms.services.messages.comms.LogEntry)."""
    if entry.source == "reply":
        return REPLY_ICON
    if entry.source == "staff":
        return COMM_KIND_ICON.get(entry.kind, "•")
    return COMM_STATE_ICON.get(entry.state or "", "•")


class PatientScreen(Panel):
    """Demographics, coverage, upcoming and past visits, and the communication log (a adds a
    call or a note to it)."""

    BINDINGS = [Binding("a", "add_entry", "Add call/note")]
    LOG_LIMIT = 30  # the newest entries of the communication log shown

    def __init__(self, patient_id: int) -> None:
        super().__init__()
        self.patient_id = patient_id
        self.mrn: str | None = None
        self.zone = "UTC"

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("", id="demographics")
            yield Static(" Coverage", classes="panel-title")
            yield Static("", id="coverage")
            yield Static(" Upcoming visits", classes="panel-title")
            yield DataTable(id="upcoming", cursor_type="row")
            yield Static(" Past visits", classes="panel-title")
            yield DataTable(id="past", cursor_type="row")
            yield Static(" Communication log (newest first)", classes="panel-title")
            yield DataTable(id="comms", cursor_type="row")
            yield Static("", id="comms-note", classes="hint")
            yield Static("a add a call or a note · Esc back", classes="hint")

    def on_mount(self) -> None:
        from hpms.services.scheduling import schedule_view

        for tid in ("#upcoming", "#past"):
            self.query_one(tid, DataTable).add_columns("When", "Provider", "Type", "Status", "Location")
        self.query_one("#comms", DataTable).add_columns("", "When", "What", "Way", "State", "Summary", "By")

        def done(d) -> None:
            p = d["patient"]
            self.mrn, self.zone = p.mrn, d["zone"]
            self.show_log(d["comms"])
            lines = [
                f" {p.last_name}, {p.first_name}"
                + (f" ({p.preferred_name})" if p.preferred_name else "")
                + f" · MRN {p.mrn}",
                f" Born {p.dob} · {p.sex_at_birth or '-'} · phone {p.phone or '-'} · {p.email or '-'}",
                f" {', '.join(x for x in (p.address_line1, p.city, p.state, p.postal_code) if x) or 'no address'}",
            ]
            self.query_one("#demographics", Static).update("\n".join(lines))
            cov = d["coverage"]
            lines = [
                f" {c.priority}: {c.payer_name} · member {c.member_id} · from {c.valid_from or '-'}" for c in cov
            ] or [" none on file"]
            elig = d.get("eligibility")
            if elig is not None:
                lines.append(
                    f" eligibility: {elig.text}" + (f" (for {elig.service_date})" if elig.service_date else "")
                )
            self.query_one("#coverage", Static).update("\n".join(lines))
            for tid, rows in (("#upcoming", d["upcoming"]), ("#past", d["past"])):
                t = self.query_one(tid, DataTable)
                for v in rows:
                    t.add_row(
                        f"{v.start:%a %d %b %Y %H:%M}",
                        v.provider,
                        v.type,
                        f"{STATUS_MARK.get(v.status, '')} {v.status.replace('_', ' ')}",
                        v.location,
                    )

        scheduler(self).service(schedule_view.patient_details, self.patient_id, comms_limit=self.LOG_LIMIT, done=done)

    def show_log(self, entries: list | None) -> None:
        from zoneinfo import ZoneInfo

        t = self.query_one("#comms", DataTable)
        t.clear()
        note = self.query_one("#comms-note", Static)
        if entries is None:
            note.update(" not shown: your role does not read messages")
            return
        zone = ZoneInfo(self.zone)
        for e in entries:
            t.add_row(
                comm_icon(e),
                f"{e.at.astimezone(zone):%a %d %b %Y %H:%M}",
                e.kind,
                {"in": "from", "out": "to"}.get(e.direction, ""),
                (e.state or "").replace("_", " "),
                e.summary,
                e.by or "",
            )
        if not entries:
            note.update(" nothing yet")
        elif len(entries) >= self.LOG_LIMIT:
            note.update(f" the newest {self.LOG_LIMIT} shown")
        else:
            note.update("")

    def action_add_entry(self) -> None:
        from hpms.tui.screens.dialogs import CommEntryDialog

        if self.mrn is None:
            return

        def added(entry) -> None:
            if entry is None:
                return
            from hpms.services.messages import comms

            self.app.notify(f"{entry.kind} recorded")
            scheduler(self).service(comms.log, self.mrn, limit=self.LOG_LIMIT, done=self.show_log)

        self.app.push_screen(CommEntryDialog(self.mrn), added)


HELP = """\
 Day view
   ← ↓ ↑ → / h j k l  move        PgUp PgDn Home End  scroll
   t  today       [ ]  previous / next day     g  go to date
   L  location    o  providers / rooms columns
   + -  finer / coarser time step (5, 10, 15, 30 min)
   F5  refresh now (changes by others show within 2 s anyway)

 Appointments
   Enter / n  book the free cell, or open the appointment under the cursor
   c  confirm     i  check in     m  to room     e  complete (end)
   N  no-show     x  cancel (asks the reason)     p  patient details
   r  reschedule: move with the arrows, Enter confirms, Esc aborts

 Panels
   w  the provider's week     f  patient flow board
   s  find a slot             v  waitlist and offers
   d  dashboard: today's figures and two weeks of charts
   R  portal requests: registrations and pre-visit forms to accept or reject
   I  interfaces: HL7 messages not delivered (r resends) and messages
      received to review (a apply to an MRN, n as new, x dismiss)

 In the booking dialog
   type to search patients (name, DOB, phone, MRN); Enter goes to the
   results, Enter picks one; r in the results or Ctrl+N registers a new
   patient; Ctrl+S books; Esc cancels

 Markers:  · booked  ✓ confirmed  A arrived  R in room  ■ completed  N no-show
   ← confirmed by the patient's reply (✓: confirmed otherwise, as by phone)
   ! not confirmed and the latest reminder failed (in yellow; · not yet confirmed)

 Patient details (p): the communication log, newest first
   ✓ sent / delivered  ✗ failed  … queued / sending  ? unknown
   – skipped / cancelled  ← the patient's reply  ☎ call  ✉ letter
   ✎ note  • visit          a adds a call or a note

 q quits · ? this help · Esc closes it
"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide help"):
            yield Label("Keys", classes="dialog-title")
            yield Static(HELP)

    def action_close(self) -> None:
        self.dismiss(None)


__all__ = ["FindSlotScreen", "FlowScreen", "HelpScreen", "PatientScreen", "WaitlistScreen", "WeekScreen", "Horizontal"]


class DashboardScreen(Panel):
    """Today's figures at the location and two small charts of the last two weeks."""

    def __init__(self, location_id: int, day: dt.date) -> None:
        super().__init__()
        self.location_id, self.day = location_id, day

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        with Vertical():
            yield Static("", id="title", classes="panel-title")
            yield Static("", id="kpis")
            with Horizontal(id="charts"):
                yield PlotextPlot(id="volume")
                yield PlotextPlot(id="noshows")
            yield Static("refreshes every 10 s · Esc back", classes="hint")

    def on_mount(self) -> None:
        self.load()
        self.set_interval(10.0, self.load)

    def load(self) -> None:
        from textual_plotext import PlotextPlot

        from hpms.services.scheduling import schedule_view

        def done(d) -> None:
            k = d["kpis"]
            util = "-" if k["utilization_pct"] is None else f"{k['utilization_pct']:.0f}%"
            self.query_one("#title", Static).update(f" Dashboard · {d['location']} · {d['day']:%a %d %b %Y}")
            self.query_one("#kpis", Static).update(
                f" Appointments {k['appointments']}   waiting {k['waiting']}   in room {k['in_room']}   "
                f"completed {k['completed']}   no-shows {k['no_shows']}   cancelled {k['cancelled']}   "
                f"utilization {util}"
            )
            labels = [f"{s['day']:%d}" for s in d["series"]]
            xs: list[float] = list(range(len(labels)))
            for wid, key, title in (
                ("#volume", "booked", "Appointments per day"),
                ("#noshows", "no_show", "No-shows per day"),
            ):
                plot = self.query_one(wid, PlotextPlot)
                plt = plot.plt
                plt.clear_data()
                plt.clear_figure()
                plt.bar(xs, [s[key] for s in d["series"]])
                plt.xticks(xs[:: max(1, len(xs) // 7)], labels[:: max(1, len(xs) // 7)])
                plt.title(title)
                plot.refresh()

        scheduler(self).service(
            schedule_view.dashboard, location=self.location_id, day=self.day, done=done, group="dashboard"
        )
