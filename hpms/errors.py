"""The one error hierarchy of hpms. Errors are data: a kind, the field at fault, a message in
plain words, and optionally what to do next. Services raise them in the domain's words (no
option names, no commands); each face says them its own way, in one place: the CLI
(`hpms.commands._errors`) as `hpms: error: --field: message; hint` and an exit code, the TUI
at the form field.

The exit codes are a documented contract (docs/cli.md): scripts and cron jobs rely on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Self


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # internal or environment error (database unreachable, schema mismatch)
    USAGE = 2  # bad usage or invalid input; the message names the field
    NOT_FOUND = 3
    CONFLICT = 4  # slot taken, duplicate, stale update, refused state change
    DENIED = 5  # not authenticated or not permitted
    IO = 74  # a file could not be written (disk full, quota, I/O error); nothing was left behind
    LOCKED = 75  # another run holds the lock; cron may retry
    INTERRUPTED = 130  # Ctrl-C


class ErrorKind(StrEnum):
    VALIDATION = "validation"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PERMISSION = "permission"
    LOCKED = "locked"
    INTERNAL = "internal"  # the environment: database, schema, key


@dataclass(frozen=True, slots=True)
class Action:
    """A next step, named by the domain: the operation (`noun`, `verb`: "encounters",
    "update"; an operation that stands alone, such as "init", has no verb), what it acts on
    (`target`: an id, an MRN), the fields still to give (`give`: field names, or (field,
    placeholder) pairs) and the words that lead to it (`purpose`: "see", "add one with",
    "use"). The CLI shows it as a command line, the TUI as the screen or key that does it."""

    noun: str
    verb: str = ""
    target: str | None = None
    give: tuple[str | tuple[str, str], ...] = ()
    purpose: str = "see"


class HpmsError(Exception):
    """Base of every error hpms reports to a person.

    `message`: what is wrong, in plain words, without the field; `field`: the input at fault
    (a service's keyword argument or a CSV column), when there is one; `hint`: plain words on
    what to do; `action`: the operation that does it; `retry_with`: fields (flags) that make
    the same request go through (e.g. `("force",)`), `hint` then saying what they do."""

    kind: ErrorKind = ErrorKind.INTERNAL
    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        hint: str | None = None,
        action: Action | None = None,
        retry_with: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint
        self.action = action
        self.retry_with = tuple(retry_with)
        # Audit events that stand although the work is rolled back (a refusal, the patients a
        # refusal showed): the service context records them in a transaction of their own.
        self.audit_after_rollback: list[object] = []

    def on(self, field: str) -> Self:
        """The same error, naming `field` (a lookup's error for the option it came from)."""
        err = type(self).__new__(type(self))
        err.__dict__.update(self.__dict__)
        Exception.__init__(err, self.message)
        err.field = field
        return err

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        return f"{text}; {self.hint}" if self.hint else text


class ValidationError(HpmsError):
    """Invalid input. `field` names the offending field (an argument of the service, or a CSV
    column); `message` says what is wrong with it."""

    kind = ErrorKind.VALIDATION
    exit_code = ExitCode.USAGE

    def __init__(
        self,
        field: str | None,
        message: str,
        *,
        hint: str | None = None,
        action: Action | None = None,
        retry_with: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, field=field, hint=hint, action=action, retry_with=retry_with)


class UsageError(HpmsError):
    kind = ErrorKind.VALIDATION
    exit_code = ExitCode.USAGE


class NotInitializedError(HpmsError):
    """No hpms database yet; the action is the set-up (`init`)."""

    kind = ErrorKind.VALIDATION
    exit_code = ExitCode.USAGE


class NotFoundError(HpmsError):
    kind = ErrorKind.NOT_FOUND
    exit_code = ExitCode.NOT_FOUND


class ConflictError(HpmsError):
    kind = ErrorKind.CONFLICT
    exit_code = ExitCode.CONFLICT


class SlotTaken(ConflictError):
    """The time asked for was taken by another booking meanwhile (or is no longer open);
    `alternatives` holds other open times (the service's slot outputs), earliest first."""

    def __init__(self, message: str, *, field: str | None = "slot", alternatives: list[object] | None = None) -> None:
        super().__init__(message, field=field)
        self.alternatives: list[object] = list(alternatives or [])


class AuthError(HpmsError):
    """Unknown, disabled or unauthenticated user."""

    kind = ErrorKind.PERMISSION
    exit_code = ExitCode.DENIED


class PermissionDenied(HpmsError):
    kind = ErrorKind.PERMISSION
    exit_code = ExitCode.DENIED
    refused: str | None = None  # the permission-table action that was refused, when one was


class LockHeldError(HpmsError):
    kind = ErrorKind.LOCKED
    exit_code = ExitCode.LOCKED


class DatabaseUnavailable(HpmsError):
    exit_code = ExitCode.INTERNAL


class SchemaMismatch(HpmsError):
    exit_code = ExitCode.INTERNAL


class FileWriteError(HpmsError):
    """A file could not be written for a reason of the machine's (no space left, quota, I/O
    error, a read-only file system); the message names the file."""

    exit_code = ExitCode.IO


class EncryptionKeyError(HpmsError):
    """The field-encryption key is missing or does not match the data."""

    exit_code = ExitCode.INTERNAL


__all__ = [
    "Action",
    "AuthError",
    "ConflictError",
    "DatabaseUnavailable",
    "EncryptionKeyError",
    "ErrorKind",
    "ExitCode",
    "FileWriteError",
    "HpmsError",
    "LockHeldError",
    "NotFoundError",
    "NotInitializedError",
    "PermissionDenied",
    "SchemaMismatch",
    "SlotTaken",
    "UsageError",
    "ValidationError",
]
