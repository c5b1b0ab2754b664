"""What imports from other systems keep: which record of theirs became which hpms record, and the
visits a patient had elsewhere (history, not appointments of this practice)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hpms.models.base import OrgField, UTCField


class ExternalRef(SQLModel, table=True):
    """One resource of a source system (a FHIR resource type and id) and the hpms record it
    became; `digest` is a keyed hash of the values hpms took from it, so that importing the same
    resource again is told apart from a changed one without keeping the values twice."""

    __tablename__ = "external_ref"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "source", "resource_type", "external_id", name="uq_external_ref"),
        sa.Index("ix_external_ref_entity", "entity", "entity_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)  # the unique constraint leads with it
    source: str = Field(max_length=200)
    resource_type: str = Field(max_length=40)
    external_id: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    entity_id: int
    digest: str = Field(max_length=64)
    created_at: dt.datetime = UTCField()
    updated_at: dt.datetime = UTCField()


class ExternalVisit(SQLModel, table=True):
    """A visit a patient had outside this practice's schedule (a FHIR Encounter), kept as history."""

    __tablename__ = "external_visit"
    __table_args__ = (sa.Index("ix_external_visit_patient", "patient_id", "start_utc"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    patient_id: int = Field(foreign_key="patient.id")
    provider_id: int | None = Field(default=None, foreign_key="provider.id")
    start_utc: dt.datetime = UTCField()
    end_utc: dt.datetime | None = UTCField(nullable=True)
    status: str = Field(max_length=20)
    visit_class: str | None = Field(default=None, max_length=20)  # AMB, EMER, IMP, VR...
    kind: str | None = Field(default=None, max_length=200)  # the encounter type, as text
    reason: str | None = Field(default=None, max_length=500)
    practitioner: str | None = Field(default=None, max_length=200)
    facility: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = UTCField()
    updated_at: dt.datetime = UTCField()
