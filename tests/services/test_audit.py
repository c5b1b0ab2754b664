"""The audit trail: one event per touch of patient data, in the same transaction, never a PHI
value, hash-chained so that edits and deletions made behind the application's back show."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hpms.db import get_engine
from hpms.models import AuditEvent
from tests.services.conftest import fixed_clock
from tests.services.helpers import audit_rows, audit_text, last_seq, snapshot

ANA = dict(
    first_name="Ana",
    last_name="Müller",
    middle_name="Beatriz",
    preferred_name="Zuzu",
    dob="1985-03-14",
    phone="(555) 867-5309",
    email="ana.mueller@example.org",
    address_line1="12 Quillfeather Lane",
    city="Springfield",
    postal_code="12345",
    ssn="287-65-4321",
    sex_at_birth="female",
    gender_identity="woman",
)


class Rollback(Exception):
    pass


def _events_in_session(ctx, after: int) -> list[AuditEvent]:
    return list(ctx.session.scalars(sa.select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)))


# Each operation: (name, function(ctx, world) -> None, expected [(action, entity)], patient refs)
def _op_register(ctx, w):
    from hpms.services.people import patients

    patients.register(ctx, first_name="Cleo", last_name="Vantongeren", dob="1999-09-09")


def _op_show(ctx, w):
    from hpms.services.people import patients

    patients.show(ctx, w["ana"].mrn)


def _op_show_reveal(ctx, w):
    from hpms.services.people import patients

    patients.show(ctx, w["ana"].mrn, reveal_ssn=True)


def _op_update(ctx, w):
    from hpms.services.people import patients

    patients.update(ctx, w["ana"].mrn, phone="555-222-3333", city="Shelbyville")


def _op_list(ctx, w):
    from hpms.services.people import patients

    patients.list_patients(ctx)


def _op_search(ctx, w):
    from hpms.services.people import patients

    patients.search(ctx, "mul")


def _op_search_ssn(ctx, w):
    from hpms.services.people import patients

    patients.search(ctx, "287-65-4321")


def _op_duplicates(ctx, w):
    from hpms.services.people import patients

    patients.duplicates(ctx)


def _op_merge(ctx, w):
    from hpms.services.people import patients

    patients.merge(ctx, w["ana"].mrn, w["dup"].mrn)


def _op_coverage_add(ctx, w):
    from hpms.services.people import coverage

    coverage.add_coverage(ctx, patient=w["ana"].mrn, payer="ACME1", member_id="XQZ998877", priority="secondary")


def _op_coverage_list(ctx, w):
    from hpms.services.people import coverage

    coverage.list_coverage(ctx, w["ana"].mrn)


def _op_coverage_end(ctx, w):
    from hpms.services.people import coverage

    coverage.end_coverage(ctx, w["cov"].id, on="2026-01-31")


def _op_audit_log(ctx, w):
    from hpms.services.platform import audit_query

    audit_query.log(ctx, patient=w["ana"].mrn)


OPS = [
    ("register", _op_register, [("create", "patient")], None),
    ("show", _op_show, [("read", "patient")], "ana"),
    ("show_reveal", _op_show_reveal, [("read", "patient")], "ana"),
    ("update", _op_update, [("update", "patient")], "ana"),
    ("list", _op_list, [("list", "patient")], None),
    ("search", _op_search, [("search", "patient")], None),
    ("search_ssn", _op_search_ssn, [("search", "patient")], None),
    ("duplicates", _op_duplicates, [("duplicates", "patient")], None),
    ("merge", _op_merge, [("merge", "patient"), ("merge", "patient")], "ana"),
    ("coverage_add", _op_coverage_add, [("create", "coverage")], "ana"),
    ("coverage_list", _op_coverage_list, [("read", "coverage")], "ana"),
    ("coverage_end", _op_coverage_end, [("update", "coverage")], "ana"),
    ("audit_log", _op_audit_log, [("read", "audit")], "ana"),
]


@pytest.fixture
def world(register, ctx_for, payer):
    from hpms.services.people import coverage

    ana = register(**ANA)
    dup = register(first_name="Anna", last_name="Muller", dob="1985-03-14")
    with ctx_for(clock=fixed_clock) as ctx:
        cov = coverage.add_coverage(
            ctx, patient=ana.mrn, payer="ACME1", member_id="MBR5550001", valid_from="2025-01-01"
        )
    return {"ana": ana, "dup": dup, "cov": cov}


@pytest.mark.parametrize(("name", "op", "expected", "patient"), OPS, ids=[o[0] for o in OPS])
def test_each_operation_appends_its_event_in_the_same_transaction(
    settings, ctx_for, world, name, op, expected, patient
):
    before = snapshot(settings)
    seq = last_seq(settings)
    # 1. Rolled back: the event was written in the transaction, and went away with it.
    with pytest.raises(Rollback):
        with ctx_for(clock=fixed_clock) as ctx:
            op(ctx, world)
            pending = _events_in_session(ctx, seq)
            assert [(e.action, e.entity) for e in pending] == expected
            raise Rollback
    assert snapshot(settings) == before
    # 2. Committed: the same events are there, chained after the previous head.
    with ctx_for(clock=fixed_clock) as ctx:
        op(ctx, world)
    rows = audit_rows(settings, seq)
    assert [(r["action"], r["entity"]) for r in rows] == expected
    assert [r["seq"] for r in rows] == list(range(seq + 1, seq + 1 + len(expected)))
    for r in rows:
        assert r["username"] == ctx.actor.username
        assert r["user_id"] == ctx.actor.user_id
    if patient:
        assert rows[0]["patient_id"] == world[patient].id
    if name == "merge":
        assert rows[1]["patient_id"] == world["dup"].id
    if name == "register":
        new_id = rows[0]["patient_id"]
        assert new_id is not None and rows[0]["entity_id"] == str(new_id)
        assert "first_name" in rows[0]["fields_list"] and "mrn" in rows[0]["fields_list"]
    if name == "update":
        assert sorted(rows[0]["fields_list"]) == ["city", "phone"]
    from hpms.services.platform import audit

    with ctx_for() as ctx:
        assert audit.verify(ctx).ok


def test_refused_and_failed_operations_leave_no_event(settings, ctx_for, world):
    from hpms.errors import ConflictError, NotFoundError, ValidationError
    from hpms.services.people import patients

    before = snapshot(settings)
    with pytest.raises(NotFoundError):
        with ctx_for() as ctx:
            patients.show(ctx, "no-such-mrn")
    with pytest.raises(ValidationError):
        with ctx_for() as ctx:
            patients.update(ctx, world["ana"].mrn, email="not-an-email")
    with pytest.raises(ConflictError):
        with ctx_for() as ctx:
            patients.register(ctx, first_name="X", last_name="Y", dob="2000-01-01", mrn=world["ana"].mrn)
    assert snapshot(settings) == before


def test_list_records_one_event_naming_the_returned_patients(settings, ctx_for, register):
    from hpms.services.people import patients

    ids = [register(first_name=f"P{i}", last_name=f"Zed{i}").id for i in range(5)]
    seq = last_seq(settings)
    with ctx_for() as ctx:
        page = patients.list_patients(ctx, limit=3, offset=1)
    rows = audit_rows(settings, seq)
    assert len(rows) == 1
    assert rows[0]["action"] == "list"
    assert rows[0]["patient_ids_list"] == sorted(p.id for p in page)
    assert len(page) == 3 and set(rows[0]["patient_ids_list"]) < set(ids)
    assert rows[0]["patient_id"] is None


def test_search_records_one_event_naming_the_returned_patients(settings, ctx_for, register):
    from hpms.services.people import patients

    a = register(first_name="Ana", last_name="Müller")
    b = register(first_name="Otto", last_name="Mulligan")
    register(first_name="Zoe", last_name="Park")
    seq = last_seq(settings)
    with ctx_for() as ctx:
        found = patients.search(ctx, "mul")
        nothing = patients.search(ctx, "Xylophone")
    assert {p.id for p in found} == {a.id, b.id}
    assert nothing == []
    rows = audit_rows(settings, seq)
    assert [r["action"] for r in rows] == ["search", "search"]
    assert rows[0]["patient_ids_list"] == sorted([a.id, b.id])
    assert rows[1]["patient_ids_list"] == []
    # The query text itself is not recorded (it may be a name).
    assert "mul" not in (rows[0]["detail"] or "").lower()
    assert "xylophone" not in audit_text(settings).lower()


def test_audit_log_by_patient_finds_the_list_events_naming_it(settings, ctx_for, register):
    from hpms.services.people import patients
    from hpms.services.platform import audit_query

    a = register(first_name="Ana", last_name="Alpha")
    b = register(first_name="Bob", last_name="Beta")
    with ctx_for() as ctx:
        patients.search(ctx, "alpha")
        patients.show(ctx, b.mrn)
    with ctx_for() as ctx:
        events = audit_query.log(ctx, patient=a.mrn)
    kinds = [(e.action, e.entity) for e in events]
    assert ("create", "patient") in kinds and ("search", "patient") in kinds
    assert all(e.patient_id == a.id or a.id in (e.patient_ids or []) for e in events)
    assert not any(e.action == "read" and e.patient_id == b.id for e in events)


def test_events_never_contain_phi_values(settings, ctx_for, world, make_user):
    from hpms.services.people import coverage, patients
    from hpms.services.platform import audit_query

    make_user("bill", "biller")
    with ctx_for(clock=fixed_clock) as ctx:
        patients.show(ctx, world["ana"].mrn, reveal_ssn=True)
        patients.search(ctx, "Müller, Ana")
        patients.search(ctx, "555-867-5309")
        patients.search(ctx, "1985-03-14")
        patients.search(ctx, "287-65-4321")
        patients.list_patients(ctx)
        patients.update(
            ctx,
            world["ana"].mrn,
            phone="555-444-1212",
            email="bea.quill@example.net",
            address_line1="99 Larkspur Court",
        )
        patients.duplicates(ctx)
        coverage.list_coverage(ctx, world["ana"].mrn)
        audit_query.log(ctx, patient=world["ana"].mrn)
        patients.merge(ctx, world["ana"].mrn, world["dup"].mrn)
    with ctx_for("bill") as ctx:
        patients.show(ctx, world["ana"].mrn, reveal_ssn=True)
    text = audit_text(settings)
    assert "patient" in text  # the rows are there...
    phi = [
        "Ana",
        "Müller",
        "Muller",
        "Anna",
        "Beatriz",
        "Zuzu",
        "1985-03-14",
        "03/14/1985",
        "867-5309",
        "8675309",
        "ana.mueller@example.org",
        "bea.quill",
        "Quillfeather",
        "Larkspur",
        "Springfield",
        "12345",
        "287-65-4321",
        "287654321",
        "555-444-1212",
        "5554441212",
        "MBR5550001",
        "woman",
    ]
    for value in phi:
        assert value.lower() not in text.lower(), value


def test_chain_verifies_and_links_each_event_to_the_previous(settings, ctx_for, world):
    from hpms.services.platform import audit
    from hpms.services.platform.audit import GENESIS, event_seal
    from hpms.services.platform.crypto import load_keyring

    keys = load_keyring(settings).audit_keys()
    rows = audit_rows(settings)
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["prev_hash"] == GENESIS
    for prev, row in zip(rows, rows[1:], strict=False):
        assert row["prev_hash"] == prev["hash"]
    for row in rows:
        assert event_seal(row, keys[row["key_id"]]) == row["hash"]
    with ctx_for() as ctx:
        result = audit.verify(ctx)
    assert result.ok and result.first_bad_seq is None
    assert result.events == len(rows)
    head = audit_rows(settings)[-1]
    with get_engine(settings).connect() as conn:
        assert conn.execute(sa.text("SELECT last_seq, last_hash FROM audit_head")).one() == (head["seq"], head["hash"])


def test_appends_after_the_head_read_with_the_schema_check_stay_chained(settings, ctx_for):
    """open_context reads the head with its first statement (SQLite): appends in that
    transaction, in a savepoint rolled back and in one released, and after a rollback, chain on
    from the head as it then stands."""
    from hpms.services.platform import audit
    from hpms.services.platform.context import open_context

    before = last_seq(settings)
    with open_context(settings) as ctx:
        audit.record(ctx, audit.Event("read", "test", 1))
        with ctx.session.begin_nested() as sp:
            audit.record(ctx, audit.Event("read", "test", 2))
            sp.rollback()
        audit.record(ctx, audit.Event("read", "test", 3))
        with ctx.session.begin_nested():
            audit.record(ctx, audit.Event("read", "test", 4))
        audit.record(ctx, audit.Event("read", "test", 5))
    with pytest.raises(Rollback), open_context(settings) as ctx:
        audit.record(ctx, audit.Event("read", "test", 6))
        raise Rollback
    with open_context(settings) as ctx:
        audit.record(ctx, audit.Event("read", "test", 7))
    rows = audit_rows(settings, before)
    assert [r["entity_id"] for r in rows] == ["1", "3", "4", "5", "7"]
    assert [r["seq"] for r in rows] == list(range(before + 1, before + 6))
    with ctx_for() as ctx:
        result = audit.verify(ctx)
    assert result.ok and result.events == last_seq(settings)
    with get_engine(settings).connect() as conn:
        head = conn.execute(sa.text("SELECT last_seq, last_hash FROM audit_head")).one()
    assert head == (rows[-1]["seq"], rows[-1]["hash"])


def test_verify_walks_a_chain_longer_than_one_batch(settings, ctx_for, register):
    from hpms.services.people import patients
    from hpms.services.platform import audit

    register()
    with ctx_for() as ctx:
        for _ in range(12):
            patients.list_patients(ctx)
    with ctx_for() as ctx:
        result = audit.verify(ctx, batch=5)
    assert result.ok and result.events == last_seq(settings)


# --- the database refuses the application's own attempts; tampering behind its back shows ---


def test_audit_rows_cannot_be_updated_or_deleted_while_the_triggers_are_in_place(settings, world):
    engine = get_engine(settings)
    before = audit_rows(settings)
    for sql in (
        "UPDATE audit_event SET detail = 'edited' WHERE seq = 2",
        "UPDATE audit_event SET username = 'mallory'",
        "DELETE FROM audit_event WHERE seq = 2",
        "DELETE FROM audit_event",
    ):
        with pytest.raises(sa.exc.DBAPIError) as err:
            with engine.begin() as conn:
                conn.execute(sa.text(sql))
        assert "append-only" in str(err.value)
    assert audit_rows(settings) == before


def test_orm_cannot_delete_audit_rows_either(settings, world):
    from hpms.db import session_scope

    before = last_seq(settings)
    with pytest.raises(sa.exc.DBAPIError):
        with session_scope(get_engine(settings)) as session:
            ev = session.scalars(sa.select(AuditEvent).where(AuditEvent.seq == 1)).one()
            session.delete(ev)
    assert last_seq(settings) == before


def _tamper(settings, *statements: str) -> None:
    """Run statements directly against the database with the append-only guard switched off."""
    engine = get_engine(settings)
    with engine.begin() as conn:
        if settings.is_sqlite:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_event_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_event_no_delete")
            for sql in statements:
                conn.exec_driver_sql(sql)
        else:
            conn.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
            try:
                for sql in statements:
                    conn.exec_driver_sql(sql)
            finally:
                conn.exec_driver_sql("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")


@pytest.fixture
def chain(settings, world, ctx_for):
    """At least 7 events, and verify() says the chain is intact before anyone tampers."""
    from hpms.services.people import patients
    from hpms.services.platform import audit

    with ctx_for() as ctx:
        patients.list_patients(ctx)
        patients.show(ctx, world["ana"].mrn)
    n = last_seq(settings)
    assert n >= 7
    with ctx_for() as ctx:
        assert audit.verify(ctx).ok
    return n


def _verify(ctx_for):
    from hpms.services.platform import audit

    with ctx_for() as ctx:
        return audit.verify(ctx)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("detail", "'nothing to see'"),
        ("username", "'someone_else'"),
        ("action", "'read'"),
        ("patient_id", "NULL"),
        ("fields", "'[\"mrn\"]'"),
        ("entity_id", "'999'"),
    ],
)
def test_verify_names_an_edited_event(settings, ctx_for, chain, column, value):
    _tamper(settings, f"UPDATE audit_event SET {column} = {value} WHERE seq = 4")
    result = _verify(ctx_for)
    assert result.ok is False
    assert result.first_bad_seq == 4
    assert result.events == 3  # the intact prefix
    assert "4" in result.problem


def test_verify_names_an_edited_timestamp(settings, ctx_for, chain):
    row = audit_rows(settings)[4]
    assert row["seq"] == 5
    import datetime as dt

    later = row["at"] + dt.timedelta(seconds=1)
    if settings.is_sqlite:
        stamp = later.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
        _tamper(settings, f"UPDATE audit_event SET at = '{stamp}' WHERE seq = 5")
    else:
        _tamper(settings, "UPDATE audit_event SET at = at + interval '1 second' WHERE seq = 5")
    result = _verify(ctx_for)
    assert (result.ok, result.first_bad_seq) == (False, 5)


def test_verify_detects_an_edit_whose_hash_was_recomputed(settings, ctx_for, chain):
    """Rewriting one event with a recomputed digest (no key at hand) is found at that event."""
    from hpms.services.platform.audit import event_hash

    row = audit_rows(settings)[2]
    row["detail"] = "forged"
    forged = event_hash(row)
    _tamper(settings, f"UPDATE audit_event SET detail = 'forged', hash = '{forged}' WHERE seq = 3")
    result = _verify(ctx_for)
    assert result.ok is False
    assert result.first_bad_seq == 3
    assert result.problem == "event 3 was altered"


def test_verify_names_a_deleted_middle_event(settings, ctx_for, chain):
    _tamper(settings, "DELETE FROM audit_event WHERE seq = 3")
    result = _verify(ctx_for)
    assert result.ok is False
    assert result.first_bad_seq == 3
    assert "missing" in result.problem


def test_verify_names_a_deleted_first_event(settings, ctx_for, chain):
    _tamper(settings, "DELETE FROM audit_event WHERE seq = 1")
    result = _verify(ctx_for)
    assert (result.ok, result.first_bad_seq) == (False, 1)


def test_verify_names_a_deleted_last_event(settings, ctx_for, chain):
    _tamper(settings, f"DELETE FROM audit_event WHERE seq = {chain}")
    result = _verify(ctx_for)
    assert result.ok is False
    assert result.first_bad_seq == chain
    assert result.events == chain - 1


def test_verify_names_several_deleted_last_events(settings, ctx_for, chain):
    _tamper(settings, f"DELETE FROM audit_event WHERE seq >= {chain - 2}")
    result = _verify(ctx_for)
    assert (result.ok, result.first_bad_seq) == (False, chain - 2)


def test_verify_after_tampering_then_appending_still_names_the_first_bad_event(settings, ctx_for, chain):
    """New events chained after a tampered one do not hide it."""
    from hpms.services.people import patients

    _tamper(settings, "UPDATE audit_event SET detail = 'x' WHERE seq = 6")
    with ctx_for() as ctx:
        patients.list_patients(ctx)
    result = _verify(ctx_for)
    assert (result.ok, result.first_bad_seq) == (False, 6)


def test_the_guard_is_back_after_tampering(settings, chain):
    """PostgreSQL: the trigger was switched off only inside the tampering transaction.
    SQLite: the triggers were dropped from this test's copy only (the tampering above did not
    pass through them)."""
    _tamper(settings, "UPDATE audit_event SET detail = 'x' WHERE seq = 2")
    if settings.is_sqlite:
        with get_engine(settings).connect() as conn:
            names = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars().all()
        assert "audit_event_no_update" not in names and "audit_event_no_delete" not in names
        return
    with pytest.raises(sa.exc.DBAPIError) as err:
        with get_engine(settings).begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_event WHERE seq = 3"))
    assert "append-only" in str(err.value)


def test_the_append_only_triggers_exist(settings):
    with get_engine(settings).connect() as conn:
        if settings.is_sqlite:
            names = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars().all()
            assert {"audit_event_no_update", "audit_event_no_delete"} <= set(names)
        else:
            enabled = conn.exec_driver_sql(
                "SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_event_append_only'"
            ).scalar_one()
            assert enabled == "O"


# The seal: a key outside the database, a sealed head, checkpoints, malformed rows.


def _head(settings) -> dict:
    with get_engine(settings).connect() as conn:
        return dict(conn.execute(sa.text("SELECT * FROM audit_head WHERE id = 1")).mappings().one())


def _set_head(settings, head: dict) -> None:
    with get_engine(settings).begin() as conn:
        conn.execute(
            sa.text("UPDATE audit_head SET last_seq = :last_seq, last_hash = :last_hash, mac = :mac, key_id = :key_id"),
            head,
        )


def test_an_inserted_event_rechained_without_the_key_is_found(settings, ctx_for, chain):
    """A forger who can write the database appends an event and recomputes every digest and
    the head: without the key file the seal cannot be made."""
    from hpms.services.platform.audit import event_hash

    last = audit_rows(settings)[-1]
    forged = {**last, "id": None, "seq": last["seq"] + 1, "detail": "inserted", "prev_hash": last["hash"]}
    forged.pop("fields_list", None)
    forged.pop("patient_ids_list", None)
    forged["hash"] = event_hash(forged)
    for kid in (last["key_id"], None):
        _tamper(settings, f"DELETE FROM audit_event WHERE seq = {forged['seq']}")
        with get_engine(settings).begin() as conn:
            row = {k: v for k, v in forged.items() if k != "id"} | {"key_id": kid}
            conn.execute(sa.insert(AuditEvent.__table__).values(**row))
        _set_head(settings, {"last_seq": forged["seq"], "last_hash": forged["hash"], "mac": None, "key_id": kid})
        result = _verify(ctx_for)
        assert (result.ok, result.first_bad_seq) == (False, forged["seq"])
        assert result.problem == (
            f"event {forged['seq']} was altered"
            if kid
            else f"event {forged['seq']} is not sealed with the practice key"
        )


def test_a_cut_tail_with_the_head_moved_back_is_found(settings, ctx_for, chain):
    rows = audit_rows(settings)
    keep = rows[-3]
    _tamper(settings, f"DELETE FROM audit_event WHERE seq > {keep['seq']}")
    head = _head(settings)
    _set_head(settings, {**head, "last_seq": keep["seq"], "last_hash": keep["hash"]})
    result = _verify(ctx_for)
    assert (result.ok, result.first_bad_seq) == (False, keep["seq"])
    assert result.problem == "the head of the chain is not sealed with the practice key"


def test_a_checkpoint_finds_a_cut_behind_it_even_with_an_old_head_restored(settings, ctx_for, chain):
    """The database rewound to an older, consistent state (events and head alike) verifies on
    its own; the checkpoint taken since shows the events removed."""
    from hpms.services.people import patients
    from hpms.services.platform import audit

    old_head = _head(settings)
    with ctx_for() as ctx:
        patients.list_patients(ctx)
        cp = audit.checkpoint(ctx)
    assert cp.seq == old_head["last_seq"] + 1
    assert last_seq(settings) == cp.seq + 1  # the checkpoint itself is recorded
    with ctx_for() as ctx:
        assert audit.verify(ctx, checkpoint=cp).ok
    _tamper(settings, f"DELETE FROM audit_event WHERE seq > {old_head['last_seq']}")
    _set_head(settings, old_head)
    assert _verify(ctx_for).ok  # consistent on its own
    with ctx_for() as ctx:
        result = audit.verify(ctx, checkpoint=cp)
    assert (result.ok, result.first_bad_seq) == (False, old_head["last_seq"] + 1)
    assert f"records event {cp.seq}: events were removed" in result.problem
    assert result.checkpoint == {"seq": cp.seq, "at": cp.at, "ok": False}


def test_a_checkpoint_that_was_edited_or_made_elsewhere_is_refused(settings, ctx_for, chain):
    import dataclasses

    from hpms.services.platform import audit

    with ctx_for() as ctx:
        cp = audit.checkpoint(ctx)
    for bad in (dataclasses.replace(cp, seq=cp.seq - 1), dataclasses.replace(cp, key_id="0badc0de")):
        with ctx_for() as ctx:
            result = audit.verify(ctx, checkpoint=bad)
        assert result.ok is False
        assert result.problem == "the checkpoint's signature does not match this practice's key"


def test_a_checkpoint_file_that_is_no_checkpoint_names_the_field(settings):
    from hpms.errors import ValidationError
    from hpms.services.platform import audit

    for text, why in (
        ("not json", "not JSON"),
        ('{"format": "other"}', "format is not"),
        ('{"format": "hpms-audit-checkpoint/1", "seq": 3}', "no valid 'seal'"),
    ):
        with pytest.raises(ValidationError) as err:
            audit.parse_checkpoint(text)
        assert err.value.field == "checkpoint" and why in str(err.value)


def test_a_checkpoint_of_a_broken_chain_is_refused(settings, ctx_for, chain):
    from hpms.errors import ConflictError
    from hpms.services.platform import audit

    _tamper(settings, "UPDATE audit_event SET detail = 'x' WHERE seq = 2")
    before = last_seq(settings)
    with pytest.raises(ConflictError, match="broken at event 2: event 2 was altered"), ctx_for() as ctx:
        audit.checkpoint(ctx)
    assert last_seq(settings) == before


def test_malformed_rows_are_reported_never_raised(settings, ctx_for, chain):
    if settings.is_sqlite:  # SQLite keeps whatever text is written in a typed column
        _tamper(settings, "UPDATE audit_event SET at = 'yesterday-ish' WHERE seq = 4")
        result = _verify(ctx_for)
        assert (result.ok, result.first_bad_seq) == (False, 4)
        assert result.problem.startswith("event 4 is malformed:")
        _tamper(settings, "UPDATE audit_event SET at = '2026-01-01 00:00:00' WHERE seq = 4")
    _tamper(settings, "UPDATE audit_event SET key_id = 'zzzz' WHERE seq = 5")
    result = _verify(ctx_for)
    assert result.first_bad_seq == (4 if settings.is_sqlite else 5)
    _tamper(settings, "DELETE FROM audit_event WHERE seq <= 4")
    result = _verify(ctx_for)
    assert (result.ok, result.first_bad_seq) == (False, 1)
    assert result.problem == "event 1 is missing (next is 5)"


def test_events_sealed_before_a_key_rotation_still_verify(settings, ctx_for, chain, monkeypatch):
    from hpms.services.platform import admin, audit
    from hpms.services.platform.crypto import load_keyring

    old = load_keyring(settings).active
    with ctx_for() as ctx:
        out = admin.rotate_keys(ctx)
    admin.finish_rotation(settings, out["key_id"])
    ring = load_keyring(settings)
    assert list(ring.keys) == [out["key_id"]] and old in ring.retired_audit_keys  # the old key is gone
    with ctx_for() as ctx:
        result = audit.verify(ctx)
    assert result.ok and result.keys == sorted({old, out["key_id"]})


def test_verify_without_the_key_reports_it(settings, ctx_for, chain):
    settings.key_file.unlink()
    result = _verify(ctx_for)
    assert result.ok is False
    assert result.problem.startswith("the audit trail cannot be verified without the practice key")


def test_events_written_before_sealing_are_sealed_once_the_key_is_at_hand(settings, ctx_for, chain):
    """A database from before sealing: unkeyed digests, a head without a seal. Verify refuses
    it until `seal` (run by init and upgrade) checks the old chain and seals it."""
    from hpms.services.platform import audit
    from hpms.services.platform.crypto import load_keyring

    rows = audit_rows(settings)
    prev = audit.GENESIS
    updates = []
    for row in rows:
        row = {**row, "prev_hash": prev, "key_id": None}
        prev = audit.event_hash(row)
        updates.append(
            f"UPDATE audit_event SET prev_hash = '{row['prev_hash']}', hash = '{prev}', key_id = NULL "
            f"WHERE seq = {row['seq']}"
        )
    _tamper(settings, *updates)
    _set_head(settings, {"last_seq": rows[-1]["seq"], "last_hash": prev, "mac": None, "key_id": None})
    result = _verify(ctx_for)
    assert (result.ok, result.first_bad_seq, result.problem) == (
        False,
        1,
        "event 1 is not sealed with the practice key",
    )

    _tamper(settings, "UPDATE audit_event SET detail = 'changed' WHERE seq = 2")  # a broken old chain
    with get_engine(settings).begin() as conn:
        from sqlalchemy.orm import Session

        assert audit.seal(Session(bind=conn), load_keyring(settings)) == {
            "sealed": 0,
            "problem": "event 2: event 2 was altered",
        }
    _tamper(settings, f"UPDATE audit_event SET detail = {_quote(rows[1]['detail'])} WHERE seq = 2")
    with get_engine(settings).begin() as conn:
        from sqlalchemy.orm import Session

        assert audit.seal(Session(bind=conn), load_keyring(settings)) == {"sealed": len(rows), "problem": None}
    result = _verify(ctx_for)
    assert result.ok and result.events == len(rows)
    with get_engine(settings).begin() as conn:  # sealing again changes nothing
        from sqlalchemy.orm import Session

        assert audit.seal(Session(bind=conn), load_keyring(settings)) == {"sealed": 0, "problem": None}


def _quote(value) -> str:
    return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"
