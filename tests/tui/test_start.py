"""Starting the scheduler: the first frame before the service layer, the first load's errors."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from tests.tui.conftest import DAY
from tests.tui.helpers import day_screen, loaded, make_app, pilot_test, wait_for


def test_the_app_module_does_not_import_the_service_layer():
    """The first frame waits only for Textual: SQLAlchemy, pydantic and the models load in the
    first worker."""
    heavy = ("sqlalchemy", "sqlmodel", "pydantic", "hpms.models", "hpms.services", "hpms.db")
    code = f"import sys, hpms.tui.app; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pilot_test
async def test_the_first_frame_shows_the_grid_loading_then_the_day(settings, clinic):
    from hpms.tui.app import DayScreen

    app = make_app(settings)
    frames: list[tuple[object, str]] = []

    def post_display_hook() -> None:
        if isinstance(app.screen, DayScreen):
            grid = app.screen.grid
            frames.append((grid.view, grid.render_line(0).text))

    app.post_display_hook = post_display_hook
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await wait_for(pilot, lambda: frames[-1][0] is not None, what="the day drawn")
    view, text = frames[0]
    assert view is None and "Loading…" in text
    assert s.view.day == DAY and "Hopper" in frames[-1][1]


@pilot_test
async def test_a_date_as_typed_is_read_against_the_location_today(settings, clinic):
    app = make_app(settings, day=None, date="tomorrow", location="Main", refuse_start=True)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        assert s.view.day == DAY + dt.timedelta(days=1)
        assert s.location == clinic.location
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: s.view.day == DAY + dt.timedelta(days=2), what="the next day")
        assert app.is_running


@pilot_test
async def test_an_error_of_the_first_load_ends_the_app_which_returns_it(settings, clinic):
    from hpms.errors import NotFoundError, ValidationError

    for kw, kind, field, words in (
        ({"location": "Nowhere"}, NotFoundError, "location", "no location 'Nowhere'"),
        ({"location": "Main", "date": "bogus"}, ValidationError, "date", "'bogus' is not a date"),
    ):
        app = make_app(settings, day=None, refuse_start=True, **kw)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda app=app: app.return_value is not None, what="the app to end")
        error = app.return_value
        assert isinstance(error, kind) and error.field == field and words in error.message
        assert not app.is_running


@pilot_test
async def test_without_refuse_start_the_error_is_shown_and_the_app_stays(settings, clinic):
    app = make_app(settings, location="Nowhere")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.notified, what="the notification")
        assert app.is_running and app.return_value is None
        assert any("no location 'Nowhere'" in m for m in app.notified)
        assert day_screen(app).view is None and not day_screen(app)._loading
