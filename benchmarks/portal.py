"""The patient portal over HTTP on loopback: the online slot search page and booking a time,
against a bare Starlette app doing the same query (and the same guarded insert) in the same run.

Builds the practice of benchmarks/scheduling.py (3 locations, 50 providers with working hours,
20,000 patients, `--appointments N` rows, default 1,000,000) with its bulk builders, puts the
slot grid at 20 minutes (the synthetic bookings' grid), opens "Office visit" online (no lead
time, a year ahead, no cap) and gives one patient without visits an email address. Then two
servers, each uvicorn in a process of its own on 127.0.0.1, on a listening socket with
TCP_NODELAY as `hpms portal serve` makes it (`--nagle`: without it, to see what it costs):

- the portal: `hpms.portal.app.create_app` with the practice's settings, as `hpms portal serve`
  runs it (no access log, in both);
- the bound: a bare Starlette app on the bare driver (sqlite3 / psycopg, one connection kept
  open). Its slot search runs one indexed query of the bookings at the location (or of the
  provider) a week at a time, as the slot search reads them, over the page's 14 days, walks the
  08:00-17:00 grid of the location's providers and renders the first 50 times as the same small
  forms with f-strings; its booking checks the CSRF double-submit, then `BEGIN IMMEDIATE`
  (`BEGIN`) + the indexed overlap check + `INSERT` (with the table's overlap triggers /
  exclusion constraints) + `COMMIT` (scheduling.py's RawBooker), and answers 303.

The patient signs in through the real sign-in flow (the form, the code read from the outbox,
the code form). Then with httpx (keep-alive, one connection to each server), `--requests N`
times each (default 200), the portal and the bound alternating request by request so that the
machine's noise falls on both alike:

  (a) POST /book/search, first available at Main (20 providers) from a day a week ahead (the
      day moves on by one each request, over five weekdays), and (a') the same for one provider;
  (b) POST /book of a fresh open time each request (Main, three weeks ahead or more), with the
      CSRF token of the page as the browser sends it; 303 to /home expected.

Prints p50 / p95 latency (ms), requests/s (sequential: one at a time), the ratio of the portal's
p50 to the bound's and PASS/MISS against the goal (<= 2x), per backend, with the load average
(the machine is shared). `--profile` profiles the portal's server process while it answers
(the event loop's thread and the threads running the services, apart) and prints the top.

    python benchmarks/portal.py [--backend sqlite|postgresql|both] [--appointments N]
                                [--requests N] [--postgres URL] [--nagle] [--profile] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hmac
import multiprocessing as mp
import os
import platform
import pstats
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from billing import pg_create, scratch_done, set_env  # noqa: E402
from patients import percentile  # noqa: E402
from scheduling import SLOTS_PER_DAY, RawBooker, build_clinic  # noqa: E402

TARGET_RATIO = 2.0
PATIENT = ("pat.bench@example.org", "1980-04-02")
TYPE = "Office visit"
PAGE_DAYS = 14  # what the portal's search page covers
PAGE_SLOTS = 50  # and the times it shows
WINDOW_DAYS = 7  # the slot search reads the bookings a week at a time
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")


# ---- the servers, each in its own process --------------------------------------------------


def _serve(kind: str, spec: dict, nodelay: bool, port, ready, stop, profile_to: str | None) -> None:
    import cProfile
    import socket
    import threading

    import uvicorn

    threads_prof = cProfile.Profile() if profile_to else None
    if kind == "portal":
        from hpms.config import load_settings
        from hpms.portal import kit
        from hpms.portal.app import create_app

        app = create_app(load_settings())
        if threads_prof is not None:  # the services run in the thread pool: profile them there
            run = kit.Kit.run

            def profiled(self, cfg, fn, **kw):
                threads_prof.enable()
                try:
                    return run(self, cfg, fn, **kw)
                finally:
                    threads_prof.disable()

            kit.Kit.run = profiled  # type: ignore[method-assign]
    else:
        app = bare_app(spec)
    sock = socket.socket()
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port.value = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", server_header=False, access_log=False)
    server = uvicorn.Server(config)

    def watch() -> None:
        while not server.started:
            time.sleep(0.01)
        ready.set()
        stop.wait()
        server.should_exit = True

    threading.Thread(target=watch, daemon=True).start()
    loop_prof = cProfile.Profile() if profile_to else None
    if loop_prof is not None:
        loop_prof.enable()
    server.run(sockets=[sock])
    if loop_prof is not None and threads_prof is not None and profile_to:
        loop_prof.disable()
        loop_prof.dump_stats(profile_to + ".loop")
        threads_prof.dump_stats(profile_to + ".threads")


class Server:
    """uvicorn serving the portal or the bound in a process of its own; `url` once started."""

    def __init__(self, kind: str, spec: dict, nodelay: bool, profile_to: str | None = None) -> None:
        ctx = mp.get_context("spawn")
        self._port = ctx.Value("i", 0, lock=False)
        self._ready, self._stop = ctx.Event(), ctx.Event()
        args = (kind, spec, nodelay, self._port, self._ready, self._stop, profile_to)
        self._proc = ctx.Process(target=_serve, args=args, daemon=True)
        self.url = ""

    def __enter__(self) -> Server:
        self._proc.start()
        if not self._ready.wait(120):
            raise SystemExit("a server did not start")
        self.url = f"http://127.0.0.1:{self._port.value}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._proc.join(30)


# ---- the bound: a bare Starlette app on the bare driver ------------------------------------


def bare_app(spec: dict) -> Any:
    """The same two answers with nothing but Starlette and the driver (see the module's doc)."""
    import bisect
    import html
    from zoneinfo import ZoneInfo

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    backend = spec["backend"]
    tz = ZoneInfo(spec["tz"])
    raw = RawBooker(
        backend,
        SimpleNamespace(sqlite_path=spec["sqlite_path"]),
        spec["database_url"],
        spec["org_id"],
        spec["user_id"],
        spec["type_id"],
    )
    conn = raw.conn
    names: dict[int, str] = {int(k): v for k, v in spec["providers"].items()}
    mark = "?" if backend == "sqlite" else "%s"
    statuses = ", ".join(f"'{s}'" for s in spec["blocking"])
    by_location = (
        f"SELECT provider_id, start_utc, block_end_utc FROM appointment WHERE location_id = {mark}"
        f" AND status IN ({statuses}) AND start_utc >= {mark} AND start_utc < {mark} ORDER BY start_utc"
    )
    by_provider = by_location.replace(f"location_id = {mark}", f"provider_id = {mark}")
    step = dt.timedelta(minutes=20)

    def utc(v: Any) -> dt.datetime:
        return dt.datetime.fromisoformat(v).replace(tzinfo=dt.UTC) if isinstance(v, str) else v

    def csrf_ok(request: Request, form: Any) -> bool:
        have, sent = request.cookies.get("hpms_csrf") or "", form.get("csrf") or ""
        return bool(have) and isinstance(sent, str) and hmac.compare_digest(have.encode(), sent.encode())

    async def search(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form):
            return HTMLResponse("expired", status_code=403)
        first = dt.date.fromisoformat(str(form["start_date"]))
        provider = str(form.get("provider") or "")
        pids = [int(provider)] if provider else sorted(names)
        slots: list[tuple[dt.datetime, int]] = []
        day = first
        end = first + dt.timedelta(days=PAGE_DAYS)
        while day < end and len(slots) < PAGE_SLOTS:
            if day == first or day == first + dt.timedelta(days=WINDOW_DAYS):  # the slot search's windows
                lo = max(dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC), dt.datetime.now(dt.UTC))
                stop = min(end, day + dt.timedelta(days=WINDOW_DAYS))
                hi = dt.datetime.combine(stop, dt.time(), tz).astimezone(dt.UTC)
                cur = conn.cursor()
                cur.execute(
                    by_provider if provider else by_location,
                    (pids[0] if provider else spec["location_id"], raw._t(lo), raw._t(hi)),
                )
                busy: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {p: [] for p in pids}
                for pid, s, e in cur.fetchall():
                    busy.setdefault(pid, []).append((utc(s), utc(e)))
                cur.close()
                starts = {p: [s for s, _ in v] for p, v in busy.items()}
            if day.weekday() < 5:
                t0 = dt.datetime.combine(day, dt.time(8, 0), tz)
                for k in range(SLOTS_PER_DAY):
                    t = t0 + k * step
                    if t < lo:
                        continue
                    for pid in pids:
                        i = bisect.bisect_left(starts[pid], t + step)
                        if i == 0 or busy[pid][i - 1][1] <= t:
                            slots.append((t, pid))
            day += dt.timedelta(days=1)
        token = html.escape(request.cookies.get("hpms_csrf") or "")
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(str(form.get(k) or ""))}">'
            for k in ("type", "location", "provider", "start_date")
        )
        items = []
        for t, pid in slots[:PAGE_SLOTS]:
            when = t.isoformat()
            items.append(
                f'<li><form method="post" action="/book"><input type="hidden" name="csrf" value="{token}">'
                f'{hidden}<input type="hidden" name="slot_provider" value="{pid}">'
                f'<input type="hidden" name="start" value="{when}"><button type="submit">'
                f'<time datetime="{when}">{t:%A %d %B %Y, %H:%M}</time> with {html.escape(names[pid])},'
                f" {html.escape(spec['location'])}</button></form></li>"
            )
        page = (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Open times</title></head><body>"
            f"<h1>Open times</h1><ul class=times>{''.join(items)}</ul></body></html>"
        )
        return HTMLResponse(page)

    async def book(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form):
            return HTMLResponse("expired", status_code=403)
        start = dt.datetime.fromisoformat(str(form["start"])).astimezone(dt.UTC)
        try:
            raw.book(spec["patient_id"], int(str(form["slot_provider"])), spec["location_id"], start)
        except RuntimeError:
            return HTMLResponse("taken", status_code=409)
        return RedirectResponse("/home?done=booked", status_code=303)

    return Starlette(routes=[Route("/book/search", search, methods=["POST"]), Route("/book", book, methods=["POST"])])


