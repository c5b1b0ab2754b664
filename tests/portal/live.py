"""The portal served by a real uvicorn server on loopback, one per test module, reading the
current test's settings on each request; and the steps of signing in as a browser does."""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.services.helpers import query

CODE = re.compile(r"\b(\d{6})\b")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def weekday(days_ahead: int) -> dt.date:
    """The first weekday `days_ahead` days from today or after."""
    day = dt.date.today() + dt.timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


@dataclass
class Served:
    url: str
    settings: Any = None  # what the server reads for each request: the current test's


@contextmanager
def serve() -> Iterator[Served]:
    import uvicorn

    from hpms.portal.app import create_app

    served = Served("")

    def current():
        assert served.settings is not None, "no test database is being served"
        return served.settings

    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as `hpms portal serve` does: no Nagle wait
    sock.bind(("127.0.0.1", 0))
    served.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(current), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield served
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def last_code(settings, patient_id: int) -> str:
    """The code in the last sign-in message queued to the patient (read from the outbox)."""
    rows = query(
        settings,
        "SELECT body FROM message WHERE patient_id = :p AND template = 'portal_code' ORDER BY id DESC",
        p=patient_id,
    )
    assert rows, f"no sign-in code was queued to patient {patient_id}"
    match = CODE.search(rows[0]["body"])
    assert match
    return match.group(1)
