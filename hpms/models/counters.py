"""Named gapless counters (MRNs, later claim control numbers)."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Counter(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=64)
    value: int = 0
