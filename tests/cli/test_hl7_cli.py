"""`hpms hl7` and `hpms interfaces`: receivers added, listed and removed; bad input refused
with the field named and nothing written; `hl7 send` into a folder and to a real MLLP
receiver on the loopback; the status per receiver; a resend; the review list of messages
received; the listener refused to a user who may not run it."""

from __future__ import annotations

import os
import stat

from tests import hl7_server
from tests.cli.helpers import error_line, ok, tsv
from tests.conftest import count_rows

hl7_receiver = hl7_server.hl7_receiver  # the loopback receiver, a fixture of these tests


def test_receivers_are_added_listed_and_removed(cli, settings, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    added = ok(cli("hl7", "receivers", "add", "files", "--folder", str(out), "--events", "adt", "--json"))
    assert added["kind"] == "folder" and added["events"] == "adt" and added["receiving_app"] == "FILES"
    ok(cli("hl7", "receivers", "add", "ehr", "--host", "127.0.0.1", "--port", "2575", "--app", "EPIC", "--json"))
    rows = ok(cli("hl7", "receivers", "list", "--json"))
    assert [(r["name"], r["kind"], r["events"]) for r in rows] == [
        ("ehr", "mllp", "siu,adt"),
        ("files", "folder", "adt"),
    ]
    header, lines = tsv(cli("hl7", "receivers", "list").stdout)
    assert header[0] == "Name" and [r[0] for r in lines] == ["ehr", "files"]
    removed = ok(cli("hl7", "receivers", "remove", "ehr", "--json"))
    assert removed == {"name": "ehr", "removed": True, "withdrawn": 0}
    assert [r["name"] for r in ok(cli("hl7", "receivers", "list", "--json"))] == ["files"]
    error_line(cli("hl7", "receivers", "remove", "ehr"), 3, "'ehr'")


def test_bad_receivers_are_refused_and_nothing_is_written(cli, settings, tmp_path):
    cases = [
        (("x",), 2, ("--host", "a folder")),
        (("x", "--host", "h", "--port", "0"), 2, ("--port", "65535")),
        (("x", "--folder", str(tmp_path / "missing")), 2, ("--folder", "does not exist")),
        (("x", "--host", "h", "--port", "1", "--events", "orm"), 2, ("--events", "'orm'")),
        (("x", "--host", "h", "--port", "1", "--app", "A^B"), 2, ("--app",)),
    ]
    before = count_rows(settings, "hl7_receiver")
    for args, code, words in cases:
        error_line(cli("hl7", "receivers", "add", *args), code, *words)
    assert count_rows(settings, "hl7_receiver") == before == 0
    ok(cli("hl7", "receivers", "add", "x", "--host", "h", "--port", "1"))
    error_line(cli("hl7", "receivers", "add", "x", "--host", "h", "--port", "2"), 4, "exists")
    assert count_rows(settings, "hl7_receiver") == 1


def test_send_into_a_folder_and_the_status(cli, settings, tmp_path, patient):
    out = tmp_path / "out"
    out.mkdir()
    ok(cli("hl7", "receivers", "add", "files", "--folder", str(out)))
    ok(cli("patients", "update", patient, "--city", "Albany", "--json"))  # A08
    summary = ok(cli("hl7", "send", "--json"))
    assert summary == {"sent": 1, "retried": 0, "failed": 0, "found_unknown": 0, "due": 0}
    (f,) = out.iterdir()
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600 and f.name.endswith("-A08.hl7")
    assert f"PID|1||{patient}^^^HPMS^MR" in f.read_bytes().decode()
    (st,) = ok(cli("interfaces", "status", "--json"))
    assert (st["receiver"], st["queued"], st["failed"], st["sent"]) == ("files", 0, 0, 1)
    assert st["last_ack_at"] is None  # a folder gives no ACK
    (m,) = ok(cli("hl7", "list", "--json"))
    assert (m["event"], m["state"], m["mrn"], m["receiver"]) == ("A08", "sent", patient, "files")
    r = cli("hl7", "send")
    assert r.exit_code == 0 and "sent 0" in r.stderr


def test_a_refused_message_is_resent(cli, settings, patient, hl7_receiver):
    hl7_receiver.answers = ["AR"]
    ok(cli("hl7", "receivers", "add", "ehr", "--host", "127.0.0.1", "--port", str(hl7_receiver.port)))
    ok(cli("patients", "update", patient, "--city", "Albany", "--json"))
    assert ok(cli("hl7", "send", "--json", "--timeout", "5"))["failed"] == 1
    (m,) = ok(cli("hl7", "list", "--state", "failed", "--json"))
    assert m["ack_code"] == "AR" and "PID-3 unknown patient" in m["error"]
    (st,) = ok(cli("interfaces", "status", "--json"))
    assert (st["failed"], st["last_ack_code"]) == (1, "AR") and st["last_ack_at"]
    assert ok(cli("hl7", "resend", str(m["id"]), "--json"))["state"] == "queued"
    error_line(cli("hl7", "resend", str(m["id"])), 4, "queued")
    error_line(cli("hl7", "resend", "9999"), 3, "9999")
    assert ok(cli("hl7", "send", "--json", "--timeout", "5"))["sent"] == 1
    assert len(hl7_receiver.received) == 2


def test_a_message_to_a_removed_receiver_is_not_resent(cli, settings, patient, hl7_receiver):
    hl7_receiver.answers = ["AE"]
    ok(cli("hl7", "receivers", "add", "ehr", "--host", "127.0.0.1", "--port", str(hl7_receiver.port)))
    ok(cli("patients", "update", patient, "--city", "Albany", "--json"))
    assert ok(cli("hl7", "send", "--json", "--timeout", "5"))["failed"] == 1
    ok(cli("hl7", "receivers", "remove", "ehr", "--json"))
    (m,) = ok(cli("hl7", "list", "--state", "failed", "--json"))
    assert (m["receiver"], m["receiver_active"], m["message_type"]) == ("ehr", False, "ADT^A08")
    error_line(cli("hl7", "resend", str(m["id"])), 4, "'ehr', which was removed")
    (again,) = ok(cli("hl7", "list", "--state", "failed", "--json"))  # nothing changed
    assert (again["id"], again["attempts"], again["error"]) == (m["id"], m["attempts"], m["error"])
    assert len(hl7_receiver.received) == 1


def test_bad_send_and_list_options_are_refused(cli, settings):
    error_line(cli("hl7", "send", "--limit", "0"), 2, "--limit")
    error_line(cli("hl7", "list", "--state", "lost"), 2, "--state", "'lost'")
    error_line(cli("hl7", "listen", "--port", "70000"), 2, "--port")


def test_the_review_list_starts_empty(cli, settings):
    assert ok(cli("hl7", "inbound", "list", "--json")) == []
    assert ok(cli("hl7", "inbound", "list", "--all", "--json")) == []
    error_line(cli("hl7", "inbound", "dismiss", "42"), 3, "42")
    error_line(cli("hl7", "inbound", "accept", "42"), 2, "--patient")


def test_who_may_do_what(cli, settings, make_user, token_for):
    make_user("desk", "front_desk")
    env = {"HPMS_USER": "desk", "HPMS_TOKEN": token_for("desk")}
    error_line(cli("hl7", "receivers", "add", "x", "--host", "h", "--port", "1", env=env), 5, "admin")
    error_line(cli("hl7", "send", env=env), 5, "send the HL7 outbox")
    error_line(cli("hl7", "listen", "--port", "0", env=env), 5, "take in HL7 messages")
    assert ok(cli("interfaces", "status", "--json", env=env)) == []
    assert count_rows(settings, "hl7_receiver") == 0


def test_the_listener_runs_answers_and_stops_on_sigterm(settings):
    """`hpms hl7 listen` as a real process on a free port: says where it listens, answers a
    registration with AA, logs ids only, and exits 0 on SIGTERM."""
    import json
    import signal
    import socket
    import subprocess
    import sys

    from tests.cli.conftest import subprocess_env
    from tests.conftest import REPO

    env = subprocess_env(settings.home, None if settings.is_sqlite else settings.database_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpms", "hl7", "listen", "--port", "0", "--json"],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        message = (
            "MSH|^~\\&|ADTAPP|GENHOSP|HPMS|R|20260615120000+0000||ADT^A04^ADT_A01|CLI001|P|2.5.1\r"
            "EVN|A04|20260615120000+0000\rPID|1||X1^^^OTHER^MR||Rivera^Lucia||19750304|F\rPV1|1|O\r"
        )
        with socket.create_connection(("127.0.0.1", ready["port"]), timeout=30) as s:
            s.sendall(b"\x0b" + message.encode() + b"\x1c\x0d")
            answer = b""
            while b"\x1c\x0d" not in answer:
                answer += s.recv(65536)
        assert "MSA|AA|CLI001" in answer.decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "created: ACK AA" in err and "Rivera" not in err and "stopped: 1 message(s) answered" in err
    assert count_rows(settings, "patient") == 1


def test_a_sender_killed_while_waiting_for_the_ack_sends_nothing_twice(cli, settings, patient, hl7_receiver):
    """SIGKILL while the receiver holds the message (no ACK yet): the next `hl7 send` finds the
    dead sender's claim, marks that message unknown, sends nothing again; the patient's next
    message waits until staff resend the first."""
    import signal
    import subprocess
    import sys
    import time

    from tests.cli.conftest import subprocess_env
    from tests.conftest import REPO

    hl7_receiver.answers = ["silent"]
    ok(cli("hl7", "receivers", "add", "ehr", "--host", "127.0.0.1", "--port", str(hl7_receiver.port)))
    ok(cli("patients", "update", patient, "--city", "Albany", "--json"))
    ok(cli("patients", "update", patient, "--city", "Troy", "--json"))
    env = subprocess_env(settings.home, None if settings.is_sqlite else settings.database_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpms", "hl7", "send", "--timeout", "60"],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not hl7_receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert len(hl7_receiver.received) == 1, "the sender finished before it could be killed"
    summary = ok(cli("hl7", "send", "--json", "--timeout", "5"))
    assert summary["found_unknown"] == 1 and summary["sent"] == 0
    states = [m["state"] for m in ok(cli("hl7", "list", "--json"))]
    assert states == ["queued", "unknown"]  # newest first: the second waits behind the unknown one
    assert len(hl7_receiver.received) == 1  # nothing went twice
    (unknown,) = ok(cli("hl7", "list", "--state", "unknown", "--json"))
    ok(cli("hl7", "resend", str(unknown["id"]), "--json"))
    assert ok(cli("hl7", "send", "--json", "--timeout", "5"))["sent"] == 2


def test_the_sending_names_come_from_the_config_file(cli, settings, tmp_path, patient):
    config = settings.home / "config.toml"
    config.write_text(
        'hl7_sending_app = "CLINICAPP"\nhl7_sending_facility = "RIVERSIDE"\nhl7_assigning_authority = "RVS"\n'
    )
    out = tmp_path / "out"
    out.mkdir()
    shown = ok(cli("config", "show", "--json"))
    assert (shown["hl7_sending_app"], shown["hl7_sending_facility"]) == ("CLINICAPP", "RIVERSIDE")
    ok(cli("hl7", "receivers", "add", "files", "--folder", str(out)))
    ok(cli("patients", "update", patient, "--city", "Albany", "--json"))
    ok(cli("hl7", "send", "--json"))
    (f,) = out.iterdir()
    text = f.read_bytes().decode()
    assert text.startswith("MSH|^~\\&|CLINICAPP|RIVERSIDE|FILES|FILES|")
    assert f"PID|1||{patient}^^^RVS^MR" in text
    config.write_text('hl7_sending_app = "A|B"\n')
    error_line(cli("hl7", "send"), 2, "hl7_sending_app")
