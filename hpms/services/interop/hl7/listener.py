"""The MLLP listener: an asyncio server on which other systems send ADT messages; each frame
is taken in a transaction of its own (`inbound.receive`, in a worker thread) and answered with
its ACK, in the order the frames came on their connection. A frame that cannot be read is
answered AR; one cut short by a dropped connection is never taken; neither stops the server."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from hpms.errors import HpmsError
from hpms.interop.hl7v2 import build, mllp
from hpms.services.interop.hl7 import inbound
from hpms.services.interop.hl7.events import sending_facility
from hpms.services.platform.context import Clock, open_context

if TYPE_CHECKING:
    from hpms.config import Settings


def _error_ack(settings: Settings, facility: str, data: bytes, text: str) -> str:
    head = inbound._head_of(data)
    h = build.Header(
        settings.hl7_sending_app,
        facility,
        head.sending_app[:20] if head else "",
        head.sending_facility[:20] if head else "",
        f"ACK{secrets.token_hex(6)}",
        dt.datetime.now(dt.UTC),
    )
    return build.ack(h, code="AE", answers=head.control_id[:20] if head else "", text=text)


def listen(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 2575,
    stop: threading.Event,
    env: dict[str, str] | None = None,
    clock: Clock | None = None,
    on_ready: Callable[[str, int], None] | None = None,
    on_message: Callable[[inbound.Answer], None] | None = None,
    idle_timeout: float = 300.0,
) -> int:
    """Serve until `stop` is set; returns how many messages were answered. Checks first that
    the actor may take HL7 messages. Raises PermissionDenied, OSError (the port is taken)."""
    with open_context(settings, env=env) as ctx:
        inbound.check_listener(ctx)
        facility = sending_facility(ctx)  # the facility every answer names, an error's too
    answered = 0

    async def handle(data: bytes) -> str:
        nonlocal answered
        try:
            answer = await asyncio.to_thread(inbound.receive, settings, data, env=env, clock=clock)
        except HpmsError as exc:
            answer = inbound.Answer("AE", _error_ack(settings, facility, data, exc.message), text=exc.message)
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the listener
            said = f"internal error ({type(exc).__name__})"
            answer = inbound.Answer("AE", _error_ack(settings, facility, data, said), text=said)
        answered += 1
        if on_message is not None:
            on_message(answer)
        return answer.ack

    async def serve() -> None:
        server = await mllp.start_server(handle, host, port, idle_timeout=idle_timeout)
        bound = server.sockets[0].getsockname()
        if on_ready is not None:
            on_ready(str(bound[0]), int(bound[1]))
        try:
            while not stop.is_set():
                await asyncio.sleep(0.1)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(serve())
    return answered
