"""Patients, payers and insurance coverage."""

from __future__ import annotations

import datetime as dt

import pydantic
import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hpms.models.base import DEFERRED, OrgField, UTCField

SEX_AT_BIRTH = ("female", "male", "intersex", "unknown")
CONTACT_CHANNELS = ("phone", "sms", "email", "mail", "portal")
RELATIONSHIPS = ("self", "spouse", "child", "other")
PRIORITIES = ("primary", "secondary", "tertiary")

NORM_TYPE = sa.String(100).with_variant(sa.String(100, collation="C"), "postgresql")

# Demographic fields a user may set; ssn is handled apart (encrypted).
PATIENT_FIELDS = (
    "first_name",
    "middle_name",
    "last_name",
    "preferred_name",
    "dob",
    "sex_at_birth",
    "gender_identity",
    "phone",
    "phone_alt",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "preferred_channel",
    "consent_sms",
    "consent_email",
)


class PatientBase(SQLModel):
    first_name: str = Field(max_length=100)
    middle_name: str | None = Field(default=None, max_length=100)
    last_name: str = Field(max_length=100)
    preferred_name: str | None = Field(default=None, max_length=100)
    dob: dt.date
    sex_at_birth: str | None = Field(default=None, max_length=16)
    gender_identity: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    phone_alt: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    address_line1: str | None = Field(default=None, max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=100)
    state: str | None = Field(default=None, max_length=50)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, max_length=2)
    preferred_channel: str | None = Field(default=None, max_length=16)
    consent_sms: bool = False
    consent_email: bool = False
    tz: str | None = Field(default=None, max_length=64)  # where the patient lives, for reminder hours


class Patient(PatientBase, table=True):
    __table_args__ = (
        sa.UniqueConstraint("org_id", "mrn", name="uq_patient_mrn"),
        sa.Index("ix_patient_last_first", "org_id", "last_norm", "first_norm"),
        sa.Index("ix_patient_first", "org_id", "first_norm"),
        sa.Index("ix_patient_dob", "org_id", "dob"),
        sa.Index("ix_patient_phone", "org_id", "phone_digits"),
        sa.Index("ix_patient_phone_alt", "org_id", "phone_alt_digits"),
        sa.Index("ix_patient_email", "org_id", "email_norm"),
        sa.Index("ix_patient_ssn_bidx", "org_id", "ssn_bidx"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)  # the indexes below all lead with it
    mrn: str = Field(max_length=32)
    # Folded (case/accent-free) names; byte-ordered on PostgreSQL so prefix ranges use the index.
    last_norm: str = Field(sa_type=NORM_TYPE)
    first_norm: str = Field(sa_type=NORM_TYPE)
    phone_digits: str | None = Field(default=None, max_length=16)
    phone_alt_digits: str | None = Field(default=None, max_length=16)
    email_norm: str | None = Field(default=None, max_length=254)
    ssn_enc: str | None = Field(default=None, max_length=200)
    ssn_bidx: str | None = Field(default=None, max_length=64)
    active: bool = True
    merged_into_id: int | None = Field(default=None, foreign_key="patient.id")
    version: int = 1
    created_at: dt.datetime = UTCField()
    updated_at: dt.datetime = UTCField()


class PatientCreate(PatientBase):
    model_config = DEFERRED
    ssn: str | None = None
    mrn: str | None = None


class PatientOut(PatientBase):
    model_config = DEFERRED
    id: int
    mrn: str
    ssn_masked: str | None = None
    active: bool
    merged_into_id: int | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class PatientSummary(pydantic.BaseModel):
    """One row of a list or search. A plain pydantic model: a search builds fifty of them, and
    SQLModel's construction cost four times pydantic's (a third of a name search)."""

    model_config = DEFERRED

    id: int
    mrn: str
    first_name: str
    last_name: str
    preferred_name: str | None
    dob: dt.date
    phone: str | None
    active: bool


class DuplicateCandidate(SQLModel):
    model_config = DEFERRED
    keep: PatientSummary
    duplicate: PatientSummary
    score: int
    reasons: list[str]


class PayerBase(SQLModel):
    name: str = Field(max_length=200)
    payer_id: str = Field(max_length=80)  # X12 payer identifier (NM109 of loop 2010BB)
    address_line1: str | None = Field(default=None, max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=100)
    state: str | None = Field(default=None, max_length=50)
    postal_code: str | None = Field(default=None, max_length=20)
    phone: str | None = Field(default=None, max_length=32)
    # SBR09 claim filing indicator: MB Medicare Part B, MC Medicaid, CI commercial, BL BCBS, ...
    claim_filing: str = Field(default="CI", max_length=2, sa_column_kwargs={"server_default": "CI"})


class Payer(PayerBase, table=True):
    __table_args__ = (sa.UniqueConstraint("org_id", "payer_id", name="uq_payer_payer_id"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    created_at: dt.datetime = UTCField()


class PayerOut(PayerBase):
    model_config = DEFERRED
    id: int
    created_at: dt.datetime


class Coverage(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_coverage_patient", "patient_id", "priority"),
        sa.Index("ix_coverage_member_bidx", "org_id", "member_id_bidx"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    patient_id: int = Field(foreign_key="patient.id")
    payer_id: int = Field(foreign_key="payer.id")
    member_id_enc: str = Field(max_length=300)
    member_id_bidx: str = Field(max_length=64)
    group_number: str | None = Field(default=None, max_length=50)
    relationship: str = Field(default="self", max_length=16)
    subscriber_first_name: str | None = Field(default=None, max_length=100)
    subscriber_last_name: str | None = Field(default=None, max_length=100)
    subscriber_dob: dt.date | None = None
    priority: str = Field(default="primary", max_length=16)
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    active: bool = True
    # SBR05 when Medicare pays second: why another payer is primary (12 working aged, 43 disability, ...)
    medicare_secondary_type: str | None = Field(default=None, max_length=2)
    created_at: dt.datetime = UTCField()


class CoverageOut(SQLModel):
    model_config = DEFERRED
    id: int
    patient_id: int
    payer_id: int
    payer_name: str
    payer_code: str
    member_id: str
    group_number: str | None
    relationship: str
    subscriber_first_name: str | None
    subscriber_last_name: str | None
    subscriber_dob: dt.date | None
    priority: str
    valid_from: dt.date | None
    valid_to: dt.date | None
    active: bool
    medicare_secondary_type: str | None = None
    created_at: dt.datetime
