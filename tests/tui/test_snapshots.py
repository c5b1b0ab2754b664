"""Screenshots of the scheduler compared with the accepted SVGs in __snapshots__/ (fixed
clock, data and day). After an intended change of the look, regenerate them with
`pytest tests/tui/test_snapshots.py --snapshot-update` and read the new SVGs before committing."""

from __future__ import annotations

import pytest
from textual.widgets import Input, OptionList

from tests.tui.helpers import loaded, make_app, settled, wait_for


@pytest.fixture
def desk_app(settings, clinic, make_user, token_for, monkeypatch):
    """The app as user 'desk1' (front desk), not the OS user running the tests (whose name would
    be in the status line), in the default dark theme with colors."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    make_user("desk1", "front_desk")
    env = {"HPMS_USER": "desk1", "HPMS_TOKEN": token_for("desk1")}

    def make():
        app = make_app(settings, env=env, poll_seconds=1)
        app.theme = "textual-dark"
        return app

    return make


async def day_loaded(pilot) -> None:
    await loaded(pilot)
    await settled(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_day_view(snap_compare, desk_app, size):
    assert snap_compare(desk_app(), terminal_size=size, run_before=day_loaded)


async def booking_dialog_with_a_result(pilot) -> None:
    from hpms.tui.screens.dialogs import BookingDialog

    await day_loaded(pilot)
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, BookingDialog), what="the booking dialog")
    dialog = pilot.app.screen
    await wait_for(pilot, lambda: dialog.types, what="the types")
    for inp in dialog.query(Input):
        inp.cursor_blink = False  # a blinking cursor would make the picture flicker between runs
    await pilot.press(*"doe")
    await wait_for(pilot, lambda: dialog.query_one("#results", OptionList).option_count == 1, what="a result")
    await settled(pilot)


def test_booking_dialog(snap_compare, desk_app):
    assert snap_compare(desk_app(), terminal_size=(80, 24), run_before=booking_dialog_with_a_result)
