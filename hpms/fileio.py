"""Files hpms writes and reads, in one place.

Writes are whole or not at all: the data goes to a temp file next to the target, named
`.NAME.PID.RANDOM.tmp`, created with O_CREAT|O_EXCL and mode 0600 whatever the umask (and
fchmod'ed to be sure), fsynced, then renamed over the target. A reader sees the old file or the
new one, never half of one; a failure removes the temp file. A new file is private (0600): every
file hpms writes may hold patient data, except where a caller says otherwise (the public code
cache). A file that is replaced keeps the mode it had, so a mode chosen by the administrator
(0640 for a calendar feed served by a web server's group) survives.

A process killed while writing leaves its temp file behind. The first write into a directory in
a process removes such leftovers there: a temp file of this pattern whose process is gone (its
PID is not running on this machine) or that nobody has touched for an hour.

Errors say what is wrong with the file in the caller's words (`field`): a directory that does
not exist or does not take new files, an input file that does not exist or cannot be read, are
ValidationErrors (exit 2); a write that fails on the way (disk full, quota, I/O error) is a
FileWriteError (exit 74), and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

STALE_AFTER = 3600  # seconds without a write after which any temp file of the pattern is a leftover
TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
PRIVATE = 0o600

# Creating a file in the directory fails for these: the directory does not take new files.
_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
_swept: set[str] = set()


def temp_name(path: Path) -> Path:
    """The temp file a write of `path` goes through."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this host is still there (this one always is)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or not a PID this machine has: keep it
    return True


def sweep(directory: Path, *, now: float | None = None) -> list[Path]:
    """Remove the temp files killed writers left in `directory` (see the module docstring);
    returns the ones removed."""
    removed: list[Path] = []
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        m = TEMP_NAME.match(entry.name)
        if not m or int(m.group("pid")) == os.getpid():
            continue
        try:
            stale = not pid_alive(int(m.group("pid"))) or now - entry.stat().st_mtime > STALE_AFTER
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def _directory(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _create(path: Path, *, field: str) -> tuple[int, Path]:
    """A new private temp file for `path`: (fd, temp path). ValidationError (naming `field`)
    when the directory is missing or does not take new files."""
    from hpms.errors import ValidationError

    directory = _directory(path)
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise ValidationError(field, f"directory {str(directory)!r} {what}")
    key = str(directory.resolve())
    if key not in _swept:
        _swept.add(key)
        sweep(directory)
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), PRIVATE)
    except OSError as exc:
        if exc.errno in _UNWRITABLE:
            raise ValidationError(
                field, f"directory {str(directory)!r} is not writable ({exc.strerror or exc})"
            ) from None
        raise write_error(path, exc) from None
    try:
        os.fchmod(fd, PRIVATE)  # whatever the umask or the directory's default ACL
    except OSError:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


def check_directory(directory: str | Path | None, *, field: str) -> Path:
    """`directory`, after checking that it exists and takes new files (a temp file is created
    and removed). ValidationError naming `field` otherwise."""
    from hpms.errors import ValidationError

    if directory is None or not str(directory).strip():
        raise ValidationError(field, "is required")
    path = Path(directory).expanduser()
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise ValidationError(field, f"directory {str(path)!r} {what}")
    fd, tmp = _create(path / ".hpms-probe", field=field)
    os.close(fd)
    os.unlink(tmp)
    return path


def write_error(path: Path, exc: OSError) -> Exception:
    """The error for a write of `path` that failed on the way (disk full, quota, I/O)."""
    from hpms.errors import FileWriteError

    return FileWriteError(f"cannot write {path}: {exc.strerror or exc}; nothing was written")


def _finish(fd: int, tmp: Path, path: Path, mode: int | None) -> None:
    os.fsync(fd)
    if mode is not None:
        os.fchmod(fd, mode)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.fchmod(fd, os.stat(path).st_mode & 0o7777)  # a replaced file keeps its mode
    os.replace(tmp, path)


@contextlib.contextmanager
def _temp(path: Path, *, field: str) -> Iterator[tuple[int, Path]]:
    """(fd, path) of a new private temp file for `path`; closed and removed when the block
    ends (renamed away by then when it succeeded). An OSError inside is a FileWriteError."""
    fd, tmp = _create(path, field=field)
    try:
        yield fd, tmp
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, field: str = "out", mode: int | None = None) -> Iterator[Path]:
    """Yield the path of a new private (0600) temp file next to `path` for a writer that needs
    a path (a database backup); when the block ends it is fsynced and renamed to `path`. On any
    error it is removed."""
    path = Path(path)
    with _temp(path, field=field) as (fd, tmp):
        yield tmp
        _finish(fd, tmp, path, mode)


@contextlib.contextmanager
def atomic_file(
    path: str | Path,
    *,
    field: str = "out",
    mode: int | None = None,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Yield a file open for writing (text with `encoding`, else binary) whose content replaces
    `path` when the block ends without an error (see the module docstring)."""
    path = Path(path)
    with _temp(path, field=field) as (fd, tmp):
        with os.fdopen(fd, "w" if encoding else "wb", encoding=encoding, newline=newline, closefd=False) as fh:
            yield fh
            fh.flush()
        _finish(fd, tmp, path, mode)


def write_atomically(path: str | Path, data: bytes, *, field: str = "out", mode: int | None = None) -> None:
    """Replace `path` with `data` (see the module docstring)."""
    with atomic_file(path, field=field, mode=mode) as fh:
        fh.write(data)


def open_input(path: str | Path, *, field: str, encoding: str | None = None, newline: str | None = None) -> IO[Any]:
    """An input file open for reading (text with `encoding`, else binary). ValidationError
    naming `field` when it does not exist, is a directory or cannot be read."""
    from hpms.errors import ValidationError

    p = Path(path).expanduser()
    try:
        return p.open("r" if encoding else "rb", encoding=encoding, newline=newline)
    except FileNotFoundError:
        raise ValidationError(field, f"{str(p)!r} does not exist") from None
    except IsADirectoryError:
        raise ValidationError(field, f"{str(p)!r} is a directory") from None
    except OSError as exc:
        raise ValidationError(field, f"cannot read {str(p)!r}: {exc.strerror or exc}") from None


def read_input(path: str | Path, *, field: str) -> bytes:
    """The bytes of an input file (errors as `open_input`)."""
    from hpms.errors import ValidationError

    with open_input(path, field=field) as fh:
        try:
            return fh.read()
        except OSError as exc:
            raise ValidationError(field, f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
