"""Patient satisfaction surveys: one response (a score of 1 to 5 and an optional comment) per
completed visit."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hpms.models.base import DEFERRED, OrgField, UTCField

SCORES = (1, 2, 3, 4, 5)


class SurveyResponse(SQLModel, table=True):
    __tablename__ = "survey_response"
    __table_args__ = (
        sa.UniqueConstraint("appointment_id", name="uq_survey_response_appointment"),
        sa.Index("ix_survey_response_provider", "org_id", "provider_id", "responded_at"),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_survey_response_score"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    appointment_id: int = Field(foreign_key="appointment.id")
    patient_id: int = Field(foreign_key="patient.id")
    provider_id: int = Field(foreign_key="provider.id")
    score: int
    comment: str | None = Field(default=None, max_length=1000)
    responded_at: dt.datetime = UTCField()
    created_by: int | None = Field(default=None, foreign_key="hpms_user.id")


class SurveyResponseOut(SQLModel):
    """A response with names resolved; responded_at in the location's zone."""

    model_config = DEFERRED
    id: int
    appointment_id: int
    patient_id: int
    patient: str
    mrn: str
    provider_id: int
    provider: str
    visit: dt.datetime
    score: int
    comment: str | None
    responded_at: dt.datetime


class SurveyImportOut(SQLModel):
    model_config = DEFERRED
    imported: int
