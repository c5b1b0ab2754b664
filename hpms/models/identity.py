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


class ApiToken(SQLModel, table=True):
    """A bearer token of an API client (an EHR): it acts as a service actor with one role. Only
    the SHA-256 of the token is kept; the token itself is shown once, when it is created."""

    __tablename__ = "api_token"
    __table_args__ = (
        sa.UniqueConstraint("token_hash", name="uq_api_token_hash"),
        sa.UniqueConstraint("org_id", "name", name="uq_api_token_name"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    name: str = Field(max_length=64)
    role: str = Field(max_length=32)
    token_hash: str = Field(max_length=64)
    created_at: dt.datetime = UTCField()
    created_by: int | None = Field(default=None, foreign_key="hpms_user.id")
    expires_at: dt.datetime | None = UTCField(nullable=True)
    revoked_at: dt.datetime | None = UTCField(nullable=True)
    last_used_at: dt.datetime | None = UTCField(nullable=True)


class ApiTokenOut(SQLModel):
    model_config = DEFERRED
    id: int
    name: str
    role: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    state: str  # active, expired or revoked
    token: str | None = None  # only in the answer to its creation
