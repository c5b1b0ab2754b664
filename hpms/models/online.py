"""Online booking by patients: the practice's policy per appointment type (with per-provider
overrides), its cancellation window, and the record of which visits were booked online."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hpms.models.base import OrgField, UTCField


class OnlineBookingPolicy(SQLModel, table=True):
    """Whether and how patients may book a type online. The row without a provider is the
    type's; a row with a provider overrides it for that provider, field by field (NULL: as the
    type's row says). A type without a row of its own is closed to online booking."""

    __tablename__ = "online_booking_policy"
    __table_args__ = (
        # NULLs are distinct in a unique constraint: the type's own row is kept unique in the service
        sa.UniqueConstraint("org_id", "type_id", "provider_id", name="uq_online_booking_policy"),
        sa.CheckConstraint("lead_minutes IS NULL OR lead_minutes >= 0", name="ck_online_policy_lead"),
        sa.CheckConstraint("horizon_days IS NULL OR horizon_days >= 1", name="ck_online_policy_horizon"),
        sa.CheckConstraint("daily_cap IS NULL OR daily_cap >= 0", name="ck_online_policy_cap"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    type_id: int = Field(foreign_key="appointment_type.id")
    provider_id: int | None = Field(default=None, foreign_key="provider.id")
    enabled: bool | None = None
    lead_minutes: int | None = None  # no online booking sooner than this before the visit
    horizon_days: int | None = None  # nor further ahead than this
    daily_cap: int | None = None  # online bookings per provider per local day; 0: no cap
    new_patients_allowed: bool | None = None
    updated_at: dt.datetime = UTCField()


class OnlineBookingProfile(SQLModel, table=True):
    """The practice's rules for patients' own changes: no online cancel or move within
    `cancel_window_hours` of the visit."""

    __tablename__ = "online_booking_profile"
    org_id: int = Field(foreign_key="organization.id", primary_key=True)
    cancel_window_hours: int = Field(default=24, sa_column_kwargs={"server_default": "24"})
    updated_at: dt.datetime = UTCField()


class OnlineBooking(SQLModel, table=True):
    """A visit a patient booked online: the daily cap counts those still holding their time on
    the provider's day (wherever the visit has since moved)."""

    __tablename__ = "online_booking"
    appointment_id: int = Field(foreign_key="appointment.id", primary_key=True)
    org_id: int = OrgField()
    patient_id: int = Field(foreign_key="patient.id")
    booked_at: dt.datetime = UTCField()
