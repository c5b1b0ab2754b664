"""Screenshots of the patient portal on the demo clinic, for docs/portal.md.

Builds a demo clinic in a temporary home (`hpms demo --home DIR`), serves the portal on
127.0.0.1 with uvicorn, signs a demo patient in with Debian's Chromium through Playwright
(never a downloaded browser) and writes PNGs of the main pages at 1280 px and 390 px to
docs/images/portal/ (or --out). The sign-in code is read from the demo's outbox, as the
portal's tests do.

    python scripts/portal_screenshots.py [--out docs/images/portal] [--chromium /usr/bin/chromium] [--home DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = {"desktop": 1280, "phone": 390}


def build_demo(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPMS_")}
    subprocess.run(
        [sys.executable, "-m", "hpms", "demo", "--home", str(home), "--json"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def a_patient(url: str) -> dict[str, Any]:
    """A demo patient with an email address of their own and a visit to come."""
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT p.id, p.email, p.dob FROM patient p JOIN appointment a ON a.patient_id = p.id"
                " WHERE p.email IS NOT NULL AND p.active AND a.status = 'booked' AND a.start_utc > :now"
                " AND (SELECT count(*) FROM patient q WHERE q.email_norm = p.email_norm) = 1"
                " ORDER BY p.id LIMIT 1"
            ),
            {"now": dt.datetime.now(dt.UTC).replace(tzinfo=None)},
        ).one()
    eng.dispose()
    return {"id": row.id, "email": row.email, "dob": str(row.dob)}


def last_code(url: str, patient_id: int) -> str:
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.connect() as conn:
        body = (
            conn.execute(
                sa.text("SELECT body FROM message WHERE patient_id = :p AND template = 'portal_code' ORDER BY id DESC"),
                {"p": patient_id},
            )
            .scalars()
            .first()
        )
    eng.dispose()
    found = re.search(r"\b(\d{6})\b", body or "")
    if not found:
        raise SystemExit(f"no sign-in code was queued to patient {patient_id}")
    return found.group(1)


@contextmanager
def serve(settings: Any) -> Iterator[str]:
    import uvicorn

    from hpms.portal.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def shoot(page: Any, out: Path, name: str, *, whole: bool = True) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=whole)
    print(f"  {out / (name + '.png')}")


def tour(page: Any, base: str, out: Path, suffix: str, patient: dict[str, Any], code: Callable[[], str]) -> None:
    page.goto(base + "/")
    page.get_by_label("Email address or mobile number").fill(patient["email"])
    page.get_by_label("Date of birth").fill(patient["dob"])
    shoot(page, out, f"signin-{suffix}")
    page.get_by_role("button", name="Send me a code").click()
    page.wait_for_url("**/code")
    page.get_by_label("Sign-in code").fill(code())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home")
    shoot(page, out, f"home-{suffix}")
    page.goto(base + "/book")
    shoot(page, out, f"book-{suffix}")
    page.get_by_label("Type of visit").select_option(label="Telehealth")
    page.get_by_label("From").fill((dt.date.today() + dt.timedelta(days=7)).isoformat())
    page.locator("form[action='/book/search'] button[type=submit]").click()
    page.wait_for_load_state()
    shoot(page, out, f"times-{suffix}", whole=False)  # the first of many times
    for path, name in (("/account", "account"), ("/register", "register")):
        answer = page.goto(base + path)
        if answer is not None and answer.status == 200:
            shoot(page, out, f"{name}-{suffix}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "portal")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--home", type=Path, help="a demo clinic built before (else one is built and removed)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from hpms.config import load_settings

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "demo"
        if not (home / "hpms.db").exists():
            build_demo(home)
        settings = load_settings(env={}, home=home)
        url = settings.database_url
        patient = a_patient(url)
        with serve(settings) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            for suffix, width in WIDTHS.items():
                page = browser.new_page(viewport={"width": width, "height": 900})
                tour(page, base, args.out, suffix, patient, lambda: last_code(url, patient["id"]))
                page.close()
            browser.close()


if __name__ == "__main__":
    main()
