"""The patient portal over real HTTP (one uvicorn server for the module): passwordless sign-in
with a code read from the outbox, codes that expire, are used once and tried at most five
times, the throttles, sessions that end when idle or signed out, CSRF, the security headers,
guardians acting for other patients, and one patient never seeing another's records."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.cli.helpers import error_line, ok
from tests.conftest import count_rows
from tests.portal.live import CSRF, Served, last_code, serve
from tests.portal.live import weekday as _weekday
from tests.services.conftest import register  # noqa: F401 - fixture
from tests.services.helpers import audit_rows, query
from tests.services.sched import book_one, clinic

EMAIL, MOBILE, E164, DOB = "pat.doe@example.org", "212-555-0142", "+12125550142", "1984-03-09"
WRITTEN = ("portal_code", "portal_session", "portal_throttle", "portal_proxy", "message", "audit_event")


@pytest.fixture(scope="module")
def site() -> Iterator[Served]:
    with serve() as served:
        yield served


@dataclass
class Practice:
    site: Served
    settings: object
    pat: object  # Pat Doe: email, mobile, a visit to come
    kid: object  # Kim Doe: a visit to come, no contact of their own
    other: object  # Alex Roe: another family

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.site.url, follow_redirects=False, timeout=30)

    def serve(self, **changes) -> None:
        self.site.settings = dataclasses.replace(self.settings, **changes)  # type: ignore[type-var]


@pytest.fixture
def practice(ctx_for, register, settings, site) -> Iterator[Practice]:  # noqa: F811
    from hpms.services.people import patients

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        pat = patients.update(ctx, c.mrn, email=EMAIL, phone=MOBILE, dob=DOB)
    kid = register(first_name="Kim", last_name="Doe", dob="2015-06-01")
    other = register(first_name="Alex", last_name="Roe", dob="1990-02-02", email="alex.roe@example.org")
    now = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
    book_one(ctx_for, c, f"{_weekday(6)} 10:00", when=now)
    book_one(ctx_for, c, f"{_weekday(8)} 11:00", when=now, patient=kid.mrn)
    book_one(ctx_for, c, f"{_weekday(9)} 09:00", when=now, patient=other.mrn)
    site.settings = settings
    try:
        yield Practice(site, settings, pat, kid, other)
    finally:
        site.settings = None


def csrf(client: httpx.Client, path: str = "/") -> str:
    r = client.get(path)
    assert r.status_code == 200, r.text
    found = CSRF.search(r.text)
    assert found
    return found.group(1)


def ask(client: httpx.Client, contact: str, dob: str, token: str | None = None) -> httpx.Response:
    token = token or csrf(client)
    return client.post("/", data={"csrf": token, "contact": contact, "dob": dob})


def enter(client: httpx.Client, code: str) -> httpx.Response:
    token = client.cookies.get("hpms_csrf")
    return client.post("/code", data={"csrf": token, "code": code})


def sign_in(p: Practice, client: httpx.Client, patient, contact: str, dob: str) -> None:
    r = ask(client, contact, dob)
    assert r.status_code == 303 and r.headers["location"] == "/code"
    r = enter(client, last_code(p.settings, patient.id))
    assert r.status_code == 303 and r.headers["location"] == "/home", r.text


def _counts(settings) -> dict[str, int]:
    return {t: count_rows(settings, t) for t in WRITTEN}


def _h1s(page: str) -> int:
    return len(re.findall(r"<h1[ >]", page))


def _error_under(page: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{field}-error">([^<]+)</p>', page)
    assert found, page
    return html.unescape(found.group(1))


def _t(value) -> dt.datetime:
    """A datetime column as read back (SQLite gives text)."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def test_sign_in_by_email_reads_the_code_from_the_outbox_and_shows_the_visits(practice, settings):
    seq = max(r["seq"] for r in audit_rows(settings))
    with practice.browser() as b:
        page = b.get("/")
        assert page.status_code == 200 and _h1s(page.text) == 1
        assert 'href="#main"' in page.text and '<main id="main"' in page.text
        for name in ("contact", "dob"):
            assert f'<label for="{name}">' in page.text and f'id="{name}"' in page.text
        r = ask(b, EMAIL.upper(), DOB)
        assert r.status_code == 303 and r.headers["location"] == "/code"
        [msg] = query(settings, "SELECT * FROM message WHERE template = 'portal_code'")
        assert msg["channel"] == "email" and msg["recipient"] == EMAIL and msg["patient_id"] == practice.pat.id
        assert msg["state"] == "queued"
        [code] = query(settings, "SELECT * FROM portal_code")
        plain = last_code(settings, practice.pat.id)
        assert plain not in code["code_hash"] and len(code["code_hash"]) == 64
        form = b.get("/code")
        assert form.status_code == 200 and _h1s(form.text) == 1 and '<label for="code">' in form.text
        assert EMAIL not in form.text  # the page does not say where (or whether) a code went
        r = enter(b, plain[:3] + " " + plain[3:])  # spaces as typed are fine
        assert r.status_code == 303 and r.headers["location"] == "/home"
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("hpms_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        home = b.get("/home")
        assert home.status_code == 200 and _h1s(home.text) == 1
        assert "Hello, Pat Doe" in home.text
        assert home.text.count("<li>") == 1 and "Visit with" in home.text  # her visit, not Kim's or Alex's
        assert "Kim" not in home.text and "Alex" not in home.text
        assert home.headers["cache-control"] == "no-store"
    [session] = query(settings, "SELECT * FROM portal_session")
    assert session["patient_id"] == practice.pat.id and session["acting_for_id"] == practice.pat.id
    assert session["token_hash"] != b.cookies.get("hpms_session")
    assert _t(session["idle_expires_at"]) - _t(session["last_seen_at"]) <= dt.timedelta(minutes=30)
    assert _t(session["expires_at"]) - _t(session["created_at"]) == dt.timedelta(hours=12)
    events = [(r["username"], r["action"], r["entity"], r["patient_id"]) for r in audit_rows(settings, seq)]
    me = f"patient:{practice.pat.id}"
    assert (me, "queue", "message", practice.pat.id) in events
    assert (me, "signin", "portal_session", practice.pat.id) in events
    assert (me, "read", "appointment", practice.pat.id) in events


def test_sign_in_by_mobile_sends_an_sms(practice, settings):
    with practice.browser() as b:
        r = ask(b, "(212) 555 0142", DOB)
        assert r.status_code == 303
        [msg] = query(settings, "SELECT channel, recipient FROM message WHERE template = 'portal_code'")
        assert msg == {"channel": "sms", "recipient": E164}
        assert enter(b, last_code(settings, practice.pat.id)).headers["location"] == "/home"


def test_no_match_answers_the_same_and_sends_nothing(practice, settings, register):  # noqa: F811
    register(first_name="Twin", last_name="One", dob="1970-07-07", email="shared@example.org")
    register(first_name="Twin", last_name="Two", dob="1970-07-07", email="shared@example.org")
    with practice.browser() as b:
        known = ask(b, EMAIL, DOB)
        pages = [b.get("/code").text]
        for contact, dob in ((EMAIL, "1984-03-10"), ("nobody@example.org", DOB), ("shared@example.org", "1970-07-07")):
            r = ask(b, contact, dob)
            assert (r.status_code, r.headers["location"]) == (known.status_code, known.headers["location"])
            assert r.headers.get_list("set-cookie")[0].split("=")[0] == "hpms_signin"
            pages.append(b.get("/code").text)
    strip = [CSRF.sub("", p) for p in pages]
    assert len(set(strip)) == 1  # one page whoever asked
    assert count_rows(settings, "portal_code") == 1  # only the one exact match got a code
    assert count_rows(settings, "message") == 1


def test_a_wrong_code_counts_and_five_end_the_code(practice, settings):
    with practice.browser() as b:
        ask(b, EMAIL, DOB)
        right = last_code(settings, practice.pat.id)
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        seq = max(r["seq"] for r in audit_rows(settings))
        r = enter(b, wrong)
        assert r.status_code == 400 and _h1s(r.text) == 1
        assert _error_under(r.text, "code").startswith("That code is not right")
        assert query(settings, "SELECT failed_tries FROM portal_code")[0]["failed_tries"] == 1
        failed = [r for r in audit_rows(settings, seq) if r["action"] == "signin_failed"]
        assert len(failed) == 1 and failed[0]["username"] == f"patient:{practice.pat.id}"
        assert failed[0]["patient_id"] == practice.pat.id and right not in (failed[0]["detail"] or "")
        for _ in range(4):
            assert enter(b, wrong).status_code == 400
        r = enter(b, right)  # too late: the code is spent
        assert r.status_code == 400 and "not right" in r.text
        assert count_rows(settings, "portal_session") == 0
        assert query(settings, "SELECT failed_tries FROM portal_code")[0]["failed_tries"] == 5


def test_an_expired_code_and_a_used_code_are_refused(practice, settings):
    from hpms.db import get_engine

    with practice.browser() as b:
        ask(b, EMAIL, DOB)
        code = last_code(settings, practice.pat.id)
        with get_engine(settings).begin() as conn:
            conn.exec_driver_sql("UPDATE portal_code SET expires_at = created_at")  # as if ten minutes went by
        r = enter(b, code)
        assert r.status_code == 400 and "not right, or it is no longer valid" in r.text
        assert count_rows(settings, "portal_session") == 0
    with practice.browser() as b:
        assert ask(b, EMAIL, DOB).status_code == 303
        pending = b.cookies.get("hpms_signin")
        code = last_code(settings, practice.pat.id)
        assert enter(b, code).headers["location"] == "/home"
        b.cookies.set("hpms_signin", pending)  # the pending sign-in, kept, and the same code again
        r = enter(b, code)
        assert r.status_code == 400 and "not right" in r.text
    assert count_rows(settings, "portal_session") == 1
    details = [r["detail"] for r in audit_rows(settings) if r["action"] == "signin_failed"]
    assert details == ["an expired code", "a used code"]


def test_bad_input_re_renders_the_form_with_the_fields_message_and_writes_nothing(practice, settings):
    with practice.browser() as b:
        token = csrf(b)
        before = _counts(settings)
        cases = [
            ("", DOB, "contact", "Is required: your email address or mobile number."),
            ("not-an-email@", DOB, "contact", "'not-an-email@' is not a valid e-mail address."),
            ("12", DOB, "contact", "Is neither an email address nor a mobile number"),
            (EMAIL, "", "dob", "Is required."),
            (EMAIL, "2100-01-01", "dob", "2100-01-01 is in the future."),
            (EMAIL, "9/9/84x", "dob", "'9/9/84x' is not a date (use YYYY-MM-DD)."),
        ]
        for contact, dob, field, message in cases:
            r = ask(b, contact, dob, token)
            assert r.status_code == 400, (contact, dob)
            assert _error_under(r.text, field).startswith(message)
            assert 'aria-invalid="true"' in r.text and _h1s(r.text) == 1
            assert f'value="{contact}"' in r.text  # what was typed stays in the form
        b.cookies.set("hpms_signin", "x" * 43)
        for code, message in (
            ("", "Is required: the 6 digits we sent you."),
            ("12ab56", "Is 6 digits."),
            ("1234567", "Is 6 digits."),
        ):
            r = enter(b, code)
            assert r.status_code == 400 and _error_under(r.text, "code") == message
        assert _counts(settings) == before


def test_posts_without_the_csrf_token_are_refused_and_write_nothing(practice, settings):
    with practice.browser() as b:
        sign_in(practice, b, practice.pat, EMAIL, DOB)
        before = _counts(settings)
        attempts = [
            b.post("/", data={"contact": EMAIL, "dob": DOB}),
            b.post("/", data={"contact": EMAIL, "dob": DOB, "csrf": "forged-" + "x" * 40}),
            b.post("/code", data={"code": "123456"}),
            b.post("/signout", data={}),
            b.post("/switch", data={"patient": str(practice.kid.id)}),
        ]
        for r in attempts:
            assert r.status_code == 403 and "This form has expired" in r.text and "Nothing was changed" in r.text
        with httpx.Client(base_url=practice.site.url) as other:  # another site's form: the token but no cookie
            other.cookies.set("hpms_session", b.cookies.get("hpms_session"))
            r = other.post("/signout", data={"csrf": b.cookies.get("hpms_csrf")})
            assert r.status_code == 403
        assert _counts(settings) == before
        assert b.get("/home").status_code == 200  # still signed in


def test_every_answer_carries_the_security_headers(practice):
    with practice.browser() as b:
        answers = {
            "/": b.get("/"),
            "/home": b.get("/home"),
            "/code": b.get("/code"),
            "/healthz": b.get("/healthz"),
            "/static/portal.css": b.get("/static/portal.css"),
            "/nowhere": b.get("/nowhere"),
            "post /": b.post("/", data={}),
        }
    assert [a.status_code for a in answers.values()] == [200, 303, 303, 200, 200, 404, 403]
    for path, r in answers.items():
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers.get("cache-control") == (None if path.startswith("/static") else "no-store"), path
    assert "<script" not in answers["/"].text and "style=" not in answers["/"].text
    assert answers["/static/portal.css"].headers["content-type"].startswith("text/css")


def test_sessions_end_when_idle_or_too_old_and_at_sign_out(practice, settings):
    from hpms.db import get_engine

    def age(column: str) -> None:
        with get_engine(settings).begin() as conn:
            conn.exec_driver_sql(
                f"UPDATE portal_session SET {column} = created_at - interval '1 minute'"
                if not settings.is_sqlite
                else f"UPDATE portal_session SET {column} = '2000-01-01 00:00:00.000000'"
            )

    for column in ("idle_expires_at", "expires_at"):
        with practice.browser() as b:
            sign_in(practice, b, practice.pat, EMAIL, DOB)
            assert b.get("/home").status_code == 200
            age(column)
            r = b.get("/home")
            assert r.status_code == 303 and r.headers["location"] == "/"
            assert count_rows(settings, "portal_session") == 0
    assert [r["action"] for r in audit_rows(settings) if r["entity"] == "portal_session"].count("expire") == 2
    with practice.browser() as b:
        sign_in(practice, b, practice.pat, EMAIL, DOB)
        seq = max(r["seq"] for r in audit_rows(settings))
        token = b.cookies.get("hpms_session")
        r = b.post("/signout", data={"csrf": b.cookies.get("hpms_csrf")})
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert 'hpms_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
        assert count_rows(settings, "portal_session") == 0
        [out] = [r for r in audit_rows(settings, seq) if r["action"] == "signout"]
        assert out["username"] == f"patient:{practice.pat.id}" and out["patient_id"] == practice.pat.id
        b.cookies.set("hpms_session", token)  # the old cookie, kept by someone
        assert b.get("/home").status_code == 303


def test_limits_per_patient_and_per_client_address(practice, settings):
    with practice.browser() as b:
        for _ in range(4):
            assert ask(b, EMAIL, DOB).status_code == 303
        assert count_rows(settings, "portal_code") == 3  # the fourth in 15 minutes sends nothing, says nothing
        denied = [r for r in audit_rows(settings) if r["action"] == "denied" and r["entity"] == "portal_code"]
        assert len(denied) == 1 and denied[0]["username"] == f"patient:{practice.pat.id}"
        for _ in range(6):  # ten attempts from this address in all
            assert ask(b, "nobody@example.org", DOB).status_code == 303
        before = _counts(settings)
        r = ask(b, EMAIL, DOB)
        assert r.status_code == 429 and "Too many attempts from this network" in r.text
        r = enter(b, "123456")
        assert r.status_code == 429
        assert _counts(settings) == before


def test_a_guardian_switches_to_a_linked_patient_only(practice, settings, cli):
    added = ok(cli("portal", "proxies", "add", "--guardian", practice.pat.mrn, "--patient", practice.kid.mrn, "--json"))
    assert added["guardian_id"] == practice.pat.id and added["patient_id"] == practice.kid.id
    with practice.browser() as b:
        sign_in(practice, b, practice.pat, EMAIL, DOB)
        home = b.get("/home").text
        assert '<label for="patient">' in home and "Kim Doe" in home
        seq = max(r["seq"] for r in audit_rows(settings))
        token = b.cookies.get("hpms_csrf")
        r = b.post("/switch", data={"csrf": token, "patient": str(practice.kid.id)})
        assert r.status_code == 303 and r.headers["location"] == "/home"
        home = b.get("/home").text
        assert "records of <strong>Kim Doe</strong>" in home and home.count("<li>") == 1
        reads = [r for r in audit_rows(settings, seq) if r["action"] == "read"]
        assert reads[-1]["username"] == f"patient:{practice.pat.id}" and reads[-1]["patient_id"] == practice.kid.id
        r = b.post("/switch", data={"csrf": token, "patient": str(practice.other.id)})
        assert r.status_code == 404 and "Alex" not in r.text
        assert any(r["action"] == "denied" for r in audit_rows(settings, seq))
        assert query(settings, "SELECT acting_for_id FROM portal_session")[0]["acting_for_id"] == practice.kid.id
        r = b.post("/switch", data={"csrf": token, "patient": "Kim"})
        assert r.status_code == 400 and "Choose one of the people listed" in r.text
        ok(cli("portal", "proxies", "remove", "--guardian", practice.pat.mrn, "--patient", practice.kid.mrn, "--json"))
        home = b.get("/home").text  # access ends at once: back to her own records
        assert "Kim" not in home and "Hello, Pat Doe" in home


def test_another_patients_session_sees_only_their_own_records(practice, settings):
    with practice.browser() as pat, practice.browser() as alex:
        sign_in(practice, pat, practice.pat, EMAIL, DOB)
        sign_in(practice, alex, practice.other, "alex.roe@example.org", "1990-02-02")
        mine = alex.get("/home").text
        assert "Hello, Alex Roe" in mine and "Pat Doe" not in mine and mine.count("<li>") == 1
        r = alex.post("/switch", data={"csrf": alex.cookies.get("hpms_csrf"), "patient": str(practice.pat.id)})
        assert r.status_code == 404
        assert "Pat Doe" not in alex.get("/home").text
        assert "Hello, Pat Doe" in pat.get("/home").text


def test_behind_tls_cookies_are_secure_and_host_only(practice, settings):
    practice.serve(portal_behind_tls=True)
    with practice.browser() as b:
        r = b.get("/")
        [cookie] = r.headers.get_list("set-cookie")
        assert cookie.startswith("__Host-hpms_csrf=") and "Secure" in cookie and "Path=/" in cookie
        assert "HttpOnly" in cookie and "Domain" not in cookie
        token = CSRF.search(r.text).group(1)  # type: ignore[union-attr]
        b.cookies.set("__Host-hpms_csrf", token)  # what a browser sends back over HTTPS
        r = b.post("/", data={"csrf": token, "contact": EMAIL, "dob": DOB})
        assert r.status_code == 303
        [pending] = r.headers.get_list("set-cookie")
        assert pending.startswith("__Host-hpms_signin=") and "Secure" in pending


def test_dev_codes_go_to_the_log_with_the_patients_id_only(practice, settings, caplog):
    practice.serve(portal_dev_codes=True)
    with caplog.at_level(logging.INFO, logger="hpms.portal"), practice.browser() as b:
        ask(b, EMAIL, DOB)
    code = last_code(settings, practice.pat.id)
    lines = [r.getMessage() for r in caplog.records if r.name == "hpms.portal"]
    assert any(code in line and f"patient {practice.pat.id}" in line for line in lines)
    assert not any(EMAIL in line or "Doe" in line or DOB in line for line in lines)
    practice.serve(portal_dev_codes=False)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hpms.portal"), practice.browser() as b:
        ask(b, EMAIL, DOB)
    assert not any(last_code(settings, practice.pat.id) in r.getMessage() for r in caplog.records)


def test_proxies_from_the_cli(practice, cli, settings):
    pat, kid = practice.pat.mrn, practice.kid.mrn
    assert ok(cli("portal", "proxies", "list", "--json")) == []
    ok(cli("portal", "proxies", "add", "--guardian", pat, "--patient", kid, "--json"))
    [link] = ok(cli("portal", "proxies", "list", "--patient", kid, "--json"))
    assert (link["guardian_mrn"], link["patient_mrn"], link["guardian"]) == (pat, kid, "Pat Doe")
    before = _counts(settings)
    error_line(cli("portal", "proxies", "add", "--guardian", pat, "--patient", kid), 4, "already act for")
    error_line(cli("portal", "proxies", "add", "--guardian", pat, "--patient", pat), 2, "--patient", "themself")
    error_line(cli("portal", "proxies", "add", "--guardian", "0999999", "--patient", kid), 3, "--guardian", "'0999999'")
    error_line(cli("portal", "proxies", "remove", "--guardian", kid, "--patient", pat), 3, "may not act for")
    assert {t: n for t, n in _counts(settings).items() if t != "audit_event"} == {
        t: n for t, n in before.items() if t != "audit_event"
    }
    r = cli("portal", "proxies", "remove", "--guardian", pat, "--patient", kid)
    assert r.exit_code == 0 and "may no longer act for" in r.stderr
    assert count_rows(settings, "portal_proxy") == 0