# ---- the practice ----------------------------------------------------------------------------


def build(args, backend: str, home: Path, url: str | None) -> dict:
    """The practice, the portal's settings, and what the two servers and the client need."""
    from hpms.config import load_settings
    from hpms.models.scheduling import BLOCKING_STATUSES
    from hpms.services.people import patients
    from hpms.services.platform.context import open_context
    from hpms.services.scheduling import availability, online

    set_env(home, url)
    settings = load_settings()
    rng = random.Random(args.seed)
    clinic = build_clinic(settings, args, rng, home, backend, reserve=2)
    (patient_id, mrn), (bound_patient, _) = clinic.reserved[0], clinic.reserved[1]
    with open_context(settings) as ctx:
        availability.set_policy(ctx, slot_step_min=20)
        online.set_policy(ctx, type_ref=TYPE, enabled=True, lead_minutes=0, horizon_days=366, daily_cap=0)
        patients.update(ctx, mrn, email=PATIENT[0], dob=PATIENT[1])
    main_id, main_tz = clinic.info["locations"]["Main"]
    at_main = [(pid, room) for pid, lid, _, room in clinic.info["providers"] if lid == main_id]
    with clinic.engine.connect() as conn:
        import sqlalchemy as sa

        names = {
            pid: f"{first} {last}, {cred}"
            for pid, first, last, cred in conn.execute(
                sa.text("SELECT id, first_name, last_name, credentials FROM provider WHERE id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": [p for p, _ in at_main]},
            )
        }
    # open times at Main three weeks ahead or more: distinct starts for each patient, so that
    # neither patient's own visits overlap
    free = [(pid, start) for pid, lid, start in clinic.gen.free if lid == main_id]
    rng.shuffle(free)
    portal_slots, bound_slots, seen_p, seen_b = [], [], set(), set()
    for pid, start in free:
        if start not in seen_p and len(portal_slots) <= args.requests + 5:
            seen_p.add(start)
            portal_slots.append((pid, start))
        elif start not in seen_b and len(bound_slots) <= args.requests + 5:
            seen_b.add(start)
            bound_slots.append((pid, start))
    spec = {
        "backend": backend,
        "sqlite_path": str(settings.sqlite_path) if settings.sqlite_path else None,
        "database_url": url,
        "org_id": clinic.actor.org_id,
        "user_id": clinic.actor.user_id,
        "type_id": clinic.info["types"][TYPE],
        "location_id": main_id,
        "location": "Main",
        "tz": main_tz,
        "providers": {str(p): names[p] for p, _ in at_main},
        "blocking": list(BLOCKING_STATUSES),
        "patient_id": bound_patient,
    }
    return {
        "settings": settings,
        "spec": spec,
        "patient_id": patient_id,
        "type_id": clinic.info["types"][TYPE],
        "location_id": main_id,
        "tz": main_tz,
        "provider": at_main[5][0],
        "today": clinic.today,
        "portal_slots": portal_slots,
        "bound_slots": bound_slots,
        "engine": clinic.engine,
    }


