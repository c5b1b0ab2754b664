"""Modal dialogs: a line of text, a choice, booking (with patient search and registration,
and the patients on file a registration likely duplicates), an appointment's actions, and an
entry of a patient's communication log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from hpms.tui import errors
from hpms.tui.screens.base import scheduler

if TYPE_CHECKING:
    from hpms.services.people.patients import LikelyDuplicate


class TextDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", value: str = "") -> None:
        super().__init__()
        self.title_text, self.placeholder, self.value = title, placeholder, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(value=self.value, placeholder=self.placeholder, id="text")
            yield Static("Enter to accept · Esc to cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceDialog(ModalScreen):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, options: list[tuple[object, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.options = options

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield OptionList(*[Option(label) for _, label in self.options])
            yield Static("Enter to choose · Esc to cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.options[event.option_index][0])

    def action_cancel(self) -> None:
        self.dismiss(None)


class RegisterDialog(ModalScreen):
    """A short registration form; returns the new patient (PatientOut) or None. The inputs
    have the ids of the registration's fields, so an error is shown at the one at fault. A
    likely duplicate opens DuplicateDialog; choosing the patient on file there returns that
    one (a PatientSummary, `existing` set)."""

    FIELDS = ("last_name", "first_name", "dob", "phone")

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, name_hint: str = "") -> None:
        super().__init__()
        words = name_hint.replace(",", " ").split()
        self.last = words[0].title() if words else ""
        self.first = words[1].title() if len(words) > 1 else ""
        self.existing = False  # the result is a patient on file, chosen instead of a duplicate

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("New patient", classes="dialog-title")
            yield Input(value=self.last, placeholder="last name", id="last_name")
            yield Input(value=self.first, placeholder="first name", id="first_name")
            yield Input(placeholder="date of birth YYYY-MM-DD", id="dob")
            yield Input(placeholder="phone (optional)", id="phone")
            yield Static("", id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Register", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#last_name" if not self.last else "#dob", Input).focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        if event.input.id == "phone":
            self.action_save()
        else:
            self.focus_next()

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        self._register(allow_duplicate=False)

    def _register(self, *, allow_duplicate: bool) -> None:
        from hpms.services.people import patients

        data = {k: self.query_one(f"#{k}", Input).value for k in self.FIELDS}
        errors.clear(self)

        def failed(exc: Exception) -> None:
            if isinstance(exc, patients.LikelyDuplicate):
                self.query_one("#error", Static).update("")
                self.app.push_screen(DuplicateDialog(exc), self._duplicate_answered)
                return
            errors.show(self, exc, self.query_one("#error", Static))

        scheduler(self).service(
            patients.register, allow_duplicate=allow_duplicate, done=self.dismiss, failed=failed, **data
        )

    def _duplicate_answered(self, answer: object) -> None:
        """The candidates' dialog closed: register all the same, take the patient on file
        (the form's result, as a registration's would be), or back to the form."""
        if answer == DuplicateDialog.REGISTER:
            self._register(allow_duplicate=True)
        elif answer is not None:
            self.existing = True
            self.dismiss(answer)
        else:
            self.query_one("#error", Static).update("Not registered: a likely duplicate.")
            self.query_one("#last_name", Input).focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class DuplicateDialog(ModalScreen[object]):
    """The patients on file a registration likely duplicates, and why. Returns the candidate
    chosen (a PatientSummary: use that patient), REGISTER (register a new one all the same)
    or None (back to the form). The candidates are the service's refusal's."""

    REGISTER: Literal["register"] = "register"

    BINDINGS = [
        Binding("escape", "cancel", "Back"),
        Binding("a", "register", "Register anyway"),
        Binding("u", "use", "Use this patient"),
    ]

    def __init__(self, refused: LikelyDuplicate) -> None:
        super().__init__()
        self.refused = refused
        self.candidates = [c.patient for c in refused.candidates]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide duplicates"):
            yield Label("Likely already on file", classes="dialog-title")
            yield Static(errors.say(self.refused).text, id="message")
            yield OptionList(
                *[
                    Option(
                        f"{c.patient.last_name}, {c.patient.first_name} · born {c.patient.dob} · "
                        f"MRN {c.patient.mrn}"
                        + (f" · {c.patient.phone}" if c.patient.phone else "")
                        + f" · {'; '.join(c.reasons)}"
                    )
                    for c in self.refused.candidates
                ],
                id="candidates",
            )
            yield Static("Enter or u uses the highlighted patient · a registers anyway · Esc back", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Use this patient", variant="primary", id="use")
                yield Button("Register anyway", id="register")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        lst = self.query_one("#candidates", OptionList)
        lst.highlighted = 0
        lst.focus()

    @on(OptionList.OptionSelected, "#candidates")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.candidates[event.option_index])

    @on(Button.Pressed, "#use")
    def action_use(self) -> None:
        index = self.query_one("#candidates", OptionList).highlighted
        self.dismiss(self.candidates[index if index is not None else 0])

    @on(Button.Pressed, "#register")
    def action_register(self) -> None:
        self.dismiss(self.REGISTER)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class BookingDialog(ModalScreen):
    """Book at a given provider and time: search a patient as you type (name, DOB, phone,
    MRN), pick a type, a reason and (when the type needs one) a room. The service checks the
    slot on save; a conflict is shown here and the day view reloads when the dialog closes.
    The inputs have the ids of the booking's fields (patient, type, reason, room), so an
    error is shown at the one at fault; the slot (time, provider, location) is in the title."""

    SLOT = ("at", "provider", "location")

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+n", "register", "New patient"),
    ]

    def __init__(self, *, provider_id: int, provider_label: str, location_id: int, at: str) -> None:
        super().__init__()
        self.provider_id = provider_id
        self.provider_label = provider_label
        self.location_id = location_id
        self.at = at
        self.patient = None  # PatientSummary / PatientOut
        self.types: list = []
        self.rooms: list = []
        self._results: list = []
        self._query_seq = 0

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Book {self.at} · {self.provider_label}", classes="dialog-title")
            yield Input(placeholder="patient: name, DOB, phone or MRN", id="patient")
            yield OptionList(id="results")
            yield Static("No patient chosen · r in the list or Ctrl+N registers a new one", id="chosen")
            yield Select([], prompt="appointment type", id="type")
            yield Input(placeholder="reason (optional)", id="reason")
            yield Select([], prompt="room (if the type needs one)", id="room")
            yield Static("", id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Book", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        from hpms.services.scheduling import resources

        self.query_one("#patient", Input).focus()

        def loaded(result) -> None:
            self.types, self.rooms = result
            self.query_one("#type", Select).set_options(
                [(f"{t.name} ({t.duration_min} min)", t.id) for t in self.types]
            )
            self.query_one("#room", Select).set_options(
                [(r.name, r.id) for r in self.rooms if r.location_id == self.location_id]
            )

        scheduler(self).service(lambda ctx: (resources.list_types(ctx), resources.list_rooms(ctx)), done=loaded)

    @on(Input.Changed, "#patient")
    def _search(self, event: Input.Changed) -> None:
        from hpms.services.people import patients

        text = event.value.strip()
        self._query_seq += 1
        seq = self._query_seq
        if len(text) < 2:
            self.query_one("#results", OptionList).clear_options()
            return

        def done(rows) -> None:
            if seq != self._query_seq:
                return  # an older query answered late
            self._results = rows
            lst = self.query_one("#results", OptionList)
            lst.clear_options()
            lst.add_options(
                [
                    Option(
                        f"{p.last_name}, {p.first_name} · {p.dob} · MRN {p.mrn}" + (f" · {p.phone}" if p.phone else ""),
                    )
                    for p in rows
                ]
            )

        scheduler(self).service(patients.search, text, limit=20, done=done, failed=lambda _e: None, group="search")

    @on(Input.Submitted, "#patient")
    def _to_results(self, _event) -> None:
        lst = self.query_one("#results", OptionList)
        if lst.option_count:
            lst.focus()
            lst.highlighted = 0

    @on(OptionList.OptionSelected, "#results")
    def _pick(self, event: OptionList.OptionSelected) -> None:
        self.choose(self._results[event.option_index])

    def choose(self, patient) -> None:
        self.patient = patient
        errors.clear(self)
        self.query_one("#chosen", Static).update(
            f"Patient: {patient.last_name}, {patient.first_name} · {patient.dob} · MRN {patient.mrn}"
        )
        self.query_one("#type", Select).focus()

    def on_key(self, event) -> None:
        if event.key == "r" and self.focused is self.query_one("#results", OptionList):
            event.stop()
            self.action_register()

    def action_register(self) -> None:
        form = RegisterDialog(self.query_one("#patient", Input).value)

        def registered(p) -> None:
            if p is not None:
                if not form.existing:
                    self.app.notify(f"registered {p.first_name} {p.last_name}, MRN {p.mrn}")
                self.choose(p)

        self.app.push_screen(form, registered)

    @on(Select.Changed, "#type")
    def _type(self, event: Select.Changed) -> None:
        errors.clear(self)
        t = next((t for t in self.types if t.id == event.value), None)
        if t is not None and t.needs_room:
            self.query_one("#room", Select).focus()
        elif t is not None:
            self.query_one("#reason", Input).focus()

    @on(Select.Changed, "#room")
    def _room(self, _event: Select.Changed) -> None:
        self.query_one("#reason", Input).focus()

    @on(Input.Submitted, "#reason")
    def _reason_done(self, _event) -> None:
        self.action_save()

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        from hpms.errors import ConflictError, ValidationError
        from hpms.services.scheduling import appointments

        status = self.query_one("#error", Static)
        if self.patient is None:
            errors.show(self, ValidationError("patient", "choose a patient first"), status)
            return
        type_select = self.query_one("#type", Select)
        type_id = type_select.value
        if type_select.is_blank() or type_id is None:
            errors.show(self, ValidationError("type", "choose an appointment type"), status)
            return
        room_select = self.query_one("#room", Select)
        room = None if room_select.is_blank() else room_select.value
        reason = self.query_one("#reason", Input).value.strip() or None
        errors.clear(self)
        status.update("booking…")

        def failed(exc: Exception) -> None:
            if not isinstance(exc, ConflictError):
                errors.show(self, exc, status, shown=self.SLOT)
                return
            suffix = ". Esc goes back to the day view, refreshed."
            errors.show(self, exc, status, shown=self.SLOT, prefix="Taken: ", suffix=suffix)

        scheduler(self).service(
            appointments.book,
            patient=self.patient.mrn,
            provider=self.provider_id,
            type=type_id,
            at=self.at,
            location=self.location_id,
            room=room,
            reason=reason,
            done=self.dismiss,
            failed=failed,
        )

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class AppointmentDialog(ModalScreen):
    """An appointment's details and its actions (single keys as in the day view)."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("c", "pick('confirm')", "Confirm"),
        Binding("i", "pick('checkin')", "Check in"),
        Binding("m", "pick('room')", "To room"),
        Binding("e", "pick('complete')", "Complete"),
        Binding("N", "pick('noshow')", "No-show"),
        Binding("x", "pick('cancel')", "Cancel visit"),
        Binding("r", "pick('move')", "Reschedule"),
        Binding("p", "pick('patient')", "Patient"),
    ]

    def __init__(self, block) -> None:
        super().__init__()
        self.block = block

    def compose(self) -> ComposeResult:
        b = self.block
        lines = [
            f"#{b.id}  {b.start:%a %d %b %Y %H:%M}-{b.end:%H:%M}",
            f"Patient   {b.patient} (MRN {b.mrn})",
            f"Provider  {b.provider}",
            f"Type      {b.type}",
            f"Status    {b.status.replace('_', ' ')}",
            f"Room      {b.room or '-'}",
            f"Reason    {b.reason or '-'}",
        ]
        if b.eligibility:
            lines.append(f"Insurance {b.eligibility}")
        if b.arrived_at:
            lines.append(f"Arrived   {b.arrived_at.astimezone(b.start.tzinfo):%H:%M}")
        with Vertical(classes="dialog wide"):
            yield Label("Appointment", classes="dialog-title")
            yield Static("\n".join(lines))
            yield Static(
                "c confirm · i check in · m to room · e complete (end) · N no-show · x cancel · "
                "r reschedule · p patient · Esc close",
                classes="hint",
            )

    def action_pick(self, action: str) -> None:
        self.dismiss(action)

    def action_close(self) -> None:
        self.dismiss(None)


