"""SMS through a Twilio-compatible provider (a real HTTP server on loopback speaking the same
API and error codes), and `hpms messages worker`: one per database, stopped by SIGTERM after
the message in hand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.cli.conftest import subprocess_env
from tests.cli.helpers import error_line, ok
from tests.conftest import REPO, count_rows

PRACTICE_NUMBER = "+12125550100"


@pytest.fixture
def sms(cli, ctx_for, patient):
    """queue(number) puts an SMS for the test patient in the outbox; returns its id."""
    from hpms.services.lookups import find_patient
    from hpms.services.messages import outbox as box

    ok(cli("messages", "setup", "--sms-from", "212-555-0100", "--json"))

    def queue(number: str = "555-201-3344", body: str = "Reminder: visit tomorrow 9:00. Reply C to confirm.") -> int:
        with ctx_for() as ctx:
            msg = box.enqueue(
                ctx,
                channel="sms",
                recipient=number,
                body=body,
                template="reminder",
                patient_id=find_patient(ctx, patient).id,
            )
            assert msg.id is not None
            return msg.id

    return queue


def _by_id(cli) -> dict[int, dict]:
    return {m["id"]: m for m in ok(cli("messages", "list", "--json"))}


def test_an_sms_goes_to_the_provider_in_e164_from_the_practice_number(cli, sms, sms_sink):
    mid = sms("555-201-3344")
    assert ok(cli("messages", "setup", "--json"))["sms_from"] == PRACTICE_NUMBER
    data = ok(cli("messages", "send", "--json", env={"HPMS_SMS_URL": sms_sink.url}))
    assert data["sent"] == 1
    [request] = sms_sink.requests
    assert request == {
        "To": "+15552013344",
        "From": PRACTICE_NUMBER,
        "Body": "Reminder: visit tomorrow 9:00. Reply C to confirm.",
    }
    got = _by_id(cli)[mid]
    assert got["state"] == "sent" and got["provider_id"].startswith("SM") and got["recipient"] == "+15552013344"


def test_provider_refusals_by_their_codes(cli, sms, sms_sink):
    invalid = sms("+15550001111")
    stopped = sms("+15550002222")
    throttled = sms("+15550003333")
    sms_sink.invalid.add("+15550001111")
    sms_sink.unsubscribed.add("+15550002222")
    sms_sink.throttle = 1  # the first request (the invalid number's) is throttled
    data = ok(cli("messages", "send", "--json", env={"HPMS_SMS_URL": sms_sink.url}))
    assert (data["sent"], data["retried"], data["failed"]) == (1, 1, 1)
    got = _by_id(cli)
    assert got[invalid]["state"] == "queued" and "429 error 20429" in got[invalid]["error"]
    assert got[stopped]["state"] == "failed" and "error 21610" in got[stopped]["error"]
    assert got[throttled]["state"] == "sent"
    assert sms_sink.sent_to() == ["+15550003333"]


def test_an_invalid_number_fails_for_good(cli, sms, sms_sink):
    bad = sms("+15550001111")
    sms_sink.invalid.add("+15550001111")
    ok(cli("messages", "send", "--json", env={"HPMS_SMS_URL": sms_sink.url}))
    got = _by_id(cli)[bad]
    assert got["state"] == "failed" and "error 21211" in got["error"] and "not a valid phone number" in got["error"]


def test_wrong_credentials_are_retried_not_dropped(cli, sms, sms_sink):
    mid = sms()
    wrong = sms_sink.url.replace("test-auth-token", "wrong")
    ok(cli("messages", "send", "--json", env={"HPMS_SMS_URL": wrong}))
    got = _by_id(cli)[mid]
    assert got["state"] == "queued" and "401" in got["error"] and "auth token" in got["error"]
    assert sms_sink.requests == []


def test_sms_settings_are_checked(cli, sms, sms_sink):
    sms()
    assert ok(cli("messages", "send", "--json"))["not_set_up"]["sms"] == "sms_url: is not set: SMS cannot be sent"
    no_account = ok(cli("messages", "send", "--json", env={"HPMS_SMS_URL": "https://api.twilio.com"}))
    assert "names no account SID" in no_account["not_set_up"]["sms"]
    error_line(cli("messages", "setup", "--sms-from", "55-01"), 2, "--sms-from", "7 to 15 digits")
    error_line(cli("messages", "setup", "--sms-from", "44 20 7946 0958"), 2, "--sms-from", "no country code")


def test_an_sms_to_a_number_without_country_code_is_refused(ctx_for, sms, counts):
    from hpms.errors import ValidationError

    before = counts("message")
    with pytest.raises(ValidationError) as err:
        sms("44 20 7946 0958")
    assert err.value.field == "recipient" and "country code" in err.value.message
    assert counts("message") == before


def test_the_worker_sends_as_messages_come_and_stops_on_sigterm(settings, cli, sms, sms_sink):
    env = subprocess_env(
        settings.home, None if settings.is_sqlite else settings.database_url, HPMS_SMS_URL=sms_sink.url
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpms", "messages", "worker", "--interval", "0.2", "--json"],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while count_rows(settings, "job_lock") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        ids = [sms(f"+1555000{i:04d}") for i in range(3)]
        while len(sms_sink.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(sms_sink.sent_to()) == [f"+1555000{i:04d}" for i in range(3)]
        error_line(cli("messages", "send", env={"HPMS_SMS_URL": sms_sink.url}), 75, "another outbox sender")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    import json

    assert json.loads(out)["sent"] == 3
    assert count_rows(settings, "job_lock") == 0  # the lock went with it
    assert {m["id"]: m["state"] for m in ok(cli("messages", "list", "--json"))} == {i: "sent" for i in ids}
    assert os.environ.get("HPMS_SMS_URL") is None
