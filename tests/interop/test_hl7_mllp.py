"""MLLP framing: frames split over many reads or sharing one, bytes outside frames, a frame
begun again, a frame too long; the asyncio client against a real server on the loopback."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from hpms.interop.hl7v2 import mllp


def test_a_frame_is_vt_message_fs_cr():
    assert mllp.frame("MSH|x") == b"\x0bMSH|x\x1c\x0d"


def test_a_frame_in_pieces_comes_out_whole_once():
    r = mllp.FrameReader()
    data = mllp.frame("MSH|^~\\&|one")
    assert [r.feed(data[i : i + 1]) for i in range(len(data) - 1)] == [[]] * (len(data) - 1)
    assert r.pending > 0
    assert r.feed(data[-1:]) == [b"MSH|^~\\&|one"]
    assert r.pending == 0


def test_two_frames_in_one_read_and_noise_between_them():
    r = mllp.FrameReader()
    got = r.feed(b"\r\n" + mllp.frame("A") + b"junk" + mllp.frame("B") + b"\x0bC")
    assert got == [b"A", b"B"]
    assert r.dropped == 4 and r.pending == 1
    assert r.feed(b"\x1c\x0d") == [b"C"]


def test_a_new_start_block_drops_the_unfinished_frame():
    r = mllp.FrameReader()
    assert r.feed(b"\x0bhalf a message") == []
    assert r.feed(mllp.frame("whole")) == [b"whole"]
    assert r.dropped == len(b"half a message")


def test_a_frame_too_long_is_an_error():
    r = mllp.FrameReader(max_frame=10)
    with pytest.raises(mllp.FrameError, match="longer than 10"):
        r.feed(b"\x0b" + b"x" * 11)


def _run_with_server(handler, client):
    async def main():
        server = await mllp.start_server(handler, "127.0.0.1", 0, idle_timeout=5)
        port = server.sockets[0].getsockname()[1]
        try:
            return await client(port)
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(main())


def test_the_client_gets_the_servers_answer():
    async def echo(data: bytes) -> str:
        return "ACK:" + data.decode()

    answer = _run_with_server(echo, lambda port: mllp.exchange("127.0.0.1", port, "MSH|hello", timeout=5))
    assert answer == "ACK:MSH|hello"


def test_no_answer_in_time_and_no_listener_are_no_ack():
    async def silent(data: bytes) -> None:
        return None

    with pytest.raises(mllp.NoAck, match="within 0.2 s"):
        _run_with_server(silent, lambda port: mllp.exchange("127.0.0.1", port, "MSH|x", timeout=0.2))
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(mllp.NoAck, match="cannot connect"):
        asyncio.run(mllp.exchange("127.0.0.1", port, "MSH|x", timeout=2))


def test_the_framing_code_loads_no_database_layer():
    code = (
        "import sys, hpms.interop.hl7v2.mllp, hpms.interop.hl7v2.build, hpms.interop.hl7v2.parse; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel') "
        "or m.startswith(('hpms.services', 'hpms.models', 'hpms.db'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
