"""Assertions shared by the CLI tests: parsed JSON, tab-separated lists, one-line errors."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any


def ok(result) -> Any:
    """Assert exit 0 and return the parsed JSON on stdout (None when stdout is empty)."""
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return json.loads(result.stdout) if result.stdout.strip() else None


def error_line(result, code: int, *words: str) -> str:
    """Assert the exit code and exactly one stderr line, `hpms: error: ...`, containing every
    word in `words`; returns that line."""
    assert result.exit_code == code, (
        f"expected exit {code}, got {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    line = lines[0]
    assert line.startswith("hpms: error: "), line
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    return line


def tsv(text: str) -> tuple[list[str], list[list[str]]]:
    """Parse plain (non-TTY) list output: a header line, then tab-separated rows of equal width."""
    lines = text.rstrip("\n").split("\n")
    header = lines[0].split("\t")
    rows = [ln.split("\t") for ln in lines[1:]]
    assert len(header) > 1, f"no tab-separated header in {text!r}"
    for row in rows:
        assert len(row) == len(header), f"row {row!r} does not match header {header!r}"
    return header, rows


def iso_datetime(value: str) -> dt.datetime:
    """An ISO-8601 datetime that carries its UTC offset."""
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value!r} has no offset"
    return parsed


def iso_date(value: str) -> dt.date:
    assert len(value) == 10, value
    return dt.date.fromisoformat(value)


def with_denied(before: dict[str, int], refusals: int = 1) -> dict[str, int]:
    """The row counts `before` after `refusals` refused operations: each wrote nothing but its
    "denied" audit event."""
    return {**before, "audit_event": before["audit_event"] + refusals}
