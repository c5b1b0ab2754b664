"""The outbox: queue N reminder emails (default 10,000) and send them through the sender to a
real SMTP server on loopback, against a bare aiosmtplib loop sending the same messages.

The script builds a practice in a scratch HPMS_HOME (or a scratch PostgreSQL database):
`hpms init`, the practice's From and Reply-To (`sender.set_profile`), 50 patients. It starts an
aiosmtpd server in a separate process (its own interpreter, so it takes no GIL from the
measured code) that accepts every message and counts it; both runs below send to it.

1. Queue: `outbox.enqueue` of N reminders (template reminder, one recipient each, a subject
   and a body of a real reminder's size), `--batch` messages per transaction (default 100: a
   day's bookings land in many small transactions), each with its audit event. Prints
   messages/s.
2. Bound: the same N messages (read back from the outbox, not timed) sent by a bare
   aiosmtplib loop on one connection: an EmailMessage with the same headers (From, To,
   Reply-To, Subject, Date, Message-ID) and body built and sent per message, no database.
3. Sender: `hpms.services.messages.sender.send_due` with the default SmtpTransport (one
   connection for the pass): for each message the claim is committed before it is handed
   over and the result settled and committed after, with its audit event.

2 and 3 alternate in `--rounds` rounds (default 10) of N/rounds messages each, a connection
and a sender pass a round, so that the machine's noise falls on both alike. Prints
messages/s of 2 and 3 (wall clock; the CPU of this process per message beside it) and their
ratio. Target: the sender within 2x the bound
(PASS/MISS). Both runs are checked against the server's count, and the outbox must hold N
messages `sent` at the end.

4. Round trips (not timed): `--trips` more messages (default 500) queued and sent in one pass,
   counting what the sender asks of the database per message: on PostgreSQL the round trips,
   seen by a relay between the sender and the server (each time the sender speaks again after
   the server answered); on SQLite the statements run (there is no network to cross).

    python benchmarks/messages.py [--backend sqlite|postgresql|both] [--messages 10000]
                                  [--batch 100] [--rounds 10] [--trips 500] [--postgres URL]
                                  [--profile] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing as mp
import os
import platform
import pstats
import select
import socket
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from billing import pg_create, scratch_done, set_env  # noqa: E402
from patients import machine_factor  # noqa: E402

TARGET_RATIO = 2.0
FROM = "front.desk@riverside-clinic.example"
REPLY_TO = "replies@riverside-clinic.example"
SUBJECT = "Your visit on {day} at {time}"
BODY = (
    "Dear {first},\n\n"
    "this is a reminder of your visit with Dr. Meera Patel on {day} at {time} at Riverside Main,\n"
    "100 River Rd, Hartford. Please arrive ten minutes early and bring your insurance card.\n\n"
    "Reply C to confirm or CANCEL to cancel. To change the time, call us at 860-555-0100.\n\n"
    "Riverside Clinic\n"
)
FIRST = ["Ana", "José", "Emma", "Liam", "Olivia", "Noah", "Zoë", "Mateo", "Aisha", "Yuki"]


# ---- the SMTP server, in its own process ---------------------------------------------------


class _Counter:
    """aiosmtpd handler: accept every recipient and message, count the messages."""

    def __init__(self, count) -> None:
        self.count = count

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.count.value += 1
        return "250 Message accepted for delivery"


def _serve(port: int, count, ready, stop) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(_Counter(count), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class SmtpServer:
    """The aiosmtpd server process: `count` is how many messages it has taken."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        ctx = mp.get_context("spawn")
        self._count = ctx.Value("q", 0, lock=False)
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self._proc = ctx.Process(target=_serve, args=(self.port, self._count, self._ready, self._stop), daemon=True)

    @property
    def count(self) -> int:
        return int(self._count.value)

    def __enter__(self) -> SmtpServer:
        self._proc.start()
        if not self._ready.wait(30):
            raise SystemExit("the SMTP server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._proc.join(10)


# ---- the practice and the queue ------------------------------------------------------------


def build(home: Path, url: str | None, smtp_url: str) -> list[int]:
    set_env(home, url)
    os.environ["HPMS_SMTP_URL"] = smtp_url
    from hpms.config import load_settings
    from hpms.services.messages import sender
    from hpms.services.people import patients
    from hpms.services.platform import admin
    from hpms.services.platform.context import open_context

    settings = load_settings()
    admin.init(settings, practice="Riverside Clinic", tz="America/New_York", location="Main")
    with open_context(settings) as ctx:
        sender.set_profile(ctx, email_from=FROM, reply_to=REPLY_TO)
        ids = [
            patients.register(
                ctx, first_name=FIRST[i % len(FIRST)], last_name=f"Bench{i:03d}", dob=f"19{40 + i}-03-{i % 28 + 1:02d}"
            ).id
            for i in range(50)
        ]
    return [i for i in ids if i is not None]


def queue(n: int, batch: int, patient_ids: list[int]) -> float:
    """Queue n reminders, `batch` per transaction; returns the seconds it took."""
    from hpms.config import load_settings
    from hpms.services.messages import outbox
    from hpms.services.platform.context import open_context

    settings = load_settings()
    t0 = time.perf_counter()
    done = 0
    while done < n:
        with open_context(settings) as ctx:
            for i in range(done, min(n, done + batch)):
                day, at = f"2027-01-{i % 28 + 1:02d}", f"{8 + i % 9}:{15 * (i % 4):02d}"
                outbox.enqueue(
                    ctx,
                    channel="email",
                    recipient=f"patient{i:05d}@mail.example",
                    subject=SUBJECT.format(day=day, time=at),
                    body=BODY.format(first=FIRST[i % len(FIRST)], day=day, time=at),
                    template="reminder",
                    patient_id=patient_ids[i % len(patient_ids)],
                )
        done = min(n, done + batch)
    return time.perf_counter() - t0


def queued_messages() -> list[tuple[int, str, str | None, str]]:
    import sqlalchemy as sa

    from hpms.config import load_settings
    from hpms.db import get_engine

    with get_engine(load_settings()).connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, recipient, subject, body FROM message WHERE state = 'queued' ORDER BY id")
        ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


# ---- round trips ----------------------------------------------------------------------------


class TripCounter:
    """A relay on loopback in front of the PostgreSQL server that counts round trips: each time
    a client sends after the server last spoke to it (or first) is one."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.trips = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        client_spoke_last = False
        with client, server:
            while True:
                ready, _, _ = select.select([client, server], [], [])
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is client:
                        if not client_spoke_last:
                            with self._lock:
                                self.trips += 1
                        client_spoke_last = True
                        server.sendall(data)
                    else:
                        client_spoke_last = False
                        client.sendall(data)

    def close(self) -> None:
        self._listener.close()


def count_trips(n: int, patient_ids: list[int], url: str | None) -> tuple[str, float]:
    """Queue n more messages and send them in one pass, counting what the sender asks of the
    database: (what was counted, how many per message)."""
    import sqlalchemy as sa

    from hpms.config import load_settings
    from hpms.db import dispose_engines, get_engine
    from hpms.services.messages import sender

    queue(n, n, patient_ids)
    dispose_engines()
    if url is not None:
        target = sa.engine.make_url(url)
        relay = TripCounter(target.host or "127.0.0.1", target.port or 5432)
        os.environ["HPMS_DATABASE_URL"] = target.set(host="127.0.0.1", port=relay.port).render_as_string(
            hide_password=False
        )
        try:
            sent = sender.send_due(load_settings(), limit=n).sent
            trips = relay.trips
        finally:
            dispose_engines()
            os.environ["HPMS_DATABASE_URL"] = url
            relay.close()
        assert sent == n, sent
        return "round trips", trips / n
    statements = 0

    def counted(_sql: str) -> None:
        nonlocal statements
        statements += 1

    engine = get_engine(load_settings())
    sa.event.listen(engine, "connect", lambda dbapi_conn, _rec: dbapi_conn.set_trace_callback(counted))
    sent = sender.send_due(load_settings(), limit=n).sent
    dispose_engines()
    assert sent == n, sent
    return "statements", statements / n


# ---- the two runs --------------------------------------------------------------------------


def bare_loop(port: int, messages: list[tuple[int, str, str | None, str]]) -> tuple[float, float]:
    """The same messages through aiosmtplib on one connection; returns (wall, CPU) seconds."""
    import aiosmtplib

    async def run() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, use_tls=False)
        await smtp.connect()
        for mid, recipient, subject, body in messages:
            mail = EmailMessage()
            mail["From"] = FROM
            mail["To"] = recipient
            mail["Reply-To"] = REPLY_TO
            mail["Subject"] = subject or ""
            mail["Date"] = formatdate(localtime=False, usegmt=True)
            mail["Message-ID"] = make_msgid(idstring=f"hpms-{mid}", domain="riverside-clinic.example")
            mail.set_content(body)
            await smtp.send_message(mail, sender=FROM, recipients=[recipient])
        await smtp.quit()

    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(run())
    return time.perf_counter() - t0, time.process_time() - c0


def send_some(n: int, profiler: cProfile.Profile | None) -> tuple[float, float, int]:
    """One pass of the sender over at most n due messages; returns (wall, CPU) seconds, sent."""
    from hpms.config import load_settings
    from hpms.services.messages import sender

    settings = load_settings()
    t0, c0 = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    summary = sender.send_due(settings, limit=n)
    if profiler is not None:
        profiler.disable()
    return time.perf_counter() - t0, time.process_time() - c0, summary.sent


def count_sent() -> int:
    import sqlalchemy as sa

    from hpms.config import load_settings
    from hpms.db import get_engine

    with get_engine(load_settings()).connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM message WHERE state = 'sent'")).scalar() or 0)


def measure(args, backend: str, server: SmtpServer) -> None:

    home = Path(tempfile.mkdtemp(prefix="hpms-messages-bench-"))
    url = db = None
    try:
        if backend == "postgresql":
            db = f"hpms_bench_messages_{os.getpid()}"
            url = pg_create(args.postgres, db)
        patient_ids = build(home, url, f"smtp://127.0.0.1:{server.port}")
        q_s = queue(args.messages, args.batch, patient_ids)
        messages = queued_messages()
        assert len(messages) == args.messages, len(messages)
        size = sum(len(m[3]) + len(m[2] or "") for m in messages) / len(messages)
        print(
            f"  {backend:10} queue    {args.messages:,} reminders, {args.batch} per transaction, in {q_s:.2f} s: "
            f"{args.messages / q_s:,.0f} messages/s (subject + body {size:.0f} characters)",
            flush=True,
        )
        # interleaved, round by round, so that the machine's noise falls on both runs alike
        bound_s = bound_cpu = send_s = send_cpu = 0.0
        profiler = cProfile.Profile() if args.profile else None
        step = -(-len(messages) // args.rounds)
        for i in range(0, len(messages), step):
            chunk = messages[i : i + step]
            before = server.count
            wall, cpu = bare_loop(server.port, chunk)
            bound_s, bound_cpu = bound_s + wall, bound_cpu + cpu
            assert server.count - before == len(chunk), "the server did not take every message of the bare loop"
            before = server.count
            wall, cpu, sent = send_some(len(chunk), profiler)
            send_s, send_cpu = send_s + wall, send_cpu + cpu
            assert sent == len(chunk) and server.count - before == len(chunk), (sent, server.count - before)
        assert count_sent() == args.messages
        bound_rate, send_rate = args.messages / bound_s, args.messages / send_s
        ratio = send_s / bound_s
        n = args.messages
        print(
            f"  {backend:10} bound    aiosmtplib, one connection a round: {bound_s:.2f} s, "
            f"{bound_rate:,.0f} messages/s "
            f"({bound_s / n * 1000:.2f} ms each, CPU here {bound_cpu / n * 1000:.2f} ms)"
        )
        print(
            f"  {backend:10} sender   send_due, SmtpTransport: {send_s:.2f} s, {send_rate:,.0f} messages/s "
            f"({send_s / n * 1000:.2f} ms each, CPU here {send_cpu / n * 1000:.2f} ms)"
        )
        print(
            f"  {backend:10} ratio    sender / bound {ratio:.2f}x   target <= {TARGET_RATIO:.0f}x   "
            f"{'PASS' if ratio <= TARGET_RATIO else 'MISS'}",
            flush=True,
        )
        if args.trips:
            what, per = count_trips(args.trips, patient_ids, url)
            print(f"  {backend:10} trips    {args.trips:,} more sent in one pass: {per:.2f} {what} per message")
        if profiler is not None:
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(20)
    finally:
        scratch_done(home, args.postgres, db, keep=args.keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--postgres", metavar="URL", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100, help="messages queued per transaction")
    parser.add_argument("--rounds", type=int, default=10, help="bound and sender alternate this many times")
    parser.add_argument("--trips", type=int, default=500, help="messages of the untimed pass that counts round trips")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the sender's run")
    parser.add_argument("--keep", action="store_true", help="keep the scratch HPMS_HOME / PostgreSQL database")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    factor = machine_factor()
    print(
        f"outbox benchmark: {args.messages:,} reminder emails to aiosmtpd on loopback (own process); "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
        f"machine factor {factor:.2f} (import typer here / on the reference machine)",
        flush=True,
    )
    with SmtpServer() as server:
        for backend in backends:
            measure(args, backend, server)


if __name__ == "__main__":
    main()
