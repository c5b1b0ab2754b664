"""Registrations and pre-visit forms sent from the patient portal, staged until the front desk
accepts or rejects them, and the insurance card photos that came with them."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hpms.models.base import OrgField, UTCField

UPLOAD_KIND = "intake_upload"  # the field-encryption purpose of a card photo


class IntakeRequest(SQLModel, table=True):
    """What a patient (or a new applicant) filled in, as given: `fields_json` holds the form's
    values (never the member id, which is field-encrypted like a coverage's)."""

    __tablename__ = "intake_request"
    __table_args__ = (sa.Index("ix_intake_request_state", "org_id", "state", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    kind: str = Field(max_length=16)  # register | update
    state: str = Field(default="pending", max_length=16)  # pending | accepted | rejected
    patient_id: int | None = Field(default=None, foreign_key="patient.id", index=True)
    appointment_id: int | None = Field(default=None, foreign_key="appointment.id")
    submitted_by: str = Field(max_length=120)  # patient:<id> or applicant:<client address>
    fields_json: str = Field(sa_type=sa.Text)
    member_id_enc: str | None = Field(default=None, sa_type=sa.Text)
    created_at: dt.datetime = UTCField()
    decided_at: dt.datetime | None = UTCField(nullable=True)
    decided_by: int | None = Field(default=None, foreign_key="hpms_user.id")
    decision_note: str | None = Field(default=None, max_length=500)


class IntakeUpload(SQLModel, table=True):
    """A photo of an insurance card (front or back), base64 then field-encrypted."""

    __tablename__ = "intake_upload"
    __table_args__ = (sa.UniqueConstraint("request_id", "side", name="uq_intake_upload_side"),)
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="intake_request.id")
    side: str = Field(max_length=8)  # front | back
    content_type: str = Field(max_length=40)
    size: int = 0
    data_enc: str = Field(sa_type=sa.Text)
