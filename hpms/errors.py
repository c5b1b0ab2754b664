"""The one error hierarchy of hpms; each error carries the exit code the CLI returns.

The exit codes are a documented contract (docs/cli.md): scripts and cron jobs rely on them.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # internal or environment error (database unreachable, schema mismatch)
    USAGE = 2  # bad usage or invalid input; the message names the field
    NOT_FOUND = 3
    CONFLICT = 4  # slot taken, duplicate, stale update, refused state change
    DENIED = 5  # not authenticated or not permitted
    LOCKED = 75  # another run holds the lock; cron may retry


class HpmsError(Exception):
    """Base of every error hpms reports to a user. `hint` names the next command to run."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class ValidationError(HpmsError):
    """Invalid input. `field` names the offending field (CLI option or CSV column)."""

    exit_code = ExitCode.USAGE

    def __init__(self, field: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{field}: {message}", hint=hint)
        self.field = field
        self.reason = message


class UsageError(HpmsError):
    exit_code = ExitCode.USAGE


class NotInitializedError(HpmsError):
    """No hpms database yet; the hint says to run `hpms init`."""

    exit_code = ExitCode.USAGE


class NotFoundError(HpmsError):
    exit_code = ExitCode.NOT_FOUND


class ConflictError(HpmsError):
    exit_code = ExitCode.CONFLICT


class AuthError(HpmsError):
    """Unknown, disabled or unauthenticated user."""

    exit_code = ExitCode.DENIED


class PermissionDenied(HpmsError):
    exit_code = ExitCode.DENIED


class LockHeldError(HpmsError):
    exit_code = ExitCode.LOCKED


class DatabaseUnavailable(HpmsError):
    exit_code = ExitCode.INTERNAL


class SchemaMismatch(HpmsError):
    exit_code = ExitCode.INTERNAL


class EncryptionKeyError(HpmsError):
    """The field-encryption key is missing or does not match the data."""

    exit_code = ExitCode.INTERNAL
