"""Users, their roles and service-account tokens."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hpms.models.base import DEFERRED, OrgField, UTCField


class User(SQLModel, table=True):
    __tablename__ = "hpms_user"
    __table_args__ = (sa.UniqueConstraint("username", name="uq_user_username"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    username: str = Field(max_length=64)
    full_name: str | None = Field(default=None, max_length=200)
    disabled: bool = False
    token_hash: str | None = Field(default=None, max_length=200)
    token_created_at: dt.datetime | None = UTCField(nullable=True)
    created_at: dt.datetime = UTCField()


class UserRole(SQLModel, table=True):
    __tablename__ = "user_role"
    user_id: int = Field(foreign_key="hpms_user.id", primary_key=True)
    role: str = Field(max_length=32, primary_key=True)


class UserOut(SQLModel):
    model_config = DEFERRED
    id: int
    username: str
    full_name: str | None
    roles: list[str]
    disabled: bool
    has_token: bool
    created_at: dt.datetime


class Actor(SQLModel):
    """Who a service call runs as: a user with roles, or a signed-in patient (`patient_id` set,
    no roles, named `patient:<id>`), who may act only on their own records. A portal session's
    patient acts on behalf of the user who runs the web server (`user_id`); a patient context
    opened directly has no user."""

    model_config = DEFERRED

    user_id: int | None
    username: str
    org_id: int
    roles: frozenset[str]
    auth_method: str = "os"
    patient_id: int | None = None
    # staff actions a patient's online operation performs on the patient's behalf, for the time
    # of that operation only (set by the online booking service, never by a face)
    grants: frozenset[str] = frozenset()
