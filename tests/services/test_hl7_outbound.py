"""The HL7 outbox: messages queued in the event's transaction (SIU S12-S26 for visits, ADT
A04/A08/A40 for patients), nothing without a receiver, every one parsing strictly; the sender
over MLLP to a real loopback receiver (AA sent, AE/AR failed with the receiver's words, no ACK
or no listener retried later), in order per patient, into a folder (0600), and a sender that
died between handing a message over and recording it sending nothing twice."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from hpms.interop.hl7v2 import parse as hl7parse
from tests import hl7_server
from tests.conftest import count_rows
from tests.hl7_server import control_id
from tests.services.conftest import fixed_clock
from tests.services.helpers import audit_rows, last_seq, query
from tests.services.sched import book_one, clinic, utc

LATER = utc(2026, 6, 16, 18, 0)  # after the visit of 16 June 10:00 New York

hl7_receiver = hl7_server.hl7_receiver  # the loopback receiver, a fixture of these tests


def strict(text: str) -> None:
    assert parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate() is True


def aware(value) -> dt.datetime:
    """A time read back raw (SQLite gives text) as an aware UTC datetime."""
    x = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    return x if x.tzinfo else x.replace(tzinfo=dt.UTC)


def messages(settings) -> list[dict]:
    rows = query(settings, "SELECT * FROM hl7_message ORDER BY id")
    for r in rows:
        r["next_attempt_at"] = aware(r["next_attempt_at"])
    return rows


def add_mllp(ctx_for, port: int, name: str = "ehr", events: str = "siu,adt") -> None:
    from hpms.services.interop.hl7 import receivers

    with ctx_for() as ctx:
        receivers.add(ctx, name=name, host="127.0.0.1", port=port, events=events)


def send(settings, **kw):
    from hpms.services.interop.hl7 import outbound

    kw.setdefault("timeout", 0.5)
    return outbound.send_due(settings, **kw)


def test_without_a_receiver_nothing_is_queued(settings, ctx_for, register):
    c = clinic(ctx_for, register)
    book_one(ctx_for, c, "2026-06-16 10:00")
    register(first_name="Other", last_name="Person")
    assert count_rows(settings, "hl7_message") == 0


def test_each_event_queues_its_message_for_each_receiver(settings, ctx_for, register, tmp_path):
    from hpms.services.interop.hl7 import receivers
    from hpms.services.people import patients
    from hpms.services.scheduling import appointments, lifecycle

    with ctx_for() as ctx:
        receivers.add(ctx, name="ehr", host="127.0.0.1", port=2575, receiving_app="EPIC", receiving_facility="GEN")
        receivers.add(ctx, name="lab", folder=str(tmp_path), events="adt")
    c = clinic(ctx_for, register)  # registers the patient: A04 to both
    a = book_one(ctx_for, c, "2026-06-16 10:00")
    with ctx_for(clock=fixed_clock) as ctx:
        lifecycle.transition(ctx, a.id, "confirm")
        appointments.reschedule(ctx, a.id, at="2026-06-16 11:00")
        patients.update(ctx, c.mrn, phone="+12125550199")
        b = appointments.book(ctx, patient=c.mrn, provider=c.provider, type=c.type, at="2026-06-17 10:00").booked[0]
        appointments.cancel(ctx, b.id, reason="patient called")
    with ctx_for(clock=lambda: LATER) as ctx:
        lifecycle.transition(ctx, a.id, "noshow")
    dup = register(first_name="Patty", last_name="Doe")
    with ctx_for(clock=lambda: LATER) as ctx:
        patients.merge(ctx, c.mrn, dup.mrn)
    rows = messages(settings)
    by_receiver: dict[int, list[str]] = {}
    for r in rows:
        by_receiver.setdefault(r["receiver_id"], []).append(r["event"])
    ehr, lab = sorted(by_receiver)
    assert by_receiver[ehr] == ["A04", "S12", "S14", "S13", "A08", "S12", "S15", "S26", "A04", "A40"]
    assert by_receiver[lab] == ["A04", "A08", "A04", "A40"]
    assert len({r["control_id"] for r in rows}) == len(rows)  # unique control ids
    for r in rows:
        strict(r["body"])
        p = hl7parse.split(r["body"])
        assert p.value("MSH", 10) == r["control_id"] == str(r["id"])
        assert p.value("MSH", 3) == "HPMS" and p.value("MSH", 4) == "Test Clinic"
        assert p.value("MSH", 7).endswith("+0000")
        assert p.value("PID", 3, 4) == "HPMS" and p.value("PID", 3, 5) == "MR"
        if r["receiver_id"] == ehr:
            assert (p.value("MSH", 5), p.value("MSH", 6)) == ("EPIC", "GEN")
    moved = hl7parse.split(next(r["body"] for r in rows if r["event"] == "S13"))
    assert moved.value("TQ1", 7) == "20260616150000+0000"  # 11:00 EDT
    merged = hl7parse.split(rows[-1]["body"])
    assert merged.value("PID", 3) == c.mrn and merged.value("MRG", 1) == dup.mrn
    assert all(r["state"] == "queued" for r in rows)


def test_a_queued_message_is_rolled_back_with_its_event(settings, ctx_for, register):
    from hpms.errors import ValidationError
    from hpms.services.people import patients

    add_mllp(ctx_for, 2575)
    with pytest.raises(ValidationError), ctx_for(clock=fixed_clock) as ctx:
        patients.register(ctx, first_name="Ann", last_name="Lee", dob="1990-01-01")
        raise ValidationError("x", "the event fails after its message was queued")
    assert count_rows(settings, "hl7_message") == 0 and count_rows(settings, "patient") == 0


def test_the_sender_delivers_over_mllp_and_records_the_ack(settings, ctx_for, register, hl7_receiver):
    add_mllp(ctx_for, hl7_receiver.port)
    register(first_name="Ann", last_name="Lee")
    summary = send(settings)
    assert summary.as_dict() == {"sent": 1, "retried": 0, "failed": 0, "found_unknown": 0, "due": 0}
    (row,) = messages(settings)
    assert hl7_receiver.received == [row["body"]]
    assert (row["state"], row["ack_code"], row["attempts"]) == ("sent", "AA", 1)
    (rx,) = query(settings, "SELECT last_ack_code, last_ack_at FROM hl7_receiver")
    assert rx["last_ack_code"] == "AA" and rx["last_ack_at"] is not None


@pytest.mark.parametrize("code", ["AE", "AR"])
def test_a_refusal_fails_for_good_with_the_receivers_words(settings, ctx_for, register, hl7_receiver, code):
    from hpms.services.interop.hl7 import outbound

    add_mllp(ctx_for, hl7_receiver.port)
    hl7_receiver.answers = [code]
    register(first_name="Ann", last_name="Lee")
    assert send(settings).failed == 1
    (row,) = messages(settings)
    assert row["state"] == "failed" and row["ack_code"] == code
    assert row["error"] == f"the receiver answered {code}: PID-3 unknown patient"
    with ctx_for() as ctx:
        assert [m.id for m in outbound.list_messages(ctx, state="failed")] == [row["id"]]
        status = outbound.status(ctx)
    assert status[0]["failed"] == 1 and status[0]["queued"] == 0 and status[0]["last_ack_code"] == code
    with ctx_for() as ctx:
        outbound.resend(ctx, row["id"])
    assert send(settings).sent == 1
    assert [control_id(m) for m in hl7_receiver.received] == [row["control_id"]] * 2  # same control id


def test_no_ack_in_time_or_no_listener_is_retried_with_a_growing_delay(settings, ctx_for, register, hl7_receiver):
    add_mllp(ctx_for, hl7_receiver.port)
    hl7_receiver.answers = ["silent"]
    register(first_name="Ann", last_name="Lee")
    t0 = dt.datetime.now(dt.UTC)
    assert send(settings).retried == 1
    (row,) = messages(settings)
    assert row["state"] == "queued" and row["attempts"] == 1
    assert "no acknowledgement within 0.5 s" in row["error"]
    assert dt.timedelta(seconds=50) < row["next_attempt_at"] - t0 < dt.timedelta(seconds=70)  # 1 minute
    # nothing listens on the port any more: refused connection, retried later, 2 minutes then
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    from hpms.db import get_engine

    with get_engine(settings).begin() as conn:
        conn.exec_driver_sql(f"UPDATE hl7_receiver SET port = {dead}")
    later = row["next_attempt_at"] + dt.timedelta(seconds=1)
    assert send(settings, clock=lambda: later).retried == 1
    (row,) = messages(settings)
    assert row["attempts"] == 2 and "cannot connect" in row["error"]
    assert row["next_attempt_at"] - later == dt.timedelta(minutes=2) - dt.timedelta(seconds=0)


def test_the_delay_doubles_up_to_six_hours():
    from hpms.services.messages.outbox import retry_delay

    assert [retry_delay(n) for n in (1, 2, 3, 10, 30)] == [
        dt.timedelta(minutes=1),
        dt.timedelta(minutes=2),
        dt.timedelta(minutes=4),
        dt.timedelta(hours=6),
        dt.timedelta(hours=6),
    ]


def test_a_patients_messages_go_in_order(settings, ctx_for, register, hl7_receiver):
    from hpms.services.people import patients

    add_mllp(ctx_for, hl7_receiver.port, events="adt")
    first = register(first_name="Ann", last_name="Lee")
    with ctx_for(clock=fixed_clock) as ctx:
        patients.update(ctx, first.mrn, city="Albany")
    other = register(first_name="Bob", last_name="Ray")
    hl7_receiver.answers = ["silent"]  # Ann's A04 gets no answer
    summary = send(settings)
    # Ann's A08 waits behind her A04; Bob's A04 goes
    assert (summary.sent, summary.retried) == (1, 1)
    assert [control_id(m) for m in hl7_receiver.received][-1] == str(messages(settings)[2]["id"])
    ann = [r for r in messages(settings) if r["patient_id"] == first.id]
    assert [(r["event"], r["state"], r["attempts"]) for r in ann] == [("A04", "queued", 1), ("A08", "queued", 0)]
    # once it is due again and goes, the A08 follows it in the same pass
    due = ann[0]["next_attempt_at"] + dt.timedelta(seconds=1)
    assert send(settings, clock=lambda: due).sent == 2
    events = [hl7parse.split(m).value("MSH", 9, 2) for m in hl7_receiver.received]
    assert events == ["A04", "A04", "A04", "A08"]  # Ann's silent one, Bob's, Ann's again, then her A08
    assert other.id != first.id


def test_a_failed_message_lets_the_next_one_go(settings, ctx_for, register, hl7_receiver):
    from hpms.services.people import patients

    add_mllp(ctx_for, hl7_receiver.port, events="adt")
    p = register(first_name="Ann", last_name="Lee")
    with ctx_for(clock=fixed_clock) as ctx:
        patients.update(ctx, p.mrn, city="Albany")
    hl7_receiver.answers = ["AE"]
    summary = send(settings)
    assert (summary.failed, summary.sent) == (1, 1)
    assert [r["state"] for r in messages(settings)] == ["failed", "sent"]


def test_a_folder_receiver_gets_one_private_file_per_message(settings, ctx_for, register, tmp_path):
    from hpms.services.interop.hl7 import receivers

    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    with ctx_for() as ctx:
        receivers.add(ctx, name="files", folder=str(tmp_path))
    c = clinic(ctx_for, register)
    book_one(ctx_for, c, "2026-06-16 10:00")
    assert send(settings).sent == 2
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == [f"hpms-{r['control_id']}-{r['event']}.hl7" for r in messages(settings)]
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
        strict(f.read_bytes().decode())
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no temp file left


def test_a_sender_that_died_after_handing_over_sends_nothing_twice(settings, ctx_for, register, hl7_receiver):
    """The claim is committed, the message handed over, then the process dies before it
    records the answer: the next sender finds the claim of a dead process; the message becomes
    `unknown` (never sent again on its own), and the patient's next message waits for staff."""
    from hpms.db import get_engine
    from hpms.services.interop.hl7 import outbound
    from hpms.services.people import patients

    add_mllp(ctx_for, hl7_receiver.port, events="adt")
    p = register(first_name="Ann", last_name="Lee")
    with ctx_for(clock=fixed_clock) as ctx:
        patients.update(ctx, p.mrn, city="Albany")
    with ctx_for() as ctx:
        claimed = outbound.claim(ctx, limit=10)
    assert [c.event for c in claimed] == ["A04"]  # the A08 waits behind it
    where = outbound.Destination("mllp", "127.0.0.1", hl7_receiver.port, None)
    assert outbound.deliver(where, claimed[0], timeout=2).ack == "AA"  # it went ...
    with get_engine(settings).begin() as conn:  # ... and its sender died before settling it
        conn.exec_driver_sql("UPDATE hl7_message SET claimed_by = 'nowhere:1' WHERE state = 'sending'")
        conn.exec_driver_sql(
            "UPDATE hl7_message SET claimed_at = :t WHERE state = 'sending'".replace(":t", "'2026-01-01 00:00:00'")
        )
    summary = send(settings)
    assert summary.found_unknown == 1 and summary.sent == 0
    assert [r["state"] for r in messages(settings)] == ["unknown", "queued"]
    assert len(hl7_receiver.received) == 1  # not sent twice
    assert send(settings).sent == 0  # still held: its fate is for staff to settle
    with ctx_for() as ctx:
        assert [(m.id, m.state, m.message_type) for m in outbound.for_staff(ctx)] == [
            (claimed[0].id, "unknown", "ADT^A04")
        ]
        outbound.resend(ctx, claimed[0].id)
    assert send(settings).sent == 2
    assert [hl7parse.split(m).value("MSH", 9, 2) for m in hl7_receiver.received] == ["A04", "A04", "A08"]


