"""How the scheduler says an error: the one place that turns the services' structured errors
(hpms.errors) into what the screen shows. A message goes next to the form input it names (the
inputs of a form have the service fields' names as ids), elsewhere after a readable label of
its field; a hint is shown as it is; a next step is the key that does it here, if there is one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.widget import Widget
from textual.widgets import Input, Select, Static

from hpms.errors import Action, HpmsError

if TYPE_CHECKING:
    from textual.screen import Screen

# Service fields by the words a person reads; any other lower-case field name is shown with
# spaces for underscores, anything else (a CSV column, "HPMS_KEY") as it is.
LABELS = {
    "at": "time",
    "dob": "date of birth",
    "mrn": "MRN",
    "npi": "NPI",
    "ssn": "SSN",
    "type": "appointment type",
    "slot": "freed slot",
    "week_of": "week",
}

# Next steps the scheduler has a key for, by the operation the service names.
KEYS: dict[tuple[str, str], str] = {
    ("appointments", "find-slot"): "press s in the day view to find a free slot",
    ("appointments", "book"): "press n in the day view to book",
    ("appointments", "reschedule"): "press r in the day view to reschedule",
    ("appointments", "cancel"): "press x in the day view to cancel the visit",
    ("appointments", "confirm"): "press c in the day view to confirm",
    ("appointments", "checkin"): "press i in the day view to check in",
    ("appointments", "room"): "press m in the day view to put the patient in a room",
    ("appointments", "complete"): "press e in the day view to complete the visit",
    ("appointments", "noshow"): "press N in the day view to mark a no-show",
    ("patients", "register"): "press Ctrl+N in the booking dialog to register a new patient",
    ("waitlist", "list"): "press v in the day view for the waitlist",
    ("waitlist", "offers"): "press v in the day view for the waitlist and its offers",
    ("waitlist", "fill"): "press v in the day view, then b on an offer",
    ("locations", "list"): "press L in the day view to switch the location",
}

INVALID = "-invalid"  # Textual's class of an input holding an invalid value
MESSAGE = "field-error"  # the class of a message shown under its input


@dataclass(frozen=True, slots=True)
class Said:
    """What to show: `text`, and `field`, the id of the input it belongs next to (None: a
    message of the screen, or a notification)."""

    text: str
    field: str | None = None


def label(field: str) -> str:
    """A field as a person reads it: "date of birth", "last name", "row 3"."""
    if field in LABELS:
        return LABELS[field]
    return field.replace("_", " ") if field.isidentifier() and field.islower() else field


def next_step(action: Action | None) -> str | None:
    """The scheduler's words for an action: the key that does it, else nothing."""
    return None if action is None else KEYS.get((action.noun, action.verb))


def say(exc: BaseException, inputs: Collection[str] = (), *, shown: Collection[str] = ()) -> Said:
    """`exc` as the scheduler says it. `inputs` are the ids of the form inputs on screen (a
    field among them gets no label: the message goes next to its input); `shown`, fields the
    screen shows otherwise (a dialog's title: the slot being booked), also read without one."""
    if not isinstance(exc, HpmsError):
        first = str(exc).strip().splitlines()
        return Said(f"{type(exc).__name__}: {first[0][:300]}" if first else type(exc).__name__)
    at = exc.field if exc.field in inputs else None
    named = exc.field if exc.field and not at and exc.field not in shown else None
    text = f"{label(named)}: {exc.message}" if named else exc.message
    # retry_with names flags of the same request; the scheduler has none, and the hint then
    # says what they do, so both are left out
    parts = [text, *([exc.hint] if exc.hint and not exc.retry_with else []), next_step(exc.action)]
    return Said("; ".join(p for p in parts if p), at)


def _form_input(screen: Screen, field: str | None) -> Widget | None:
    """The input of `screen` whose id is `field` (an Input or a Select), if any."""
    if not field or not field.isidentifier():
        return None
    widget = next(iter(screen.query(f"#{field}")), None)
    return widget if isinstance(widget, Input | Select) else None


def clear(screen: Screen) -> None:
    """Take away the marks and messages `show` left on `screen`'s inputs."""
    for widget in screen.query(f".{INVALID}"):
        widget.remove_class(INVALID)
    screen.query(f".{MESSAGE}").remove()


def show(
    screen: Screen,
    exc: BaseException,
    status: Static,
    *,
    shown: Collection[str] = (),
    prefix: str = "",
    suffix: str = "",
) -> Said:
    """Show `exc` on a form: next to the input at fault (marked and focused) when the screen
    has one of that field's id, else in `status` (`shown` as for `say`; `prefix` and `suffix`
    are the form's own words around it). Earlier marks are cleared."""
    clear(screen)
    inputs = [exc.field] if isinstance(exc, HpmsError) and exc.field and _form_input(screen, exc.field) else []
    said = say(exc, inputs, shown=shown)
    text = f"{prefix}{said.text}{suffix}"
    widget = _form_input(screen, said.field)
    if widget is None:
        status.update(text)
        return said
    status.update("")
    widget.add_class(INVALID)
    widget.focus()
    assert isinstance(widget.parent, Widget)
    widget.parent.mount(Static(text, classes=f"error {MESSAGE}"), after=widget)
    return said
