"""Organization (the practice) and its locations."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from hpms.models.base import DEFERRED, OrgField, UTCField


class Organization(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    is_demo: bool = False
    # Scheduling policy: a cancellation this close to the visit is flagged late; free slots are
    # offered on this grid (minutes past the hour).
    late_cancel_hours: int = Field(default=24, sa_column_kwargs={"server_default": "24"})
    slot_step_min: int = Field(default=15, sa_column_kwargs={"server_default": "15"})
    created_at: dt.datetime = UTCField()


class LocationBase(SQLModel):
    name: str = Field(max_length=200)
    address_line1: str | None = Field(default=None, max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=100)
    state: str | None = Field(default=None, max_length=50)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, max_length=2)
    tz: str = Field(max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    npi: str | None = Field(default=None, max_length=10)
    # CMS place-of-service code of the visits billed from here (11 office, 02 telehealth...)
    place_of_service: str = Field(default="11", max_length=2, sa_column_kwargs={"server_default": "11"})


class Location(LocationBase, table=True):
    __tablename__ = "location"
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    created_at: dt.datetime = UTCField()


class LocationCreate(LocationBase):
    model_config = DEFERRED
    pass


class LocationOut(LocationBase):
    model_config = DEFERRED
    id: int
    created_at: dt.datetime


class OrganizationOut(SQLModel):
    model_config = DEFERRED
    id: int
    name: str
    is_demo: bool
    late_cancel_hours: int = 24
    slot_step_min: int = 15
    created_at: dt.datetime