def test_a_removed_receiver_gets_nothing_more(settings, ctx_for, register, hl7_receiver):
    from hpms.services.interop.hl7 import outbound, receivers

    add_mllp(ctx_for, hl7_receiver.port)
    register(first_name="Ann", last_name="Lee")
    with ctx_for() as ctx:
        out = receivers.remove(ctx, "ehr")
    assert out == {"name": "ehr", "removed": True, "withdrawn": 1}
    register(first_name="Bob", last_name="Ray")
    assert [r["state"] for r in messages(settings)] == ["cancelled"]
    assert send(settings).sent == 0 and hl7_receiver.received == []
    with ctx_for() as ctx:
        assert outbound.status(ctx) == []


def test_staff_see_the_failed_messages_and_a_removed_receivers_are_not_sent_again(
    settings, ctx_for, register, hl7_receiver
):
    """What waits for staff: failed (here refused) or unknown, newest first, read as a list of
    the patients concerned; one of a receiver since removed stays there, marked, and is not
    queued again (it would wait for ever) until the receiver is added again."""
    from hpms.errors import ConflictError
    from hpms.services.interop.hl7 import outbound, receivers

    add_mllp(ctx_for, hl7_receiver.port, name="ehr", events="adt")
    add_mllp(ctx_for, hl7_receiver.port, name="lab", events="adt")
    p = register(first_name="Ann", last_name="Lee")
    register(first_name="Bob", last_name="Ray")
    hl7_receiver.answers = ["AE", "AE"]  # Ann's A04 to both; Bob's go
    summary = send(settings)
    assert (summary.failed, summary.sent) == (2, 2)
    with ctx_for() as ctx:
        receivers.remove(ctx, "lab")
    seq = last_seq(settings)
    with ctx_for() as ctx:
        shown = outbound.for_staff(ctx)
    assert [(m.receiver, m.receiver_active, m.mrn, m.message_type, m.state) for m in shown] == [
        ("lab", False, p.mrn, "ADT^A04", "failed"),
        ("ehr", True, p.mrn, "ADT^A04", "failed"),
    ]
    (read,) = audit_rows(settings, seq)
    assert (read["action"], read["entity"], read["patient_ids_list"]) == ("list", "hl7_message", [p.id])
    lab, ehr = shown
    with pytest.raises(ConflictError, match="'lab', which was removed") as err, ctx_for() as ctx:
        outbound.resend(ctx, lab.id)
    assert err.value.hint == "add the receiver again to send to it"
    with ctx_for() as ctx:
        again = outbound.resend(ctx, ehr.id)
    assert (again.state, again.receiver, again.message_type) == ("queued", "ehr", "ADT^A04")
    assert [m["state"] for m in messages(settings) if m["id"] == lab.id] == ["failed"]
    add_mllp(ctx_for, hl7_receiver.port, name="lab", events="adt")
    with ctx_for() as ctx:
        assert outbound.resend(ctx, lab.id).state == "queued"
        assert outbound.for_staff(ctx) == []
    assert send(settings).sent == 2


