"""Shared column helpers: aware UTC datetimes and the organization key every table carries."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, cast

from sqlmodel import Field

from hpms.db import UTCDateTime

if TYPE_CHECKING:
    from sqlmodel._compat import SQLModelConfig

# Output models build their validators on first use instead of at import: a command pays only
# for the models it returns (start-up is a budget, see benchmarks/startup.py).
DEFERRED = cast("SQLModelConfig", {"defer_build": True, "from_attributes": True})


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def UTCField(*, nullable: bool = False, index: bool = False, default: Any = None, **kw: Any) -> Any:
    if default is None and not nullable:
        kw["default_factory"] = utcnow
    else:
        kw["default"] = default
    return Field(sa_type=UTCDateTime, nullable=nullable, index=index, **kw)


def OrgField(*, index: bool = True) -> Any:
    """The organization key (sharding key). `index=False` where composite indexes lead with it."""
    return Field(foreign_key="organization.id", index=index)
