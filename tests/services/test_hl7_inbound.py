"""ADT messages in, through the real MLLP listener on the loopback (a free port) and a real
client: recorded, then applied (a patient registered or updated when the match is certain,
staged for review when not), answered AA/AE/AR with MSA-2 the incoming control id; the same
message twice applies once; a frame in two writes, garbage, a frame never ended and a
connection dropped mid-frame leave the listener answering the next client."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from hpms.interop.hl7v2 import parse as hl7parse
from tests.conftest import count_rows
from tests.services.helpers import query

VT, FS_CR = b"\x0b", b"\x1c\x0d"
DATA = Path(__file__).resolve().parents[1] / "data" / "hl7"


def adt(control: str, *, trigger: str = "A04", mrn: str = "", authority: str = "HPMS", last: str = "Rivera",
        first: str = "Lucia", dob: str = "19750304", city: str = "Albany") -> str:  # fmt: skip
    pid3 = f"{mrn}^^^{authority}^MR" if mrn else f"EXT{control}^^^OTHERHOSP^MR"
    return (
        f"MSH|^~\\&|ADTAPP|GENHOSP|HPMS|RIVERSIDE|20260615120000+0000||ADT^{trigger}^ADT_A01|{control}|P|2.5.1\r"
        f"EVN|{trigger}|20260615120000+0000\r"
        f"PID|1||{pid3}||{last}^{first}||{dob}|F|||12 Elm St^^{city}^NY^12207^US||+15185550100^PRN^PH\r"
        "PV1|1|O\r"
    )


@pytest.fixture
def listener(settings):
    """The listener in a thread (as `hpms hl7 listen` runs it) on a free loopback port."""
    from hpms.services.interop.hl7 import listener as service

    stop = threading.Event()
    ready = threading.Event()
    bound: dict[str, int] = {}
    answers: list = []

    def on_ready(host: str, port: int) -> None:
        bound["port"] = port
        ready.set()

    thread = threading.Thread(
        target=service.listen,
        kwargs=dict(
            settings=settings,
            host="127.0.0.1",
            port=0,
            stop=stop,
            on_ready=on_ready,
            on_message=answers.append,
            idle_timeout=5,
        ),  # fmt: skip
        daemon=True,
    )
    thread.start()
    assert ready.wait(10)
    yield bound["port"], answers
    stop.set()
    thread.join(10)


def send(port: int, *chunks: bytes, read: bool = True) -> str | None:
    """Write the chunks (each its own send), then read one framed answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for c in chunks:
            s.sendall(c)
            time.sleep(0.05)
        if not read:
            return None
        buf = b""
        while FS_CR not in buf:
            got = s.recv(65536)
            if not got:
                return None
            buf += got
        return buf[buf.index(VT) + 1 : buf.index(FS_CR)].decode()


def frame(text: str) -> bytes:
    return VT + text.encode() + FS_CR


