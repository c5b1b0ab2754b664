"""Constraint violations the database reports when another writer got there first, as the
conflicts they are (not crashes)."""

from __future__ import annotations

import sqlalchemy as sa

from hpms.errors import Action, ConflictError

# exclusion constraints and triggers of the appointment table (migration 0002) -> who was taken
_OVERLAPS = (
    ("ex_appointment_provider", "the provider"),
    ("ex_appointment_room", "the room"),
    ("ex_appointment_patient", "the patient"),
)


def overlap_error(exc: sa.exc.IntegrityError) -> ConflictError | None:
    """The database refused an overlapping booking another writer committed first."""
    text = str(exc.orig)
    for name, what in _OVERLAPS:
        if name in text:
            return ConflictError(
                f"{what} was booked at that time by someone else just now",
                action=Action("appointments", "find-slot", purpose="find another slot with"),
            )
    return None


def integrity_conflict(exc: sa.exc.IntegrityError) -> ConflictError:
    """Any refused write as a conflict: an overlap named, else the constraint's own words."""
    err = overlap_error(exc)
    if err is not None:
        return err
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "constraint violated"
    return ConflictError(f"the change conflicts with data already stored ({reason})", hint="reload and try again")
