"""Charge capture and claims: licensed/imported procedure codes, fee schedules, encounters
with diagnoses and lines, claims with lines and history, billing runs, the X12 files they
wrote, the work list, and job locks.

Money is integer cents in the database and Decimal at the edges.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

import hpms.models.scheduling  # noqa: F401  (foreign keys below name provider and appointment)
from hpms.models.base import OrgField, UTCField

ENCOUNTER_STATUSES = ("draft", "signed", "billed", "void")
CLAIM_STATUSES = (
    "ready",
    "submitted",
    "accepted",
    "rejected",
    "paid",
    "partially_paid",
    "patient_resp",
    "denied",
    "closed",
    "void",
)
CLAIM_FREQUENCIES = ("1", "7", "8")  # original, replacement, void (CLM05-3)
ORIGINAL_LIVE = "frequency = '1' AND status NOT IN ('rejected', 'void')"


class BillingProfile(SQLModel, table=True):
    """The practice's identity in claims: tax id, submitter and receiver (clearinghouse)."""

    __tablename__ = "billing_profile"
    org_id: int = Field(foreign_key="organization.id", primary_key=True)
    tax_id: str | None = Field(default=None, max_length=9)  # EIN, digits only
    submitter_id: str | None = Field(default=None, max_length=15)  # ISA06 / 1000A NM109
    submitter_name: str | None = Field(default=None, max_length=60)
    receiver_id: str | None = Field(default=None, max_length=15)  # ISA08 / 1000B NM109
    receiver_name: str | None = Field(default=None, max_length=60)
    contact_name: str | None = Field(default=None, max_length=60)
    contact_phone: str | None = Field(default=None, max_length=20)
    production: bool = False  # ISA15 P (production) or T (test)
    updated_at: dt.datetime = UTCField()


