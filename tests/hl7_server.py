"""A loopback MLLP receiver, as an interface engine answers hpms: it keeps every message it
gets and answers each with an ACK of its control id, AA unless told otherwise (`answers`: a
queue of codes AA/AE/AR, or "silent" for no answer at all). Runs on a free port in a thread
of its own (plain sockets, so it shares nothing with the asyncio code under test)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

VT, FS_CR = b"\x0b", b"\x1c\x0d"


def control_id(message: str) -> str:
    return message.split("\r", 1)[0].split("|")[9]


def ack_for(message: str, code: str, text: str = "") -> str:
    msh = message.split("\r", 1)[0].split("|")
    return (
        f"MSH|^~\\&|{msh[4]}|{msh[5]}|{msh[2]}|{msh[3]}|20260615143000+0000||ACK|R{msh[9]}|P|2.5.1\r"
        f"MSA|{code}|{msh[9]}|{text}\r"
    )


@dataclass
class Receiver:
    port: int = 0
    received: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # codes for the next messages; then AA
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_answer(self) -> str:
        with self.lock:
            return self.answers.pop(0) if self.answers else "AA"


def _serve(sock: socket.socket, rx: Receiver, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            buf = b""
            try:
                while FS_CR not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
            except OSError:
                continue
            if FS_CR not in buf:
                continue
            message = buf[buf.index(VT) + 1 : buf.index(FS_CR)].decode()
            with rx.lock:
                rx.received.append(message)
            code = rx.next_answer()
            if code == "silent":
                stop.wait(1.0)  # longer than the sender's timeout in the tests
                continue
            text = "PID-3 unknown patient" if code != "AA" else ""
            conn.sendall(VT + ack_for(message, code, text).encode() + FS_CR)


@pytest.fixture
def hl7_receiver() -> Iterator[Receiver]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    rx = Receiver(port=sock.getsockname()[1])
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(sock, rx, stop), daemon=True)
    thread.start()
    yield rx
    stop.set()
    thread.join(5)
    sock.close()