def sign_in(url: str, engine: Any, patient_id: int) -> Any:
    """A browser signed in to the portal as the patient: the form, the code from the outbox, the
    code form."""
    import httpx
    import sqlalchemy as sa

    b = httpx.Client(base_url=url, follow_redirects=False, timeout=120)
    r = b.get("/")
    found = CSRF.search(r.text)
    assert r.status_code == 200 and found, r.text
    r = b.post("/", data={"csrf": found.group(1), "contact": PATIENT[0], "dob": PATIENT[1]})
    assert r.status_code == 303, r.text
    with engine.connect() as conn:
        body = conn.execute(
            sa.text("SELECT body FROM message WHERE patient_id = :p AND template = 'portal_code' ORDER BY id DESC"),
            {"p": patient_id},
        ).scalar()
    code = CODE.search(body or "")
    assert code, "no sign-in code was queued"
    r = b.post("/code", data={"csrf": b.cookies.get("hpms_csrf"), "code": code.group(1)})
    assert r.status_code == 303 and r.headers["location"] == "/home", r.text
    return b


# ---- measuring -------------------------------------------------------------------------------


def measure(args, backend: str) -> None:
    import httpx

    from hpms.db import dispose_engines

    home = Path(tempfile.mkdtemp(prefix="hpms-portal-bench-"))
    url = db = None
    try:
        if backend == "postgresql":
            db = f"hpms_bench_portal_{os.getpid()}"
            url = pg_create(args.postgres, db)
        print(
            f"portal benchmark (hpms) on {backend}: {args.appointments:,} appointments; python "
            f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start",
            flush=True,
        )
        b = build(args, backend, home, url)
        dispose_engines()  # the servers open their own connections
        profile_to = str(home / "portal.prof") if args.profile else None
        nodelay = not args.nagle
        with Server("portal", b["spec"], nodelay, profile_to) as portal, Server("bound", b["spec"], nodelay) as bound:
            browser = sign_in(portal.url, b["engine"], b["patient_id"])
            r = browser.get("/book")
            found = CSRF.search(r.text)
            assert r.status_code == 200 and found, r.text
            token = found.group(1)  # the form's token, the cookie's value
            bare = httpx.Client(base_url=bound.url, follow_redirects=False, timeout=120)
            bare.cookies.set("hpms_csrf", token)
            week = b["today"] + dt.timedelta(days=7)
            days = [d for d in (week + dt.timedelta(days=i) for i in range(9)) if d.weekday() < 5][:5]
            results = []

            def search_form(i: int, provider: str) -> dict[str, str]:
                return {
                    "csrf": token,
                    "type": str(b["type_id"]),
                    "location": str(b["location_id"]),
                    "provider": provider,
                    "start_date": days[i % len(days)].isoformat(),
                }

            def timed(client: Any, path: str, data: dict[str, str], status: int, check: str) -> float:
                t0 = time.perf_counter()
                r = client.post(path, data=data)
                ms = (time.perf_counter() - t0) * 1000
                assert r.status_code == status and check in (r.text or r.headers.get("location", "")), (
                    path,
                    r.status_code,
                    r.text[:500],
                )
                return ms

            for label, provider in (
                ("search, first available", ""),
                ("search, one provider", str(b["provider"])),
            ):
                for i in range(3):  # warm-up, not counted
                    timed(browser, "/book/search", search_form(i, provider), 200, "slot_provider")
                    timed(bare, "/book/search", search_form(i, provider), 200, "slot_provider")
                ours, theirs = [], []
                t_ours = t_theirs = 0.0
                for i in range(args.requests):
                    ours.append(timed(browser, "/book/search", search_form(i, provider), 200, "slot_provider"))
                    theirs.append(timed(bare, "/book/search", search_form(i, provider), 200, "slot_provider"))
                t_ours, t_theirs = sum(ours), sum(theirs)
                shown = CSRF.findall(browser.post("/book/search", data=search_form(0, provider)).text)
                results.append((label, ours, theirs, t_ours, t_theirs, f"{len(shown) - 1} times on the page"))

            tz = b["tz"]
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(tz)

            def book_form(slot: tuple[int, dt.datetime]) -> dict[str, str]:
                pid, start = slot
                return {
                    "csrf": token,
                    "type": str(b["type_id"]),
                    "location": str(b["location_id"]),
                    "provider": "",
                    "start_date": "",
                    "slot_provider": str(pid),
                    "start": start.astimezone(zone).isoformat(),
                }

            p_slots, b_slots = iter(b["portal_slots"]), iter(b["bound_slots"])
            for _ in range(3):  # warm-up, not counted
                timed(browser, "/book", book_form(next(p_slots)), 303, "done=booked")
                timed(bare, "/book", book_form(next(b_slots)), 303, "done=booked")
            ours, theirs = [], []
            for _ in range(args.requests):
                ours.append(timed(browser, "/book", book_form(next(p_slots)), 303, "done=booked"))
                theirs.append(timed(bare, "/book", book_form(next(b_slots)), 303, "done=booked"))
            results.append(("book a fresh time", ours, theirs, sum(ours), sum(theirs), "303 to /home"))
            browser.close()
            bare.close()

        print(
            f"  {args.requests} requests of each, portal and bound alternating, one keep-alive connection each; "
            f"TCP_NODELAY {'off (--nagle)' if args.nagle else 'on'}"
        )
        print(
            f"  {'':26} {'portal p50':>10} {'p95':>7} {'req/s':>6}   {'bound p50':>9} {'p95':>7} {'req/s':>6}"
            f"   {'ratio':>6}  goal"
        )
        for label, ours, theirs, t_ours, t_theirs, note in results:
            ratio = statistics.median(ours) / statistics.median(theirs)
            print(
                f"  {label:26} {statistics.median(ours):10.2f} {percentile(ours, 0.95):7.2f} "
                f"{len(ours) / t_ours * 1000:6.0f}   {statistics.median(theirs):9.2f} "
                f"{percentile(theirs, 0.95):7.2f} {len(theirs) / t_theirs * 1000:6.0f}   {ratio:5.2f}x  "
                f"<= {TARGET_RATIO:.0f}x {'PASS' if ratio <= TARGET_RATIO else 'MISS'}  ({note})"
            )
        print(
            f"  (ms over HTTP on loopback, httpx in this process; ratio of the p50s; load average "
            f"{os.getloadavg()[0]:.1f} at the end)",
            flush=True,
        )
        if profile_to:
            for part, what in (("threads", "the services' threads"), ("loop", "the event loop's thread")):
                print(f"\ncProfile of the portal's server, {what} (cumulative):")
                stats = pstats.Stats(profile_to + "." + part, stream=sys.stdout)
                stats.sort_stats("cumulative").print_stats(35)
                stats.sort_stats("tottime").print_stats(20)
    finally:
        scratch_done(home, args.postgres, db, keep=args.keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--postgres", metavar="URL", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--appointments", type=int, default=1_000_000, help="appointment rows (default 1,000,000)")
    parser.add_argument("--providers", type=int, default=50, help="providers (default 50)")
    parser.add_argument("--patients", type=int, default=20_000, help="patients (default 20,000)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests of each kind (default 200)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the synthetic data")
    parser.add_argument("--nagle", action="store_true", help="listen without TCP_NODELAY (what it costs)")
    parser.add_argument("--profile", action="store_true", help="cProfile the portal's server process")
    parser.add_argument("--keep", action="store_true", help="keep the scratch HPMS_HOME / PostgreSQL database")
    args = parser.parse_args()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        measure(args, backend)
        print(flush=True)


if __name__ == "__main__":
    main()