def test_bad_receivers_are_refused_and_nothing_is_written(settings, ctx_for, tmp_path):
    from hpms.errors import ConflictError, ValidationError
    from hpms.services.interop.hl7 import receivers

    cases = [
        (dict(name="x"), "host", "give a host and port, or a folder"),
        (dict(name="x", host="h", port=1, folder=str(tmp_path)), "host", "or a folder"),
        (dict(name="x", host="h", port=70000), "port", "65535"),
        (dict(name="x", host="bad host", port=1), "host", "not a host"),
        (dict(name="x y", host="h", port=1), "name", "letters"),
        (dict(name="x", folder=str(tmp_path / "nope")), "folder", "does not exist"),
        (dict(name="x", host="h", port=1, events="siu,orm"), "events", "'orm'"),
        (dict(name="x", host="h", port=1, receiving_app="A|B"), "receiving_app", "without"),
    ]
    for kw, field, said in cases:
        with pytest.raises(ValidationError) as err, ctx_for() as ctx:
            receivers.add(ctx, **kw)
        assert err.value.field == field and said in err.value.message, kw
    assert count_rows(settings, "hl7_receiver") == 0
    with ctx_for() as ctx:
        receivers.add(ctx, name="x", host="h", port=1)
    with pytest.raises(ConflictError, match="exists"), ctx_for() as ctx:
        receivers.add(ctx, name="x", host="h", port=2)
    assert count_rows(settings, "hl7_receiver") == 1


