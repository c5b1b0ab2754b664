"""The front desk's work list of registrations and pre-visit forms sent from the patient portal:
the pending requests, the highlighted one's details and likely duplicates, and accepting
(as a new patient, or into a patient on file) or rejecting it."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from hpms.tui.screens.base import scheduler
from hpms.tui.screens.panels import Panel


def detail_text(d: Any) -> str:
    """What the detail pane shows of a request (hpms.services.portal.intake.IntakeDetail)."""
    lines = [f"Request {d.id} · {d.kind} · {d.state} · sent by {d.submitted_by}"]
    lines += [f"  {k}: {v}" for k, v in d.fields.items() if v not in (None, "", False)]
    if d.member_id:
        lines.append(f"  member_id: {d.member_id}")
    if d.photos:
        lines.append(f"  card photos: {', '.join(d.photos)}")
    for c in d.candidates:
        p = c.patient
        lines.append(f"  likely on file: MRN {p.mrn} {p.first_name} {p.last_name} ({'; '.join(c.reasons)})")
    return "\n".join(lines)


class IntakeScreen(Panel):
    """Pending portal requests; a accepts, n accepts as a new patient, M merges into an MRN,
    x rejects (asking why)."""

    BINDINGS = [
        Binding("a", "accept", "Accept"),
        Binding("n", "accept(True)", "Accept as new"),
        Binding("M", "merge", "Merge into"),
        Binding("x", "reject", "Reject"),
        Binding("f5", "load", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.requests: list = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(" Registrations and pre-visit forms sent online (oldest first)", classes="panel-title")
            yield DataTable(id="requests", cursor_type="row")
            yield Static("", id="request-detail")
            yield Static("a accept · n accept as new · M merge into MRN · x reject · Esc back", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#requests", DataTable).add_columns("#", "Kind", "Sent", "Name", "Born", "MRN", "Photos")
        self.query_one("#requests", DataTable).focus()
        self.action_load()

    def action_load(self) -> None:
        from hpms.services.portal import intake

        def done(rows: list) -> None:
            self.requests = rows
            t = self.query_one("#requests", DataTable)
            t.clear()
            for r in rows:
                t.add_row(
                    str(r.id),
                    r.kind,
                    f"{r.created_at:%Y-%m-%d %H:%M}",
                    r.name,
                    str(r.dob or ""),
                    r.patient_mrn or "",
                    ",".join(r.photos),
                )
            if not rows:
                self.query_one("#request-detail", Static).update("No requests waiting.")

        scheduler(self).service(intake.list_requests, done=done)

    def chosen(self) -> Any:
        t = self.query_one("#requests", DataTable)
        if not self.requests or t.cursor_row is None or t.cursor_row >= len(self.requests):
            self.app.notify("no request chosen", severity="warning")
            return None
        return self.requests[t.cursor_row]

    @on(DataTable.RowHighlighted, "#requests")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        from hpms.services.portal import intake

        if event.cursor_row >= len(self.requests):
            return
        pane = self.query_one("#request-detail", Static)
        scheduler(self).service(
            intake.show, self.requests[event.cursor_row].id, done=lambda d: pane.update(detail_text(d))
        )

    def _accept(self, **kw: Any) -> None:
        from hpms.services.portal import intake

        req = self.chosen()
        if req is None:
            return

        def done(out: Any) -> None:
            did = "registered as" if out.created else "applied to"
            self.app.notify(f"request {out.id} {did} MRN {out.patient_mrn}")
            self.action_load()

        scheduler(self).service(intake.accept, req.id, done=done, **kw)

    def action_accept(self, new: bool = False) -> None:
        self._accept(allow_duplicate=new)

    def action_merge(self) -> None:
        from hpms.tui.screens.dialogs import TextDialog

        if self.chosen() is None:
            return

        def given(mrn: str | None) -> None:
            if mrn:
                self._accept(merge_into=mrn)

        self.app.push_screen(TextDialog("Apply the request to the patient", "MRN"), given)

    def action_reject(self) -> None:
        from hpms.services.portal import intake
        from hpms.tui.screens.dialogs import TextDialog

        req = self.chosen()
        if req is None:
            return

        def given(reason: str | None) -> None:
            if not reason:
                return

            def done(out: Any) -> None:
                self.app.notify(f"request {out.id} rejected")
                self.action_load()

            scheduler(self).service(intake.reject, req.id, reason=reason, done=done)

        self.app.push_screen(TextDialog("Why is the request rejected?", "e.g. sent twice"), given)
