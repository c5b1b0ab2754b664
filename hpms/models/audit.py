"""The hash-chained audit trail. Rows are only ever inserted."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hpms.models.base import DEFERRED, UTCField


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (sa.UniqueConstraint("seq", name="uq_audit_seq"),)
    id: int | None = Field(default=None, primary_key=True)
    seq: int
    at: dt.datetime = UTCField(index=True)
    org_id: int | None = Field(default=None)
    user_id: int | None = Field(default=None)
    username: str = Field(max_length=64, index=True)
    action: str = Field(max_length=64)
    entity: str = Field(max_length=64)
    entity_id: str | None = Field(default=None, max_length=64)
    patient_id: int | None = Field(default=None, index=True)
    patient_ids: str | None = None  # JSON list, for reads that return many patients
    fields: str | None = None  # JSON list of field names, never values
    detail: str | None = Field(default=None, max_length=500)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)  # HMAC-SHA256 under the practice's audit key (key_id)
    key_id: str | None = Field(default=None, max_length=16)  # None: written before sealing


class AuditHead(SQLModel, table=True):
    """One row: the last sequence number and hash, locked by each appender."""

    __tablename__ = "audit_head"
    id: int = Field(default=1, primary_key=True)
    last_seq: int = 0
    last_hash: str = Field(default="0" * 64, max_length=64)
    mac: str | None = Field(default=None, max_length=64)  # seals (last_seq, last_hash)
    key_id: str | None = Field(default=None, max_length=16)


class AuditEventOut(SQLModel):
    model_config = DEFERRED
    seq: int
    at: dt.datetime
    username: str
    action: str
    entity: str
    entity_id: str | None
    patient_id: int | None
    patient_ids: list[int] | None
    fields: list[str] | None
    detail: str | None
