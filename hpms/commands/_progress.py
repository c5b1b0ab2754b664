"""A rich progress bar for long work, shown only on a TTY (cron stays quiet)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import TaskID


class RichProgress:
    """Callable progress(done, total) backed by rich; a no-op once closed."""

    def __init__(self, description: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
            console=None,
        )
        self._task: TaskID | None = None
        self._description = description

    def __call__(self, done: int, total: int) -> None:
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=total)
        self._progress.update(self._task, completed=done, total=total)
        if done >= total:
            self._progress.stop()


def progress_for(description: str) -> RichProgress | None:
    """A progress callback on a TTY, None otherwise."""
    return RichProgress(description) if sys.stderr.isatty() else None
