"""Gapless named counters (MRNs; later claim control numbers), atomic on both backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.models import Counter

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

MRN_COUNTER = "patient_mrn"  # medical record numbers, from MRN_START + 1
MRN_START = 100000


def reserve(session: Session, name: str, count: int = 1, *, start: int = 0) -> int:
    """Reserve `count` values; returns the first. The row lock serializes concurrent callers."""
    row = session.execute(
        sa.update(Counter).where(Counter.name == name).values(value=Counter.value + count).returning(Counter.value)
    ).scalar_one_or_none()
    if row is None:
        session.execute(sa.insert(Counter).values(name=name, value=start + count))
        row = start + count
    return row - count + 1


def peek(session: Session, name: str) -> int:
    return session.execute(sa.select(Counter.value).where(Counter.name == name)).scalar_one_or_none() or 0
