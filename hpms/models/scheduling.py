"""Providers, rooms, appointment types, working hours, time off, appointments and the waitlist.

Times of appointments are stored in UTC; working hours and time off are wall-clock rules read
in the location's time zone, so a change of clocks moves neither hours nor bookings.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hpms.models.base import DEFERRED, OrgField, UTCField

STATUSES = ("booked", "confirmed", "arrived", "in_room", "completed", "no_show", "cancelled")
# Statuses that hold their time: the overlap guards (exclusion constraints, triggers) and the
# slot search ignore the others.
FREE_STATUSES = ("cancelled", "no_show")
BLOCKING_STATUSES = tuple(s for s in STATUSES if s not in FREE_STATUSES)
ROOM_KINDS = ("exam", "procedure", "equipment", "other")
WAITLIST_STATUSES = ("open", "filled", "removed")


class Provider(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("org_id", "npi", name="uq_provider_npi"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    credentials: str | None = Field(default=None, max_length=32)
    npi: str | None = Field(default=None, max_length=10)
    taxonomy: str | None = Field(default=None, max_length=10)
    user_id: int | None = Field(default=None, foreign_key="hpms_user.id")
    color: str | None = Field(default=None, max_length=16)
    active: bool = True
    version: int = 1
    created_at: dt.datetime = UTCField()
    updated_at: dt.datetime = UTCField()


class ProviderLocation(SQLModel, table=True):
    __tablename__ = "provider_location"
    provider_id: int = Field(foreign_key="provider.id", primary_key=True)
    location_id: int = Field(foreign_key="location.id", primary_key=True)


class Room(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("location_id", "name", name="uq_room_name"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    location_id: int = Field(foreign_key="location.id")
    name: str = Field(max_length=100)
    kind: str = Field(default="exam", max_length=16)
    active: bool = True
    created_at: dt.datetime = UTCField()


class AppointmentType(SQLModel, table=True):
    __tablename__ = "appointment_type"
    __table_args__ = (sa.UniqueConstraint("org_id", "name", name="uq_appointment_type_name"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    name: str = Field(max_length=100)
    duration_min: int
    buffer_min: int = 0
    color: str | None = Field(default=None, max_length=16)
    self_bookable: bool = False
    needs_room: bool = False
    default_code: str | None = Field(default=None, max_length=16)
    active: bool = True
    created_at: dt.datetime = UTCField()


class WorkingHours(SQLModel, table=True):
    """A weekly wall-clock rule: on `days` (MO,TU,...), or on the dates of `rrule` (counted from
    effective_from), from start_time to end_time in the location's zone."""

    __tablename__ = "working_hours"
    __table_args__ = (sa.Index("ix_working_hours_provider", "provider_id", "location_id"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    provider_id: int = Field(foreign_key="provider.id")
    location_id: int = Field(foreign_key="location.id")
    days: str = Field(max_length=32)
    start_time: dt.time
    end_time: dt.time
    effective_from: dt.date
    effective_to: dt.date | None = None
    rrule: str | None = Field(default=None, max_length=500)
    created_at: dt.datetime = UTCField()


class TimeOff(SQLModel, table=True):
    """Time off in wall-clock time: a provider's (provider_id set) or a holiday of the practice
    (provider_id NULL), at one location or at all of them (location_id NULL)."""

    __tablename__ = "time_off"
    __table_args__ = (sa.Index("ix_time_off_provider", "org_id", "provider_id", "starts_local"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    provider_id: int | None = Field(default=None, foreign_key="provider.id")
    location_id: int | None = Field(default=None, foreign_key="location.id")
    # naive on purpose: wall-clock time, resolved in each location's zone
    starts_local: dt.datetime = Field(sa_type=sa.DateTime(timezone=False))
    ends_local: dt.datetime = Field(sa_type=sa.DateTime(timezone=False))
    reason: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = UTCField()


class AppointmentSeries(SQLModel, table=True):
    __tablename__ = "appointment_series"
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    rrule: str = Field(max_length=500)
    tz: str = Field(max_length=64)
    created_at: dt.datetime = UTCField()


class Appointment(SQLModel, table=True):
    """One visit. `block_end_utc` is the end plus the type's buffer: the time the provider (and
    room) is held. The database refuses overlapping blocking appointments of one provider, one
    room, or one patient (see migration 0002)."""

    __table_args__ = (
        sa.Index("ix_appointment_provider_start", "provider_id", "start_utc"),
        sa.Index("ix_appointment_room_start", "room_id", "start_utc"),
        sa.Index("ix_appointment_patient_start", "patient_id", "start_utc"),
        sa.Index("ix_appointment_location_start", "location_id", "start_utc"),
        sa.Index("ix_appointment_series", "series_id", "series_index"),
        sa.CheckConstraint("end_utc > start_utc", name="ck_appointment_end_after_start"),
        sa.CheckConstraint("block_end_utc >= end_utc", name="ck_appointment_block_end"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    patient_id: int = Field(foreign_key="patient.id")
    provider_id: int = Field(foreign_key="provider.id")
    location_id: int = Field(foreign_key="location.id")
    room_id: int | None = Field(default=None, foreign_key="room.id")
    type_id: int = Field(foreign_key="appointment_type.id")
    series_id: int | None = Field(default=None, foreign_key="appointment_series.id")
    series_index: int | None = None
    start_utc: dt.datetime = UTCField()
    end_utc: dt.datetime = UTCField()
    block_end_utc: dt.datetime = UTCField()
    status: str = Field(default="booked", max_length=16)
    reason: str | None = Field(default=None, max_length=500)
    override: bool = False
    late_cancel: bool = False
    cancel_reason: str | None = Field(default=None, max_length=500)
    booked_by: int | None = Field(default=None, foreign_key="hpms_user.id")
    booked_at: dt.datetime = UTCField()
    confirmed_at: dt.datetime | None = UTCField(nullable=True)
    arrived_at: dt.datetime | None = UTCField(nullable=True)
    roomed_at: dt.datetime | None = UTCField(nullable=True)
    completed_at: dt.datetime | None = UTCField(nullable=True)
    no_show_at: dt.datetime | None = UTCField(nullable=True)
    cancelled_at: dt.datetime | None = UTCField(nullable=True)
    version: int = 1
    updated_at: dt.datetime = UTCField()


class FreedSlot(SQLModel, table=True):
    """Time given back by a cancellation or a move: matched against the waitlist."""

    __tablename__ = "freed_slot"
    __table_args__ = (sa.Index("ix_freed_slot_open", "org_id", "status", "start_utc"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    provider_id: int = Field(foreign_key="provider.id")
    location_id: int = Field(foreign_key="location.id")
    start_utc: dt.datetime = UTCField()
    end_utc: dt.datetime = UTCField()
    appointment_id: int | None = Field(default=None, foreign_key="appointment.id")
    status: str = Field(default="open", max_length=16)
    freed_at: dt.datetime = UTCField()


class WaitlistEntry(SQLModel, table=True):
    __tablename__ = "waitlist_entry"
    __table_args__ = (sa.Index("ix_waitlist_open", "org_id", "status", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    patient_id: int = Field(foreign_key="patient.id")
    type_id: int = Field(foreign_key="appointment_type.id")
    provider_id: int | None = Field(default=None, foreign_key="provider.id")
    location_id: int | None = Field(default=None, foreign_key="location.id")
    earliest: dt.date | None = None
    latest: dt.date | None = None
    note: str | None = Field(default=None, max_length=500)
    status: str = Field(default="open", max_length=16)
    appointment_id: int | None = Field(default=None, foreign_key="appointment.id")
    created_at: dt.datetime = UTCField()


# ---- output models -------------------------------------------------------------------------


class ProviderOut(SQLModel):
    model_config = DEFERRED
    id: int
    name: str
    first_name: str
    last_name: str
    credentials: str | None
    npi: str | None
    taxonomy: str | None
    username: str | None
    locations: list[str]
    color: str | None
    active: bool
    version: int


class RoomOut(SQLModel):
    model_config = DEFERRED
    id: int
    location: str
    location_id: int
    name: str
    kind: str
    active: bool


class AppointmentTypeOut(SQLModel):
    model_config = DEFERRED
    id: int
    name: str
    duration_min: int
    buffer_min: int
    color: str | None
    self_bookable: bool
    needs_room: bool
    default_code: str | None
    active: bool


class WorkingHoursOut(SQLModel):
    model_config = DEFERRED
    id: int
    provider_id: int
    provider: str
    location: str
    days: str
    start_time: str
    end_time: str
    effective_from: dt.date
    effective_to: dt.date | None
    rrule: str | None


class TimeOffOut(SQLModel):
    model_config = DEFERRED
    id: int
    provider_id: int | None
    provider: str | None
    location: str | None
    starts: dt.datetime
    ends: dt.datetime
    reason: str | None


class AppointmentOut(SQLModel):
    """An appointment with names resolved; times in the location's zone (ISO with offset)."""

    model_config = DEFERRED
    id: int
    status: str
    start: dt.datetime
    end: dt.datetime
    duration_min: int
    patient_id: int
    patient: str
    mrn: str
    provider_id: int
    provider: str
    location_id: int
    location: str
    tz: str
    room_id: int | None
    room: str | None
    type_id: int
    type: str
    reason: str | None
    series_id: int | None
    series_index: int | None
    override: bool
    late_cancel: bool
    cancel_reason: str | None
    booked_at: dt.datetime
    confirmed_at: dt.datetime | None
    arrived_at: dt.datetime | None
    roomed_at: dt.datetime | None
    completed_at: dt.datetime | None
    no_show_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    version: int


class SlotOut(SQLModel):
    model_config = DEFERRED
    start: dt.datetime
    end: dt.datetime
    provider_id: int
    provider: str
    location_id: int
    location: str
    room_id: int | None
    room: str | None


class WaitlistOut(SQLModel):
    model_config = DEFERRED
    id: int
    patient_id: int
    patient: str
    type: str
    provider: str | None
    location: str | None
    earliest: dt.date | None
    latest: dt.date | None
    note: str | None
    status: str
    appointment_id: int | None
    created_at: dt.datetime


class OfferOut(SQLModel):
    model_config = DEFERRED
    entry_id: int
    slot_id: int
    patient_id: int
    patient: str
    type: str
    start: dt.datetime
    end: dt.datetime
    provider_id: int
    provider: str
    location: str
    waiting_since: dt.datetime