def test_who_may_set_up_send_and_read(settings, ctx_for, make_user, token_for):
    from hpms.errors import PermissionDenied
    from hpms.services.interop.hl7 import outbound, receivers

    make_user("desk", "front_desk")
    with pytest.raises(PermissionDenied, match="set up the HL7 interfaces"), ctx_for("desk") as ctx:
        receivers.add(ctx, name="x", host="h", port=1)
    with ctx_for("desk") as ctx:
        assert outbound.status(ctx) == []
    with pytest.raises(PermissionDenied, match="send the HL7 outbox"):
        outbound.send_due(settings, env={"HPMS_USER": "desk", "HPMS_TOKEN": token_for("desk")})
    assert count_rows(settings, "hl7_receiver") == 0


def test_the_worker_sends_holds_the_lock_and_stops_when_told(settings, ctx_for, register, hl7_receiver):
    import threading

    from hpms.errors import LockHeldError
    from hpms.services.interop.hl7 import outbound

    add_mllp(ctx_for, hl7_receiver.port)
    register(first_name="Ann", last_name="Lee")
    stop, passed = threading.Event(), threading.Event()
    seen: list = []

    def on_pass(summary) -> None:
        seen.append(summary.sent)
        passed.set()

    worker = threading.Thread(
        target=lambda: seen.append(
            outbound.work(settings, stop=stop, interval_s=0.05, timeout=2, on_pass=on_pass).as_dict()
        )
    )
    worker.start()
    assert passed.wait(20)
    with pytest.raises(LockHeldError):  # one sender per database while the worker runs
        outbound.send_due(settings)
    stop.set()
    worker.join(20)
    assert seen[0] == 1 and seen[-1]["sent"] == 1
    assert [r["state"] for r in messages(settings)] == ["sent"]
    assert send(settings).sent == 0  # the lock was given back
