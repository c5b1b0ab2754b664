"""Files written whole or not at all: a temp file next to the target, fsynced, then renamed
over it. A reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, field: str = "-o", mode: int | None = None) -> None:
    """Replace `path` with `data`. A replaced file keeps its permissions; a new one is private
    (0600) unless `mode` says otherwise. NotFoundError (naming `field`) when the directory is
    missing."""
    from hpms.errors import NotFoundError

    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise NotFoundError(f"{field}: directory {str(directory)!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
