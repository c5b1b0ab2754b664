"""`hpms demo`: build a demo practice with synthetic patients, a schedule and a first billing run."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, info


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    home: Annotated[
        Path | None, typer.Option("--home", help="Build it in this directory instead of HPMS_HOME.")
    ] = None,
    patients: Annotated[int, typer.Option("--patients", min=1, max=100000, help="How many synthetic patients.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (the same seed builds the same clinic).")] = 2026,
    as_json: JsonOpt = False,
) -> None:
    """Build a demo clinic: 2 locations, staff of every role, payers, synthetic patients and a schedule.

    The schedule has three providers, rooms, appointment types, working hours and a holiday,
    four weeks of past visits (completed, no-shows, cancellations) and four weeks of bookings
    ahead of today, a weekly series and a waitlist. The completed visits have signed encounters
    (fees, a billing profile), billed by one billing run: claims, 837P files in HOME/claims/, and
    the visits of patients without coverage on the work list.
    Runs `hpms init` first when needed; rerunning it on a demo database changes nothing.
    With --home the demo is an SQLite database in DIR, even when HPMS_DATABASE_URL is set.
    Without --home, HPMS_HOME or HPMS_DATABASE_URL it goes to a demo home of its own beside
    the default one (never the default home, where a real practice lives); it prints the
    `export HPMS_HOME=...` line that points the next commands at it.

    Example: hpms demo --home /tmp/demo-clinic
    """
    import os

    from hpms.config import ENV_DATABASE_URL, ENV_HOME, demo_home, load_settings
    from hpms.services import demo as demo_service  # deferred: sqlmodel

    if home is None and not os.environ.get(ENV_HOME) and not os.environ.get(ENV_DATABASE_URL):
        home = demo_home()  # never the default home, where a real practice would live
    # --home means "a separate embedded demo there", whatever database HPMS_DATABASE_URL names.
    env = {k: v for k, v in os.environ.items() if not (home and k == ENV_DATABASE_URL)}
    cfg = load_settings(env=env, home=home)
    result = demo_service.build(cfg, patient_count=patients, seed=seed, progress=_progress())
    if as_json:
        emit_object(result, as_json=True)
        return
    if result["created"]:
        info(
            f"demo clinic {result['organization']!r} built in {result['database']}: "
            f"{result['locations']} locations, {result['users']} users, {result['payers']} payers, "
            f"{result['patients']} patients, {result['providers']} providers, "
            f"{result['appointments']} appointments, {result['claims']} claims in {result['claim_files']} "
            f"837P files under {result['claims_dir']}"
        )
    else:
        info(f"demo clinic {result['organization']!r} already present in {result['database']}")
    if home is not None:
        info("it has a home of its own (no real practice's data is touched); to use it, in this shell:")
        info(f"  export {ENV_HOME}={shlex.quote(str(cfg.home))}")
        if os.environ.get(ENV_DATABASE_URL):
            info(f"  unset {ENV_DATABASE_URL}")
        info("then try:")
    else:
        info("try next:")
    prog = _prog()
    for cmd in TRY_NEXT:
        info(f"  {prog} {cmd}")


TRY_NEXT = (
    "patients list --limit 10",
    "patients search smi",
    "patients duplicates",
    "coverage list 0100001",
    "appointments list --date tomorrow --location 'Riverside Main'",
    "schedule show Patel --week next",
    "waitlist offers",
    "claims list --status ready",
    "claims worklist",
    "billing files",
    "audit log --limit 5",
    "audit verify",
    "tui",
)


def _prog() -> str:
    """How to call hpms again as it was called: `hpms` when that is the one on PATH, else the
    path it was started by (`.venv/bin/hpms` from the README, without activating the venv)."""
    import os
    import shutil
    import sys

    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) != "hpms":
        return "hpms"
    on_path = shutil.which("hpms")
    if on_path and os.path.realpath(on_path) == os.path.realpath(argv0):
        return "hpms"
    return shlex.quote(argv0)


def _progress():
    import sys

    if not sys.stderr.isatty():
        return None
    from hpms.commands._progress import RichProgress

    return RichProgress("building demo clinic")
