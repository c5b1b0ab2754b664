"""What comes back after billing: remittance files (835) and the claims they pay, adjustments
with their reason codes, patient payments applied to visits, statements sent to patients and
eligibility answers (270/271).

The money itself lives in the ledger (`ledger_entry`); these tables keep what the payer said
(so a claim that could not be matched can be matched by hand and posted later), how patient
credit was applied, and what was sent to whom. Money is integer cents.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

import hpms.models.ledger  # noqa: F401  (foreign keys below name ledger_entry, claim and claim_line)
from hpms.models.base import OrgField, UTCField

ELIGIBILITY_STATUSES = ("pending", "active", "inactive", "error")
STATEMENT_FORMATS = ("pdf", "html", "txt")


class RemitFile(SQLModel, table=True):
    """One imported 835 file; the same bytes are never posted twice (sha256)."""

    __tablename__ = "remit_file"
    __table_args__ = (sa.UniqueConstraint("org_id", "sha256", name="uq_remit_file_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    filename: str = Field(max_length=200)
    sha256: str = Field(max_length=64)
    imported_at: dt.datetime = UTCField()
    imported_by: int | None = Field(default=None, foreign_key="hpms_user.id")


class Remittance(SQLModel, table=True):
    """One 835 transaction set: one payment (check or EFT) from one payer. The payer, the trace
    (check or EFT) number, the amount and the payment date identify it, whatever envelope it
    came in: importing it again, even re-enveloped with new control numbers, posts nothing."""

    __table_args__ = (
        sa.UniqueConstraint("org_id", "isa_control", "payer_identifier", "trace_number", name="uq_remittance"),
        sa.Index(
            "uq_remittance_payment",
            "org_id",
            "payer_identifier",
            "trace_number",
            "payment_cents",
            "payment_date",
            unique=True,
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    remit_file_id: int = Field(foreign_key="remit_file.id", index=True)
    isa_control: str = Field(max_length=9)
    st_control: str = Field(max_length=9)
    payer_identifier: str = Field(max_length=80)  # REF*2U / N1*PR id, else the payer's name
    payer_name: str = Field(default="", max_length=60)
    payer_id: int | None = Field(default=None, foreign_key="payer.id")
    trace_number: str = Field(max_length=50)
    payment_cents: int
    payment_method: str | None = Field(default=None, max_length=3)
    payment_date: dt.date | None = None
    provider_adjustment_cents: int = 0  # PLB total (positive reduces the payment)
    claims: int = 0
    created_at: dt.datetime = UTCField()


class RemitClaim(SQLModel, table=True):
    """One CLP of a remittance. `claim_id` is None until it is matched; `posted_at` is set
    when its money went to the ledger. `detail` keeps the parsed claim payment (JSON) so that
    a claim matched by hand is posted exactly as the payer sent it."""

    __tablename__ = "remit_claim"
    __table_args__ = (
        sa.Index("ix_remit_claim_open", "org_id", "posted_at"),
        sa.Index("ix_remit_claim_claim", "claim_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    remittance_id: int = Field(foreign_key="remittance.id")
    seq: int
    patient_control_number: str = Field(max_length=38)
    status_code: str = Field(max_length=2)  # CLP02
    charge_cents: int
    paid_cents: int
    patient_resp_cents: int = 0
    payer_claim_number: str | None = Field(default=None, max_length=50)
    patient_name: str | None = Field(default=None, max_length=120)
    service_date: dt.date | None = None
    claim_id: int | None = Field(default=None, foreign_key="claim.id")
    posted_at: dt.datetime | None = UTCField(nullable=True)
    remarks: str | None = Field(default=None, max_length=200)  # RARC codes, comma-separated
    detail: str = Field(sa_type=sa.Text)


class RemitAdjustment(SQLModel, table=True):
    """One CAS reason of a posted claim payment (claim level when `claim_line_id` is None)."""

    __tablename__ = "remit_adjustment"
    __table_args__ = (sa.Index("ix_remit_adjustment_reason", "org_id", "reason_code"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    remit_claim_id: int = Field(foreign_key="remit_claim.id", index=True)
    claim_id: int | None = Field(default=None, foreign_key="claim.id")
    claim_line_id: int | None = Field(default=None, foreign_key="claim_line.id")
    group_code: str = Field(max_length=2)  # CO, PR, OA, PI, CR
    reason_code: str = Field(max_length=5)  # CARC
    amount_cents: int
    remarks: str | None = Field(default=None, max_length=200)  # RARC codes of the line, comma-separated


class PaymentApplication(SQLModel, table=True):
    """How much of a patient payment pays which visit. A payment not (fully) applied is
    credit; credit is applied oldest visit first."""

    __tablename__ = "payment_application"
    __table_args__ = (
        sa.Index("ix_payment_application_payment", "payment_entry_id"),
        sa.Index("ix_payment_application_encounter", "encounter_id"),
        sa.CheckConstraint("amount_cents > 0", name="ck_payment_application_amount"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    payment_entry_id: int = Field(foreign_key="ledger_entry.id")
    encounter_id: int = Field(foreign_key="encounter.id")
    amount_cents: int
    applied_at: dt.datetime = UTCField()
    applied_by: int | None = Field(default=None, foreign_key="hpms_user.id")


class Statement(SQLModel, table=True):
    """One patient statement: what was in it and the file it was written to."""

    __table_args__ = (sa.Index("ix_statement_patient", "org_id", "patient_id", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    patient_id: int = Field(foreign_key="patient.id")
    period_from: dt.date | None = None  # the day after the previous statement; None for the first
    period_to: dt.date
    amount_due_cents: int
    format: str = Field(max_length=4)
    filename: str = Field(max_length=200)
    directory: str = Field(max_length=500)
    created_at: dt.datetime = UTCField()
    created_by: int | None = Field(default=None, foreign_key="hpms_user.id")


class EligibilityCheck(SQLModel, table=True):
    """One question to a payer (a 270 subscriber/dependent loop) and, once the 271 is
    imported, its answer."""

    __tablename__ = "eligibility_check"
    __table_args__ = (
        sa.Index("ix_eligibility_coverage", "coverage_id", "requested_at"),
        sa.Index("ix_eligibility_trace", "org_id", "trace_number"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    patient_id: int = Field(foreign_key="patient.id")
    coverage_id: int | None = Field(default=None, foreign_key="coverage.id")
    payer_id: int | None = Field(default=None, foreign_key="payer.id")
    trace_number: str | None = Field(default=None, max_length=50)  # TRN02 of the 2000C/D loop
    service_date: dt.date
    status: str = Field(default="pending", max_length=8)
    plan_begin: dt.date | None = None
    plan_end: dt.date | None = None
    copay_cents: int | None = None
    coinsurance_percent: str | None = Field(default=None, max_length=8)  # "20" (as the payer wrote it)
    deductible_cents: int | None = None
    deductible_remaining_cents: int | None = None
    plan_name: str | None = Field(default=None, max_length=80)
    reason: str | None = Field(default=None, max_length=300)  # AAA rejections as readable text
    requested_at: dt.datetime = UTCField()
    responded_at: dt.datetime | None = UTCField(nullable=True)
    requested_by: int | None = Field(default=None, foreign_key="hpms_user.id")