class ProcedureCode(SQLModel, table=True):
    """HCPCS Level II codes from the CMS file and CPT codes from a file the practice licenses."""

    __tablename__ = "procedure_code"
    __table_args__ = (sa.UniqueConstraint("org_id", "system", "code", name="uq_procedure_code"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    system: str = Field(max_length=8)  # HCPCS or CPT
    code: str = Field(max_length=5)
    description: str | None = Field(default=None, max_length=300)
    imported_at: dt.datetime = UTCField()


class Fee(SQLModel, table=True):
    """One price: default schedule (payer_key 0) or a payer's (payer_key = payer id)."""

    __table_args__ = (sa.UniqueConstraint("org_id", "payer_key", "code", "modifier", name="uq_fee"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    payer_key: int = 0
    payer_id: int | None = Field(default=None, foreign_key="payer.id")
    code: str = Field(max_length=5)
    modifier: str = Field(default="", max_length=2)
    amount_cents: int
    updated_at: dt.datetime = UTCField()


class Encounter(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_encounter_status", "org_id", "status", "service_date"),
        sa.Index("ix_encounter_patient", "patient_id", "service_date"),
        sa.UniqueConstraint("appointment_id", name="uq_encounter_appointment"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    patient_id: int = Field(foreign_key="patient.id")
    provider_id: int = Field(foreign_key="provider.id")
    location_id: int = Field(foreign_key="location.id")
    appointment_id: int | None = Field(default=None, foreign_key="appointment.id")
    service_date: dt.date
    place_of_service: str = Field(default="11", max_length=2)
    status: str = Field(default="draft", max_length=16)
    total_cents: int = 0
    signed_at: dt.datetime | None = UTCField(nullable=True)
    signed_by: int | None = Field(default=None, foreign_key="hpms_user.id")
    billed_at: dt.datetime | None = UTCField(nullable=True)
    version: int = 1
    created_by: int | None = Field(default=None, foreign_key="hpms_user.id")
    created_at: dt.datetime = UTCField()
    updated_at: dt.datetime = UTCField()


class EncounterDiagnosis(SQLModel, table=True):
    __tablename__ = "encounter_diagnosis"
    encounter_id: int = Field(foreign_key="encounter.id", primary_key=True)
    seq: int = Field(primary_key=True)  # 1..12: what diagnosis pointers refer to
    code: str = Field(max_length=8)  # ICD-10-CM without the dot


class EncounterLine(SQLModel, table=True):
    __tablename__ = "encounter_line"
    __table_args__ = (sa.UniqueConstraint("encounter_id", "seq", name="uq_encounter_line"),)
    id: int | None = Field(default=None, primary_key=True)
    encounter_id: int = Field(foreign_key="encounter.id")
    seq: int
    code: str = Field(max_length=5)
    modifiers: str = Field(default="", max_length=11)  # "25,59": up to four
    units: int = 1
    pointers: str = Field(max_length=7)  # "1,2": up to four diagnosis positions
    charge_cents: int
    service_date: dt.date


class BillingRun(SQLModel, table=True):
    __tablename__ = "billing_run"
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    started_at: dt.datetime = UTCField()
    finished_at: dt.datetime | None = UTCField(nullable=True)
    status: str = Field(default="running", max_length=16)
    through: dt.date | None = None
    payer_id: int | None = Field(default=None, foreign_key="payer.id")
    dry_run: bool = False
    encounters: int = 0
    claims: int = 0
    failed: int = 0
    total_cents: int = 0
    user_id: int | None = Field(default=None, foreign_key="hpms_user.id")


class X12File(SQLModel, table=True):
    __tablename__ = "x12_file"
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    run_id: int | None = Field(default=None, foreign_key="billing_run.id")
    payer_id: int = Field(foreign_key="payer.id")
    kind: str = Field(default="837P", max_length=8)
    filename: str = Field(max_length=200)
    directory: str = Field(max_length=500)
    isa_control: int
    gs_control: int
    claims: int = 0
    total_cents: int = 0
    status: str = Field(default="written", max_length=16)  # written, submitted
    created_at: dt.datetime = UTCField()
    submitted_at: dt.datetime | None = UTCField(nullable=True)


class Claim(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_claim_status", "org_id", "status"),
        sa.Index("ix_claim_file", "x12_file_id"),
        sa.Index("ix_claim_encounter", "encounter_id"),
        sa.UniqueConstraint("org_id", "control_number", name="uq_claim_control_number"),
        # one live original claim per encounter and payer: a rerun or a crash cannot bill twice
        # (a rejected or voided one may be followed by a new original)
        sa.Index(
            "uq_claim_original",
            "encounter_id",
            "payer_id",
            unique=True,
            sqlite_where=sa.text(ORIGINAL_LIVE),
            postgresql_where=sa.text(ORIGINAL_LIVE),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    encounter_id: int = Field(foreign_key="encounter.id")
    patient_id: int = Field(foreign_key="patient.id")
    payer_id: int = Field(foreign_key="payer.id")
    coverage_id: int | None = Field(default=None, foreign_key="coverage.id")
    control_number: str = Field(max_length=20)  # CLM01, the patient control number
    frequency: str = Field(default="1", max_length=1)
    original_claim_id: int | None = Field(default=None, foreign_key="claim.id")
    primary_claim_id: int | None = Field(default=None, foreign_key="claim.id")  # a secondary claim's primary
    payer_claim_number: str | None = Field(default=None, max_length=50)
    status: str = Field(default="ready", max_length=16)
    total_cents: int
    billing_run_id: int | None = Field(default=None, foreign_key="billing_run.id")
    x12_file_id: int | None = Field(default=None, foreign_key="x12_file.id")
    created_at: dt.datetime = UTCField()
    updated_at: dt.datetime = UTCField()


class ClaimLine(SQLModel, table=True):
    __tablename__ = "claim_line"
    __table_args__ = (sa.UniqueConstraint("claim_id", "seq", name="uq_claim_line"),)
    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id")
    seq: int
    code: str = Field(max_length=5)
    modifiers: str = Field(default="", max_length=11)
    units: int = 1
    pointers: str = Field(max_length=7)
    charge_cents: int
    service_date: dt.date


class ClaimEvent(SQLModel, table=True):
    __tablename__ = "claim_event"
    __table_args__ = (sa.Index("ix_claim_event_claim", "claim_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id")
    at: dt.datetime = UTCField()
    status: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=500)
    user_id: int | None = Field(default=None, foreign_key="hpms_user.id")


class WorklistItem(SQLModel, table=True):
    """A problem to fix before (re)billing: a scrub finding or a rejection."""

    __tablename__ = "worklist_item"
    __table_args__ = (sa.Index("ix_worklist_open", "org_id", "resolved_at", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    encounter_id: int | None = Field(default=None, foreign_key="encounter.id")
    claim_id: int | None = Field(default=None, foreign_key="claim.id")
    rule_id: str = Field(max_length=32)
    severity: str = Field(default="error", max_length=8)
    field: str | None = Field(default=None, max_length=64)
    message: str = Field(max_length=500)
    created_at: dt.datetime = UTCField()
    resolved_at: dt.datetime | None = UTCField(nullable=True)


class JobLock(SQLModel, table=True):
    """A named lock held by one process (billing run...). A holder that died (same host, pid
    gone) or stopped renewing its heartbeat is taken over."""

    __tablename__ = "job_lock"
    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=200)
    host: str = Field(max_length=200)
    pid: int
    acquired_at: dt.datetime = UTCField()
    heartbeat_at: dt.datetime = UTCField()
