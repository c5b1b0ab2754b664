"""What the eligibility service returns: checks (a 270 question and its 271 answer) with names
resolved, and the summaries of a request and an import. Money is a two-place Decimal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlmodel import SQLModel

from hpms.models.base import DEFERRED


class EligibilityCheckOut(SQLModel):
    model_config = DEFERRED
    id: int
    patient_id: int
    patient: str
    mrn: str
    coverage_id: int | None
    payer_id: int | None
    payer: str | None
    service_date: dt.date
    status: str
    plan_name: str | None
    plan_begin: dt.date | None
    plan_end: dt.date | None
    copay: Decimal | None
    coinsurance_percent: str | None
    deductible: Decimal | None
    deductible_remaining: Decimal | None
    reason: str | None
    trace_number: str | None
    requested_at: dt.datetime
    responded_at: dt.datetime | None


class EligibilityStatusOut(SQLModel):
    """The latest check of one patient, for a day sheet or a patient panel."""

    model_config = DEFERRED
    patient_id: int
    status: str  # pending, active, inactive, error, or "not checked"
    text: str  # "active", "error: subscriber/insured not found", "not checked", ...
    check_id: int | None = None
    service_date: dt.date | None = None
    plan_name: str | None = None
    copay: Decimal | None = None


class EligibilityRequestOut(SQLModel):
    model_config = DEFERRED
    path: str
    service_date: dt.date | None
    isa_control: int
    reference: str  # BHT03 of the 270 (ISA control number and date of service), echoed in the 271
    checks: int
    patients: int
    payers: int
    check_ids: list[int]
    skipped: list[dict]  # {"patient_id", "mrn", "reason"}: patients seen with nothing to ask


class EligibilityImportOut(SQLModel):
    model_config = DEFERRED
    file: str
    answers: int
    updated: int  # pending checks that got their answer
    unchanged: int  # answers already imported (the same file again)
    recorded: int  # answers to no pending question, recorded as new checks of a known coverage
    unmatched: list[dict]  # answers that match no check and no coverage
    statuses: dict[str, int]
    check_ids: list[int]
    warnings: list[str]
