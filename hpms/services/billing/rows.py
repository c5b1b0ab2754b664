"""Reads the billing modules share: rows straight from the DBAPI cursor (the run's bulk reads),
the stored values (dates, modifier and pointer lists) as Python ones, cached because a night's
claims repeat a few dozen of them, and the rows a foreign key names."""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")


def referenced(session: Session, model: type[T], key: object) -> T:
    """The row a foreign key (or a row just recorded) names: it exists."""
    row = session.get(model, key)
    assert row is not None, (model, key)
    return row


def select_in(conn: Connection, sql: str, ids: list[int]) -> list[tuple]:
    """Rows of `sql` (one IN list of integer ids, written `{}`) through the DBAPI cursor: no
    per-row work."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return select_rows(conn, sql.format(", ".join([mark] * len(ids))), ids)


def select_rows(conn: Connection, sql: str, params: list) -> list[tuple]:
    """Rows of driver SQL (its parameters marked as the driver marks them) through the DBAPI
    cursor."""
    dbapi = conn.connection.driver_connection
    assert dbapi is not None  # a connection in use has its driver connection
    cur = dbapi.cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        cur.close()


def _split(text: str) -> tuple[str, ...]:
    return tuple(x for x in text.split(",") if x) if text else ()


@functools.lru_cache(maxsize=4096)
def modifiers_of(text: str) -> tuple[str, ...]:
    """Stored modifiers ("25,59") as a tuple."""
    return _split(text)


@functools.lru_cache(maxsize=4096)
def pointers_of(text: str) -> tuple[int, ...]:
    """Stored diagnosis pointers ("1,2") as a tuple."""
    return tuple(int(p) for p in _split(text))


@functools.lru_cache(maxsize=4096)
def service_day(value: dt.date | str) -> dt.date:
    """A DATE as the driver returns it (text on SQLite, a date on PostgreSQL)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def birth_day(value: dt.date | str) -> dt.date:
    """`service_day` for values that rarely repeat (dates of birth): not cached, so they do not
    push the dates of service out of its cache."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
