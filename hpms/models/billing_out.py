"""Output models of fee schedules and encounters (charge capture).

Money is `Decimal` with two places here (integer cents in the tables); JSON renders it as a
string, "123.45". Dates of service are plain dates; timestamps are in the location's zone.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlmodel import SQLModel

from hpms.models.base import DEFERRED


def money(cents: int | None) -> Decimal | None:
    """Integer cents as a two-place Decimal (12345 -> Decimal('123.45'), 0 -> Decimal('0.00'))."""
    return None if cents is None else Decimal(int(cents)).scaleb(-2)


class FeeOut(SQLModel):
    model_config = DEFERRED
    id: int
    code: str
    modifier: str | None
    payer_id: int | None  # None: the default schedule
    payer: str | None  # the payer's name
    payer_code: str | None  # the payer's X12 id
    amount: Decimal
    updated_at: dt.datetime


class FeeRowError(SQLModel):
    model_config = DEFERRED
    line: int
    field: str
    message: str


class FeeImportOut(SQLModel):
    model_config = DEFERRED
    rows: int
    created: int
    updated: int
    unchanged: int
    dry_run: bool
    errors: list[FeeRowError] = []


class DiagnosisOut(SQLModel):
    model_config = DEFERRED
    seq: int  # what the lines' pointers refer to (1-12)
    code: str  # ICD-10-CM without the dot, as stored and billed
    dotted: str  # for people: E11.9
    description: str | None


class LineOut(SQLModel):
    model_config = DEFERRED
    seq: int
    code: str
    modifiers: list[str]
    units: int
    pointers: list[int]
    charge: Decimal  # the line's charge: unit price x units
    service_date: dt.date


class EncounterOut(SQLModel):
    model_config = DEFERRED
    id: int
    status: str
    service_date: dt.date
    place_of_service: str
    patient_id: int
    patient: str
    mrn: str
    dob: dt.date | None
    provider_id: int
    provider: str
    provider_npi: str | None
    location_id: int
    location: str
    location_npi: str | None
    appointment_id: int | None
    diagnoses: list[DiagnosisOut]
    lines: list[LineOut]
    total: Decimal
    signed_at: dt.datetime | None
    signed_by: str | None
    billed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class EncounterSummary(SQLModel):
    model_config = DEFERRED
    id: int
    status: str
    service_date: dt.date
    patient_id: int
    patient: str
    mrn: str
    provider_id: int
    provider: str
    location: str
    appointment_id: int | None
    lines: int
    total: Decimal
