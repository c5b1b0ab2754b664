"""`hpms demo`: build a demo practice with synthetic patients, a schedule and a first billing run."""

from __future__ import annotations

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

    Example: hpms demo --home /tmp/demo-clinic
    """
    import os

    from hpms.config import load_settings
    from hpms.services import demo as demo_service  # deferred: sqlmodel

    # --home means "a separate embedded demo there", whatever database HPMS_DATABASE_URL names.
    env = {k: v for k, v in os.environ.items() if not (home and k == "HPMS_DATABASE_URL")}
    cfg = load_settings(env=env, home=home)
    result = demo_service.build(cfg, patient_count=patients, seed=seed, progress=_progress())
    if as_json:
        emit_object(result, as_json=True)
        return
    prefix = f"HPMS_HOME={cfg.home} " if home else ""
    if home and os.environ.get("HPMS_DATABASE_URL"):
        prefix = f"HPMS_DATABASE_URL= {prefix}"
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
    info("try next:")
    for cmd in (
        "hpms patients list --limit 10",
        "hpms patients search smi",
        "hpms patients duplicates",
        "hpms coverage list 0100001",
        "hpms appointments list --date tomorrow --location 'Riverside Main'",
        "hpms schedule show Patel --week next",
        "hpms waitlist offers",
        "hpms claims list --status ready",
        "hpms claims worklist",
        "hpms billing files",
        "hpms audit log --limit 5",
        "hpms audit verify",
    ):
        info(f"  {prefix}{cmd}")


def _progress():
    import sys

    if not sys.stderr.isatty():
        return None
    from hpms.commands._progress import RichProgress

    return RichProgress("building demo clinic")
