"""The patient portal: one-time sign-in codes, signed-in sessions, the request throttle and the
links that let a guardian act for another patient."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hpms.models.base import DEFERRED, OrgField, UTCField


class PortalCode(SQLModel, table=True):
    """A one-time sign-in code sent to a patient; only its keyed hash is kept, and the hash of the
    browser's pending sign-in it answers."""

    __tablename__ = "portal_code"
    __table_args__ = (
        sa.UniqueConstraint("challenge_hash", name="uq_portal_code_challenge"),
        sa.Index("ix_portal_code_patient", "patient_id", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    patient_id: int = Field(foreign_key="patient.id")
    challenge_hash: str = Field(max_length=64)
    code_hash: str = Field(max_length=64)
    channel: str = Field(max_length=8)
    created_at: dt.datetime = UTCField()
    expires_at: dt.datetime = UTCField()
    used_at: dt.datetime | None = UTCField(nullable=True)
    failed_tries: int = 0


class PortalSession(SQLModel, table=True):
    """A signed-in patient's browser: the keyed hash of its cookie, whom it acts as (the patient
    who signed in, or one they may act for), and when it stops working."""

    __tablename__ = "portal_session"
    __table_args__ = (sa.UniqueConstraint("token_hash", name="uq_portal_session_token"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    token_hash: str = Field(max_length=64)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    acting_for_id: int = Field(foreign_key="patient.id")
    created_at: dt.datetime = UTCField()
    last_seen_at: dt.datetime = UTCField()
    idle_expires_at: dt.datetime = UTCField()
    expires_at: dt.datetime = UTCField()


class PortalThrottle(SQLModel, table=True):
    """One sign-in attempt from a client address (its keyed hash), for a sliding-window limit."""

    __tablename__ = "portal_throttle"
    __table_args__ = (sa.Index("ix_portal_throttle_key", "key_hash", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64)
    at: dt.datetime = UTCField()


class PortalProxy(SQLModel, table=True):
    """A patient (a parent, a guardian) who may see another patient's portal."""

    __tablename__ = "portal_proxy"
    __table_args__ = (sa.UniqueConstraint("guardian_id", "patient_id", name="uq_portal_proxy"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    guardian_id: int = Field(foreign_key="patient.id")
    patient_id: int = Field(foreign_key="patient.id", index=True)
    created_at: dt.datetime = UTCField()
    created_by: int | None = Field(default=None, foreign_key="hpms_user.id")


class ProxyOut(SQLModel):
    model_config = DEFERRED
    id: int
    guardian_id: int
    guardian_mrn: str
    guardian: str
    patient_id: int
    patient_mrn: str
    patient: str
    created_at: dt.datetime