class CommEntryDialog(ModalScreen):
    """Record a call, a note or a letter in a patient's communication log; returns the new
    entry (hpms.services.messages.comms.LogEntry) or None. The inputs have the ids of the
    service's fields, so an error is shown at the one at fault."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]
    KINDS = (("call", "call"), ("note", "note"), ("letter", "letter"))
    DIRECTIONS = (("the patient reached us", "in"), ("we reached the patient", "out"), ("neither", "none"))

    def __init__(self, mrn: str) -> None:
        super().__init__()
        self.mrn = mrn

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Add to the communication log · MRN {self.mrn}", classes="dialog-title")
            yield Select(self.KINDS, value="call", allow_blank=False, id="kind")
            yield Select(self.DIRECTIONS, value="in", allow_blank=False, id="direction")
            yield Input(placeholder="what was said or done", id="text")
            yield Input(placeholder="when, local time (empty: now)", id="at")
            yield Static("", id="error", classes="error")
            yield Static("Ctrl+S saves · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#text", Input).focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        if event.input.id == "at":
            self.action_save()
        else:
            self.focus_next()

    def action_save(self) -> None:
        from hpms.services.messages import comms

        errors.clear(self)
        kind, direction = self.query_one("#kind", Select).value, self.query_one("#direction", Select).value
        scheduler(self).service(
            comms.add,
            self.mrn,
            kind=str(kind),
            direction=str(direction),
            text=self.query_one("#text", Input).value,
            at=self.query_one("#at", Input).value or None,
            done=self.dismiss,
            failed=lambda exc: errors.show(self, exc, self.query_one("#error", Static)),
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
