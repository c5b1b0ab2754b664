"""MLLP (the Minimal Lower Layer Protocol of HL7 v2 over TCP): each message framed as
VT (0x0B) message FS (0x1C) CR (0x0D); an asyncio client that sends one message and waits for
its acknowledgement, and an asyncio server that answers each frame it receives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

START = b"\x0b"
END = b"\x1c\x0d"
MAX_FRAME = 4 * 1024 * 1024  # a frame longer than this closes the connection


class FrameError(ValueError):
    """A stream that is not MLLP (text outside a frame, a frame too long)."""


def frame(message: str | bytes) -> bytes:
    data = message.encode("utf-8") if isinstance(message, str) else message
    return START + data + END


class FrameReader:
    """Frames out of a byte stream fed in pieces: a frame may arrive in many reads, several
    in one. Bytes between frames (stray CR/LF) are dropped; a new start block before an end
    block drops the unfinished frame."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._in_frame = False
        self.max_frame = max_frame
        self.dropped = 0  # bytes outside any frame, or of frames cut short

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            if not self._in_frame:
                start = self._buf.find(START)
                if start == -1:
                    self.dropped += len(self._buf.strip(b"\r\n"))
                    self._buf.clear()
                    return out
                self.dropped += len(bytes(self._buf[:start]).strip(b"\r\n"))
                del self._buf[: start + 1]
                self._in_frame = True
            end = self._buf.find(END)
            restart = self._buf.find(START)
            if restart != -1 and (end == -1 or restart < end):
                self.dropped += restart
                del self._buf[: restart + 1]
                continue
            if end == -1:
                if len(self._buf) > self.max_frame:
                    raise FrameError(f"a frame longer than {self.max_frame} bytes")
                return out
            out.append(bytes(self._buf[:end]))
            del self._buf[: end + len(END)]
            self._in_frame = False

    @property
    def pending(self) -> int:
        """Bytes of a frame begun and not ended."""
        return len(self._buf) if self._in_frame else 0


class NoAck(Exception):
    """No acknowledgement came: the connection failed or the receiver said nothing in time."""


async def exchange(host: str, port: int, message: str, *, timeout: float = 30.0) -> str:
    """Send one message and return the first frame that comes back (its acknowledgement).
    Raises NoAck."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        raise NoAck(f"cannot connect to {host}:{port}: {_said(exc)}") from None
    try:
        writer.write(frame(message))
        await asyncio.wait_for(writer.drain(), timeout)
        frames = FrameReader()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise NoAck(f"{host}:{port} sent no acknowledgement within {timeout:g} s")
            chunk = await asyncio.wait_for(reader.read(65536), left)
            if not chunk:
                raise NoAck(f"{host}:{port} closed the connection without an acknowledgement")
            got = frames.feed(chunk)
            if got:
                return got[0].decode("utf-8", "replace")
    except TimeoutError:
        raise NoAck(f"{host}:{port} sent no acknowledgement within {timeout:g} s") from None
    except (OSError, FrameError) as exc:
        raise NoAck(f"{host}:{port}: {_said(exc)}") from None
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 5)


def _said(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


Handler = Callable[[bytes], Awaitable[str | None]]


async def handle_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler, *, idle_timeout: float = 300.0
) -> None:
    """Answer each frame of one connection with what `handler` returns (None: no answer), in
    order, until the peer closes, stays idle for `idle_timeout` or breaks the framing. A frame
    cut short by a closed connection is dropped: its handler never runs."""
    frames = FrameReader()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), idle_timeout)
            except TimeoutError:
                return
            if not chunk:
                return
            for data in frames.feed(chunk):
                answer = await handler(data)
                if answer is not None:
                    writer.write(frame(answer))
                    await writer.drain()
    except (FrameError, OSError):
        return
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 5)


async def start_server(handler: Handler, host: str, port: int, *, idle_timeout: float = 300.0) -> asyncio.Server:
    """An MLLP server on host:port (port 0: a free one, see `server.sockets`)."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle_connection(reader, writer, handler, idle_timeout=idle_timeout)

    return await asyncio.start_server(on_connect, host, port, limit=MAX_FRAME)