def ack_of(answer: str | None) -> hl7parse.Ack:
    assert answer is not None
    parsed = parse_message(answer, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert parsed.validate() is True
    return hl7parse.ack(answer)


def patients(settings) -> list[dict]:
    return query(settings, "SELECT mrn, first_name, last_name, city, phone FROM patient ORDER BY id")


def test_a_new_patient_is_registered_and_answered_aa(settings, listener):
    port, answers = listener
    ack = ack_of(send(port, frame(adt("MSG001"))))
    assert (ack.code, ack.control_id) == ("AA", "MSG001")
    (p,) = patients(settings)
    assert (p["first_name"], p["last_name"], p["city"], p["phone"]) == ("Lucia", "Rivera", "Albany", "+15185550100")
    (row,) = query(settings, "SELECT outcome, control_id, raw_enc FROM hl7_inbound")
    assert row["outcome"] == "created" and row["control_id"] == "MSG001"
    assert "Rivera" not in row["raw_enc"]  # kept encrypted
    assert answers[0].code == "AA" and answers[0].outcome == "created"


def test_the_same_message_twice_is_applied_once(settings, listener):
    port, _ = listener
    first = ack_of(send(port, frame(adt("MSG002"))))
    again = ack_of(send(port, frame(adt("MSG002", city="Troy"))))
    assert first.code == again.code == "AA" and again.control_id == "MSG002"
    assert [p["city"] for p in patients(settings)] == ["Albany"]
    assert count_rows(settings, "hl7_inbound") == 1


def test_an_update_by_mrn_changes_the_patient(settings, listener, register):
    port, _ = listener
    p = register(first_name="Lucia", last_name="Rivera", dob="1975-03-04")
    ack = ack_of(send(port, frame(adt("MSG003", trigger="A08", mrn=p.mrn, city="Troy"))))
    assert ack.code == "AA"
    (row,) = patients(settings)
    assert row["city"] == "Troy" and row["mrn"] == p.mrn
    (rec,) = query(settings, "SELECT outcome, note, patient_id FROM hl7_inbound")
    assert rec["outcome"] == "updated" and rec["patient_id"] == p.id
    assert "city" in rec["note"]
    events = query(settings, "SELECT action, detail FROM audit_event WHERE entity = 'patient' ORDER BY seq")
    assert events[-1]["action"] == "update" and "HL7 ADT^A08" in events[-1]["detail"]


def test_the_exact_name_and_birth_date_is_a_certain_match(settings, listener, register):
    port, _ = listener
    p = register(first_name="Lucia", last_name="Rivera", dob="1975-03-04")
    assert ack_of(send(port, frame(adt("MSG004", trigger="A31", city="Troy")))).code == "AA"
    assert [(r["mrn"], r["city"]) for r in patients(settings)] == [(p.mrn, "Troy")]


@pytest.mark.parametrize(
    "message, why",
    [
        (lambda: adt("MSG005", mrn="0999999"), "MRN 0999999 is not a patient"),
        (lambda: adt("MSG005", first="Luca"), "similar to MRN"),
    ],
)
def test_an_uncertain_match_is_staged_for_review(settings, listener, register, ctx_for, message, why):
    from hpms.services.interop.hl7 import inbound

    port, _ = listener
    p = register(first_name="Lucia", last_name="Rivera", dob="1975-03-04")
    assert ack_of(send(port, frame(message()))).code == "AA"  # taken; a person decides
    assert [r["city"] for r in patients(settings)] == [None]  # nothing applied
    with ctx_for() as ctx:
        (staged,) = inbound.list_inbound(ctx)
    assert staged.outcome == "staged" and why in staged.note
    with ctx_for() as ctx:
        out = inbound.accept(ctx, staged.id, patient=p.mrn)
    assert out.outcome == "updated" and out.handled_at is not None
    assert [r["city"] for r in patients(settings)] == ["Albany"]
    with ctx_for() as ctx:
        assert inbound.list_inbound(ctx) == []


def test_a_staged_message_may_be_dismissed_or_registered_as_new(settings, listener, register, ctx_for):
    from hpms.errors import ConflictError
    from hpms.services.interop.hl7 import inbound

    port, _ = listener
    register(first_name="Lucia", last_name="Rivera", dob="1975-03-04")
    send(port, frame(adt("MSG006", first="Luca")))
    send(port, frame(adt("MSG007", first="Luci")))
    with ctx_for() as ctx:
        second, first = inbound.list_inbound(ctx)
        inbound.dismiss(ctx, first.id)
        inbound.accept(ctx, second.id, new=True)
    assert [r["first_name"] for r in patients(settings)] == ["Lucia", "Luci"]
    with pytest.raises(ConflictError, match="dismissed"), ctx_for() as ctx:
        inbound.accept(ctx, first.id, new=True)


def test_what_hpms_cannot_take_is_answered_ae_and_recorded(settings, listener):
    port, _ = listener
    ack = ack_of(send(port, frame(adt("MSG008", dob="20990101"))))  # born in the future
    assert ack.code == "AE" and ack.control_id == "MSG008" and "dob" in ack.text
    assert count_rows(settings, "patient") == 0
    (row,) = query(settings, "SELECT outcome FROM hl7_inbound")
    assert row["outcome"] == "refused"


@pytest.mark.parametrize(
    "data, control",
    [
        (b"this is not HL7 at all", "UNKNOWN"),
        (b"MSH|^~\\&|LAB|X|HPMS|R|20260615||ORU^R01^ORU_R01|MSG009|P|2.5.1\rOBX|1\r", "MSG009"),
        (b"MSH|^~\\&|A|B|C|D|20260615||ADT^A04^ADT_A01|MSG010|P|2.5.1\rEVN|A04\r", "MSG010"),
    ],
)
def test_unparseable_or_unwanted_input_is_answered_ar_with_nothing_written(settings, listener, data, control):
    port, _ = listener
    before = count_rows(settings, "audit_event")
    ack = ack_of(send(port, VT + data + FS_CR))
    assert ack.code == "AR" and ack.control_id == control
    assert count_rows(settings, "hl7_inbound") == 0 and count_rows(settings, "patient") == 0
    assert count_rows(settings, "audit_event") == before


def test_a_frame_in_two_writes_is_taken_whole(settings, listener):
    port, _ = listener
    data = frame(adt("MSG011"))
    ack = ack_of(send(port, data[:40], data[40:]))
    assert (ack.code, ack.control_id) == ("AA", "MSG011")
    assert count_rows(settings, "patient") == 1


def test_garbage_a_frame_never_ended_and_a_dropped_connection_do_not_stop_the_listener(settings, listener):
    port, _ = listener
    send(port, b"\x00\xffrandom noise without any frame\r\n", read=False)
    send(port, VT + adt("MSG012").encode(), read=False)  # no end block: the client goes away
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:  # dropped mid-frame
        s.sendall(frame(adt("MSG013"))[:30])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    time.sleep(0.2)
    assert count_rows(settings, "hl7_inbound") == 0  # none of them was taken
    ack = ack_of(send(port, frame(adt("MSG014"))))
    assert (ack.code, ack.control_id) == ("AA", "MSG014")
    # two messages on one connection are answered in order
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(frame(adt("MSG015", last="Kim", first="Ann")) + frame(adt("MSG016", last="Kim", first="Bo")))
        buf = b""
        while buf.count(FS_CR) < 2:
            buf += s.recv(65536)
    controls = [hl7parse.ack(part.strip(b"\x0b\x1c\r").decode()).control_id for part in buf.split(FS_CR) if part]
    assert controls == ["MSG015", "MSG016"]


def test_another_systems_v28_registration_is_taken(settings, listener):
    port, _ = listener
    raw = (DATA / "ADT-A04-01.hl7").read_bytes().replace(b"\n", b"\r")
    ack = ack_of(send(port, VT + raw + FS_CR))
    assert (ack.code, ack.control_id) == ("AA", "MSG00001")
    (p,) = patients(settings)
    assert (p["first_name"], p["last_name"], p["city"]) == ("ADAM", "EVERYMAN", "Ann Arbor")


def test_only_an_admin_or_a_service_account_may_listen(settings, make_user, token_for):
    from hpms.errors import PermissionDenied
    from hpms.services.interop.hl7 import listener as service

    make_user("desk", "front_desk")
    env = {"HPMS_USER": "desk", "HPMS_TOKEN": token_for("desk")}
    with pytest.raises(PermissionDenied, match="take in HL7 messages"):
        service.listen(settings, host="127.0.0.1", port=0, stop=threading.Event(), env=env)
