"""The money ledger: every money movement is one immutable row; balances are sums of rows.

`amount_cents` is signed from the practice's point of view: what is owed goes up with a
positive amount (charge, refund) and down with a negative one (payments, adjustments,
write-offs). Every entry also says who owes it, `responsibility` ('insurance' or 'patient'),
so a transfer to patient responsibility is a pair of entries of kind `transfer_to_patient`
that nets to zero: -X on the insurance side and +X on the patient side, the patient side
pointing at the insurance side with `pair_id`. A `transfer_to_insurance` is the reverse (what the
patient owed goes to a payer, e.g. to a secondary payer billed for it): +X on the insurance side
and -X on the patient side, the patient side again pointing at the insurance side. Corrections are reversing entries
(`reverses_id`, unique: an entry is reversed at most once); the database refuses UPDATE and
DELETE (triggers in the migration).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

import hpms.models.billing  # noqa: F401  (foreign keys below name encounter, claim and claim_line)
from hpms.models.base import OrgField, UTCField

KINDS = (
    "charge",
    "insurance_payment",
    "contractual_adjustment",
    "other_adjustment",
    "patient_payment",
    "refund",
    "write_off",
    "transfer_to_patient",
    "transfer_to_insurance",
)
TRANSFER_KINDS = ("transfer_to_patient", "transfer_to_insurance")
RESPONSIBILITIES = ("insurance", "patient")


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entry"
    __table_args__ = (
        sa.UniqueConstraint("reverses_id", name="uq_ledger_entry_reverses"),
        sa.Index("ix_ledger_entry_patient", "org_id", "patient_id", "effective_date"),
        sa.Index("ix_ledger_entry_claim", "claim_id"),
        sa.Index("ix_ledger_entry_encounter", "encounter_id"),
        sa.Index("ix_ledger_entry_payer", "org_id", "payer_id"),
        sa.CheckConstraint("amount_cents <> 0", name="ck_ledger_entry_amount"),
        sa.CheckConstraint("responsibility IN ('insurance', 'patient')", name="ck_ledger_entry_responsibility"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    kind: str = Field(max_length=24)
    amount_cents: int
    responsibility: str = Field(max_length=9)
    patient_id: int = Field(foreign_key="patient.id")
    encounter_id: int | None = Field(default=None, foreign_key="encounter.id")
    claim_id: int | None = Field(default=None, foreign_key="claim.id")
    claim_line_id: int | None = Field(default=None, foreign_key="claim_line.id")
    payer_id: int | None = Field(default=None, foreign_key="payer.id")
    posted_at: dt.datetime = UTCField()
    effective_date: dt.date
    reverses_id: int | None = Field(default=None, foreign_key="ledger_entry.id")
    pair_id: int | None = Field(default=None, foreign_key="ledger_entry.id")
    reference: str | None = Field(default=None, max_length=200)
    method: str | None = Field(default=None, max_length=8)  # patient payments and refunds: cash, card, check, other
    batch: str | None = Field(default=None, max_length=50)
    created_by: int | None = Field(default=None, foreign_key="hpms_user.id")
