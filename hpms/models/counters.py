"""Named gapless counters (MRNs, later claim control numbers) and the active key id."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Counter(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=64)
    value: int = 0


class KeyState(SQLModel, table=True):
    """One row: the id of the key that encrypts new values. Writers check it (and rotation
    locks it), so no process can write under a key that a rotation retired."""

    __tablename__ = "key_state"
    id: int = Field(default=1, primary_key=True)
    active_kid: str | None = Field(default=None, max_length=16)
