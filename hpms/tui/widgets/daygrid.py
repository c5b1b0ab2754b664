"""The day grid: a time column and one column per provider (or room), drawn line by line.

Only the visible rows and columns are rendered (Textual's line API), so a day of 40 providers
x 30 visits costs the same as an empty one. Cells are computed once per load; a cursor move
repaints two lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

if TYPE_CHECKING:  # the service layer (SQLAlchemy) loads in the first worker, after the first frame
    from hpms.services.scheduling.schedule_view import Block, DayView

TIME_W = 6
MIN_COL_W = 16

STATUS_MARK = {
    "booked": "·",
    "confirmed": "✓",
    "arrived": "A",
    "in_room": "R",
    "completed": "■",
    "no_show": "N",
    "cancelled": "x",
}
STATUS_STYLE = {
    "booked": Style(color="white", bgcolor="dark_blue"),
    "confirmed": Style(color="white", bgcolor="blue"),
    "arrived": Style(color="black", bgcolor="yellow"),
    "in_room": Style(color="white", bgcolor="dark_magenta"),
    "completed": Style(color="white", bgcolor="dark_green"),
    "no_show": Style(color="white", bgcolor="dark_red"),
    "cancelled": Style(color="grey50", bgcolor="grey15"),
}
# where a booked or confirmed visit stands with the patient (hpms.services.messages.confirmations):
# these two take the place of the status mark; a visit not confirmed yet keeps the booked mark,
# one confirmed otherwise (the patient called) the confirmed mark
CONFIRM_MARK = {"confirmed_by_patient": "←", "reminder_failed": "!"}
CONFIRM_TEXT = {  # after the status in the line under the grid
    "confirmed_by_patient": "by the patient's reply",
    "reminder_failed": "not confirmed, the reminder failed",
}
REMINDER_FAILED = Style(color="bright_yellow", bold=True)
OPEN = Style(bgcolor="grey7")
CLOSED = Style(color="grey30", bgcolor="grey19")
OFF = Style(color="grey62", bgcolor="grey27", italic=True)
HEADER = Style(bold=True, color="white", bgcolor="grey23")
TIME = Style(color="grey70")
TIME_HOUR = Style(color="white", bold=True)
NOW = Style(color="red", bold=True)
CURSOR = Style(reverse=True)
MOVING = Style(color="black", bgcolor="bright_cyan", bold=True)


@dataclass
class Cell:
    text: str
    style: Style
    block: Block | None = None


class DayGrid(Widget, can_focus=True):
    """Cursor = (row, column); a row is one time step."""

    BINDINGS = [
        Binding("up,k", "move(-1, 0)", "Up", show=False),
        Binding("down,j", "move(1, 0)", "Down", show=False),
        Binding("left,h", "move(0, -1)", "Left", show=False),
        Binding("right,l", "move(0, 1)", "Right", show=False),
        Binding("pageup", "move(-8, 0)", show=False),
        Binding("pagedown", "move(8, 0)", show=False),
        Binding("home", "edge(0)", show=False),
        Binding("end", "edge(1)", show=False),
    ]

    DEFAULT_CSS = """
    DayGrid { height: 1fr; width: 1fr; }
    """

    step: reactive[int] = reactive(15)

    class CellChosen(Message):
        """Enter / double click on a cell."""

        def __init__(self, grid: DayGrid, block: Block | None, column_key: int | None, minute: int) -> None:
            super().__init__()
            self.grid = grid
            self.block = block
            self.column_key = column_key
            self.minute = minute

    class CursorMoved(Message):
        def __init__(self, grid: DayGrid) -> None:
            super().__init__()
            self.grid = grid

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: DayView | None = None
        self.row = 0
        self.col = 0
        self.row_offset = 0
        self.col_offset = 0
        self.cells: list[list[Cell]] = []
        # move mode: (block, minute, column index) of the ghost being moved
        self.moving: tuple[Block, int, int] | None = None

    # ---- data ---------------------------------------------------------------------------------

    def load(self, view: DayView, *, keep_cursor: bool = True) -> None:
        old_key = self.column_key
        old_min = self.minute if self.view else None
        self.view = view
        self._build()
        if keep_cursor and old_min is not None:
            self.goto(old_min, old_key)
        else:
            start = (
                view.now_min if view.now_min is not None and view.first_min <= view.now_min < view.last_min else None
            )
            first_open = min((s for c in view.columns for s, _ in c.open), default=view.first_min)
            self.row = self._row_of(start if start is not None else max(first_open, view.first_min))
            self.col = 0
        self._clamp()
        self.refresh()

    def watch_step(self, _old: int, _new: int) -> None:
        if self.view is not None:
            minute = self.minute
            self._build()
            self.row = self._row_of(minute)
            self._clamp()
            self.refresh()

    @property
    def rows(self) -> int:
        if self.view is None:
            return 0
        return max(1, (self.view.last_min - self.view.first_min + self.step - 1) // self.step)

    def _row_of(self, minute: int) -> int:
        if self.view is None:
            return 0
        return max(0, min(self.rows - 1, (minute - self.view.first_min) // self.step))

    def row_minute(self, row: int) -> int:
        return (self.view.first_min if self.view else 0) + row * self.step

    @property
    def minute(self) -> int:
        return self.row_minute(self.row)

    @property
    def column_key(self) -> int | None:
        if not self.view or not self.view.columns:
            return None
        return self.view.columns[min(self.col, len(self.view.columns) - 1)].key

    @property
    def block(self) -> Block | None:
        """The appointment under the cursor."""
        if not self.cells or self.col >= len(self.cells):
            return None
        return self.cells[self.col][self.row].block if self.row < len(self.cells[self.col]) else None

    def goto(self, minute: int, column_key: int | None = None) -> None:
        self.row = self._row_of(minute)
        if column_key is not None and self.view:
            for i, c in enumerate(self.view.columns):
                if c.key == column_key:
                    self.col = i
        self._clamp()
        self.refresh()
        self.post_message(self.CursorMoved(self))

    def _build(self) -> None:
        view = self.view
        assert view is not None
        step = self.step
        rows = self.rows
        by_col: dict[int, list[Block]] = {}
        for b in view.blocks:
            by_col.setdefault(b.column, []).append(b)
        self.cells = []
        for col in view.columns:
            # one pass: each block fills the rows it covers (first wins where blocks overlap)
            owner: list[Block | None] = [None] * rows
            count = [0] * rows
            for b in by_col.get(col.key, []):
                r0 = max(0, (b.start_min - view.first_min) // step)
                r1 = min(rows, (max(b.end_min, b.start_min + 1) - view.first_min + step - 1) // step)
                for r in range(r0, r1):
                    count[r] += 1
                    if owner[r] is None:
                        owner[r] = b
            cells = []
            for r in range(rows):
                lo = view.first_min + r * step
                hi = lo + step
                here = owner[r]
                if here is not None:
                    extra = f" +{count[r] - 1}" if count[r] > 1 else ""
                    style = STATUS_STYLE.get(here.status, OPEN)
                    if here.confirmation == "reminder_failed":
                        style = style + REMINDER_FAILED
                    if here.start_min >= lo:
                        mark = CONFIRM_MARK.get(here.confirmation or "") or STATUS_MARK.get(here.status, "?")
                        text = f"{mark} {here.start:%H:%M} {here.patient}{extra}"
                    elif here.start_min + step <= lo < here.start_min + step * 2:
                        text = f"  {here.type}"
                    elif lo < here.start_min + step * 3:
                        text = "  " + here.status.replace("_", " ")
                    else:
                        text = ""
                    cells.append(Cell(text, style, here))
                    continue
                offs = [o for o in col.off if o[0] < hi and o[1] > lo]
                if offs:
                    starts_here = offs[0][0] >= lo or r == 0
                    cells.append(Cell(f"░ {offs[0][2]}" if starts_here else "░", OFF))
                    continue
                is_open = any(s <= lo and hi <= e for s, e in col.open)
                cells.append(Cell("", OPEN if is_open else CLOSED))
            self.cells.append(cells)

    # ---- geometry -----------------------------------------------------------------------------

    def _col_width(self) -> int:
        if not self.view or not self.view.columns:
            return MIN_COL_W
        avail = max(MIN_COL_W, self.size.width - TIME_W)
        n = len(self.view.columns)
        return max(MIN_COL_W, avail // n) if n * MIN_COL_W <= avail else MIN_COL_W

    def _visible_cols(self) -> int:
        return max(1, (self.size.width - TIME_W) // self._col_width())

    def _visible_rows(self) -> int:
        return max(1, self.size.height - 1)

    def _clamp(self) -> None:
        ncols = len(self.view.columns) if self.view else 0
        self.col = max(0, min(self.col, max(0, ncols - 1)))
        self.row = max(0, min(self.row, max(0, self.rows - 1)))
        vr, vc = self._visible_rows(), self._visible_cols()
        if self.row < self.row_offset:
            self.row_offset = self.row
        elif self.row >= self.row_offset + vr:
            self.row_offset = self.row - vr + 1
        self.row_offset = max(0, min(self.row_offset, max(0, self.rows - vr)))
        if self.col < self.col_offset:
            self.col_offset = self.col
        elif self.col >= self.col_offset + vc:
            self.col_offset = self.col - vc + 1
        self.col_offset = max(0, min(self.col_offset, max(0, ncols - vc)))

    def on_resize(self, _event: events.Resize) -> None:
        self._clamp()
        self.refresh()

    # ---- drawing ------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        view = self.view
        if view is None:
            return Strip([Segment(" Loading…".ljust(width), TIME)])
        cw = self._col_width()
        first, count = self.col_offset, min(self._visible_cols(), max(0, len(view.columns) - self.col_offset))
        segs: list[Segment] = []
        if y == 0:
            segs.append(Segment(" " * TIME_W, HEADER))
            for i in range(first, first + count):
                label = view.columns[i].label
                style = HEADER + Style(underline=True) if i == self.col else HEADER
                segs.append(Segment(_fit(" " + label, cw), style))
            return _pad(segs, width)
        row = self.row_offset + y - 1
        if row >= self.rows or not view.columns:
            if not view.columns and y == 1:
                return _pad(
                    [Segment(" no providers at this location" if view.mode != "room" else " no rooms", TIME)], width
                )
            return _pad([], width)
        lo = self.row_minute(row)
        hi = lo + self.step
        now_here = view.now_min is not None and lo <= view.now_min < hi
        label = (
            f"{lo // 60 % 24:02d}:{lo % 60:02d}"
            if lo % 60 == 0 or row == self.row_offset or now_here
            else f"  :{lo % 60:02d}"
        )
        tstyle = NOW if now_here else (TIME_HOUR if lo % 60 == 0 else TIME)
        segs.append(Segment((("▶" if now_here else " ") + label).ljust(TIME_W), tstyle))
        for i in range(first, first + count):
            cell = self.cells[i][row]
            style = cell.style
            text = cell.text
            if self.moving is not None:
                blk, mmin, mcol = self.moving
                span = max(blk.end_min - blk.start_min, self.step)
                if i == mcol and mmin < hi and mmin + span > lo:
                    text = f"» {blk.patient}" if mmin >= lo else "»"
                    style = MOVING
            if now_here and not text:
                text = "─" * (cw - 1)
                style = style + Style(color="red")
            if i == self.col and row == self.row and self.has_focus:
                style = style + CURSOR
            segs.append(Segment(_fit(text, cw - 1), style))
            segs.append(Segment("│", Style(color="grey30", bgcolor=cell.style.bgcolor)))
        return _pad(segs, width)

    # ---- input --------------------------------------------------------------------------------

    def action_move(self, drow: int, dcol: int) -> None:
        if self.moving is not None:
            blk, mmin, mcol = self.moving
            ncols = len(self.view.columns) if self.view else 1
            mmin = max(0, min(1440 - self.step, mmin + drow * self.step))
            mcol = max(0, min(ncols - 1, mcol + dcol))
            self.moving = (blk, mmin, mcol)
            self.goto(mmin, self.view.columns[mcol].key if self.view else None)
            return
        before = (self.row, self.col, self.row_offset, self.col_offset)
        self.row += drow
        self.col += dcol
        self._clamp()
        self._repaint_cursor(before)
        self.post_message(self.CursorMoved(self))

    def _repaint_cursor(self, before: tuple[int, int, int, int]) -> None:
        """Repaint the old and the new cursor line (and the header when the column changed);
        everything when the view scrolled."""
        row, col, row_offset, col_offset = before
        if (row_offset, col_offset) != (self.row_offset, self.col_offset):
            self.refresh()
            return
        width = self.size.width
        for r in {row, self.row}:
            self.refresh(Region(0, r - self.row_offset + 1, width, 1))
        if col != self.col:
            self.refresh(Region(0, 0, width, 1))

    def action_edge(self, end: int) -> None:
        self.row = self.rows - 1 if end else 0
        self._clamp()
        self.refresh()
        self.post_message(self.CursorMoved(self))

    def on_key(self, event: events.Key) -> None:
        if event.key == "enter" and self.view is not None:
            event.stop()
            self.post_message(self.CellChosen(self, self.block, self.column_key, self.minute))

    def _cell_at(self, x: int, y: int) -> tuple[int, int] | None:
        if y < 1 or x < TIME_W:
            return None
        col = self.col_offset + (x - TIME_W) // self._col_width()
        row = self.row_offset + y - 1
        if self.view is None or col >= len(self.view.columns) or row >= self.rows:
            return None
        return row, col

    def on_click(self, event: events.Click) -> None:
        hit = self._cell_at(event.x, event.y)
        if hit is None:
            return
        self.row, self.col = hit
        self._clamp()
        self.refresh()
        self.post_message(self.CursorMoved(self))
        if event.chain >= 2:
            self.post_message(self.CellChosen(self, self.block, self.column_key, self.minute))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.row_offset = min(max(0, self.rows - self._visible_rows()), self.row_offset + 3)
        self.row = max(self.row, self.row_offset)
        self.refresh()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.row_offset = max(0, self.row_offset - 3)
        self.row = min(self.row, self.row_offset + self._visible_rows() - 1)
        self.refresh()

    def on_focus(self, _event: events.Focus) -> None:
        self.refresh()

    def on_blur(self, _event: events.Blur) -> None:
        self.refresh()


def _fit(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text[:width].ljust(width)


def _pad(segs: list[Segment], width: int) -> Strip:
    strip = Strip(segs)
    return strip.adjust_cell_length(width) if strip.cell_length != width else strip
