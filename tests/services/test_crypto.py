"""Field encryption of SSNs and member ids, the blind index, foreign keys and key rotation."""

from __future__ import annotations

import shutil

import pytest

from hpms.db import dispose_engines, get_engine, session_scope
from hpms.errors import EncryptionKeyError, ExitCode, UsageError, ValidationError
from hpms.services.platform.auth import os_login
from hpms.services.platform.context import context_for
from tests.services.helpers import query

SSN = "287-65-4321"
SSN_DIGITS = "287654321"
SSN_FORMS = (SSN, SSN_DIGITS, "287 65 4321", "287.65.4321")
MEMBER = "XQZ778899001"
OTHER_SSN = "212-34-5678"


@pytest.fixture
def insured(register, ctx_for, payer):
    """Two patients with SSNs, one with a coverage."""
    from hpms.services.people import coverage

    a = register(first_name="Ida", last_name="Quill", ssn=SSN)
    b = register(first_name="Otis", last_name="Vance", ssn=OTHER_SSN.replace("-", ""))
    with ctx_for() as ctx:
        coverage.add_coverage(ctx, patient=a.mrn, payer="ACME1", member_id=MEMBER, group_number="GRP-7")
    return a, b


def _ctx_with(settings):
    """(context manager) a transaction on `settings` as the OS user, like the CLI opens one."""
    from contextlib import contextmanager

    @contextmanager
    def make():
        with session_scope(get_engine(settings)) as session:
            yield context_for(session, settings, os_login())

    return make()


def test_sensitive_columns_hold_no_plaintext(settings, insured):
    a, b = insured
    pat = query(settings, "SELECT * FROM patient WHERE id = :i", i=a.id)[0]
    assert pat["ssn_enc"] and pat["ssn_bidx"]
    row_text = " ".join(str(v) for v in pat.values())
    for form in (SSN, SSN_DIGITS, "6789", "4321"):
        assert form not in row_text, form
    cov = query(settings, "SELECT * FROM coverage WHERE patient_id = :i", i=a.id)[0]
    assert cov["member_id_enc"] and cov["member_id_bidx"]
    cov_text = " ".join(str(v) for v in cov.values())
    assert MEMBER not in cov_text and MEMBER.lower() not in cov_text.lower()
    assert cov["group_number"] == "GRP-7"  # not sensitive, stored as is
    # The same value encrypts differently every time (random nonce), but indexes the same.
    pat_b = query(settings, "SELECT ssn_enc, ssn_bidx FROM patient WHERE id = :i", i=b.id)[0]
    assert pat_b["ssn_enc"] != pat["ssn_enc"]


def test_equal_values_get_different_ciphertexts_and_the_same_blind_index(settings, register):
    p1 = register(first_name="Twin", last_name="One", ssn=SSN)
    p2 = register(first_name="Twin", last_name="Two", ssn=SSN)
    rows = query(settings, "SELECT id, ssn_enc, ssn_bidx FROM patient ORDER BY id")
    assert [r["id"] for r in rows] == [p1.id, p2.id]
    assert rows[0]["ssn_enc"] != rows[1]["ssn_enc"]
    assert rows[0]["ssn_bidx"] == rows[1]["ssn_bidx"]


def test_sqlite_file_bytes_never_contain_the_values(settings, insured, ctx_for):
    from hpms.services.people import coverage, patients

    if not settings.is_sqlite:
        # The same guarantee on PostgreSQL, read through the server: no column of any table holds them.
        with get_engine(settings).connect() as conn:
            tables = conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").scalars().all()
            dump = "\n".join(str(r) for t in tables for r in conn.exec_driver_sql(f"SELECT * FROM {t}"))
        assert "Quill" in dump  # the dump did read the data
        for form in SSN_FORMS + (MEMBER,):
            assert form not in dump
        return
    with ctx_for() as ctx:  # reads and searches write audit events; they must not leak either
        patients.show(ctx, insured[0].mrn, reveal_ssn=True)
        patients.search(ctx, SSN)
        coverage.list_coverage(ctx, insured[0].mrn)
    dispose_engines()  # checkpoint the WAL into the main file
    files = [p for p in settings.home.iterdir() if p.name.startswith("hpms.db")]
    data = b"".join(p.read_bytes() for p in files)
    assert b"Quill" in data  # not encrypted: proves we read the right file
    for form in SSN_FORMS + (MEMBER,):
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert form.encode(encoding) not in data, (form, encoding)


def test_search_by_ssn_uses_the_blind_index(settings, ctx_for, insured):
    from hpms.services.people import patients

    a, b = insured
    with ctx_for() as ctx:
        assert [p.id for p in patients.search(ctx, SSN)] == [a.id]
        assert [p.id for p in patients.search(ctx, OTHER_SSN)] == [b.id]
        assert patients.search(ctx, "123-45-6789") == []
        assert patients.show(ctx, a.mrn, reveal_ssn=True).ssn_masked == SSN
        assert patients.show(ctx, a.mrn).ssn_masked == "***-**-4321"


def test_search_by_member_id_or_ssn_through_the_blind_index(settings, ctx_for, insured, make_user):
    from hpms.errors import PermissionDenied
    from hpms.services.people import patients

    a, b = insured
    with ctx_for() as ctx:
        assert [p.id for p in patients.search_identifier(ctx, member_id=MEMBER)] == [a.id]
        assert patients.search_identifier(ctx, member_id="XQZ000000000") == []
        assert [p.id for p in patients.search_identifier(ctx, ssn=OTHER_SSN)] == [b.id]
    make_user("desk", "front_desk")
    with ctx_for("desk") as ctx:
        assert [p.id for p in patients.search_identifier(ctx, member_id=MEMBER)] == [a.id]
    with pytest.raises(PermissionDenied):
        with ctx_for("desk") as ctx:
            patients.search_identifier(ctx, ssn=SSN)


def test_member_id_round_trips(settings, ctx_for, insured):
    from hpms.services.people import coverage

    with ctx_for() as ctx:
        assert [c.member_id for c in coverage.list_coverage(ctx, insured[0].mrn)] == [MEMBER]


def _copy_database(settings, tmp_path):
    """A second installation holding a copy of the data but not the key (SQLite: the file is
    copied; PostgreSQL: the same database reached from a home without the key file)."""
    from hpms.config import load_settings

    other_home = tmp_path / "elsewhere"
    other_home.mkdir()
    env = {"HPMS_HOME": str(other_home)}
    if settings.is_sqlite:
        dispose_engines()
        shutil.copy(settings.sqlite_path, other_home / "hpms.db")
    else:
        env["HPMS_DATABASE_URL"] = settings.database_url
    return load_settings(env=env)


def test_a_copy_without_the_key_reveals_nothing(settings, insured, tmp_path):
    from hpms.services.people import coverage, patients
    from hpms.services.platform.crypto import create_key_file

    a, _ = insured
    other = _copy_database(settings, tmp_path)
    assert not other.key_file.exists()
    with pytest.raises(EncryptionKeyError) as err:
        with _ctx_with(other) as ctx:
            patients.show(ctx, a.mrn)
    assert err.value.exit_code == ExitCode.INTERNAL
    assert "no encryption key" in err.value.message
    # With a key of its own (a fresh key file), the copy still cannot decrypt nor find by SSN.
    assert create_key_file(other.key_file)
    for call in (
        lambda ctx: patients.show(ctx, a.mrn),
        lambda ctx: patients.show(ctx, a.mrn, reveal_ssn=True),
        lambda ctx: coverage.list_coverage(ctx, a.mrn),
    ):
        with pytest.raises(EncryptionKeyError) as err:
            with _ctx_with(other) as ctx:
                call(ctx)
        assert SSN_DIGITS not in str(err.value) and MEMBER not in str(err.value)
    with pytest.raises(EncryptionKeyError, match="does not hold"):  # a wrong key finds nothing either
        with _ctx_with(other) as ctx:
            patients.search(ctx, SSN)
    with _ctx_with(other) as ctx:
        # Unencrypted demographics are readable, which is what "copied without the key" means.
        assert [p.id for p in patients.search(ctx, "quill")] == [a.id]


def test_a_different_key_in_hpms_key_cannot_decrypt(settings, insured, monkeypatch, tmp_path):
    from hpms.services.people import patients
    from hpms.services.platform.crypto import encode_key, new_key

    a, _ = insured
    other = _copy_database(settings, tmp_path)
    monkeypatch.setenv("HPMS_KEY", encode_key(new_key()))
    with pytest.raises(EncryptionKeyError):
        with _ctx_with(other) as ctx:
            patients.show(ctx, a.mrn, reveal_ssn=True)
    with pytest.raises(EncryptionKeyError, match="does not hold"):
        with _ctx_with(other) as ctx:
            patients.search(ctx, SSN)


def test_a_tampered_ciphertext_is_refused(settings, insured):
    """AES-GCM authenticates: flipping a byte, or moving a value to another column kind, fails."""
    from hpms.services.platform.crypto import FieldCrypto, load_keyring

    a, _ = insured
    enc = query(settings, "SELECT ssn_enc FROM patient WHERE id = :i", i=a.id)[0]["ssn_enc"]
    crypto = FieldCrypto(load_keyring(settings))
    assert crypto.decrypt(enc, "ssn") == SSN_DIGITS
    with pytest.raises(EncryptionKeyError):
        crypto.decrypt(enc, "member_id")
    kid, body = enc.split(":", 1)
    flipped = body[:-6] + ("A" if body[-6] != "A" else "B") + body[-5:]
    with pytest.raises(EncryptionKeyError):
        crypto.decrypt(f"{kid}:{flipped}", "ssn")


def test_key_file_is_private(settings):
    import stat

    if settings.key_from_env:
        pytest.fail("the fixture should use a key file")
    mode = stat.S_IMODE(settings.key_file.stat().st_mode)
    assert mode == 0o600


def test_damaged_key_file_is_reported(settings, insured):
    from hpms.services.people import patients

    settings.key_file.write_text("{not json", encoding="utf-8")
    with pytest.raises(EncryptionKeyError) as err:
        with _ctx_with(settings) as ctx:
            patients.show(ctx, insured[0].mrn)
    assert "damaged" in err.value.message


# --- rotation ---


def _raw_key_ids(settings) -> set[str]:
    rows = query(
        settings,
        "SELECT ssn_enc AS enc, ssn_bidx AS bidx FROM patient WHERE ssn_enc IS NOT NULL "
        "UNION ALL SELECT member_id_enc, member_id_bidx FROM coverage",
    )
    ids = set()
    for r in rows:
        ids.add(r["enc"].split(":", 1)[0])
        ids.add(r["bidx"].split(":", 1)[0])
    return ids


def test_rotation_reencrypts_everything_and_retires_the_old_key(settings, ctx_for, insured, monkeypatch):
    from hpms.services.people import coverage, patients
    from hpms.services.platform import admin
    from hpms.services.platform.crypto import encode_key, load_keyring

    a, b = insured
    old = load_keyring(settings)
    assert _raw_key_ids(settings) == {old.active}
    before = query(settings, "SELECT id, ssn_enc FROM patient ORDER BY id")
    with ctx_for() as ctx:
        result = admin.rotate_keys(ctx)
    admin.finish_rotation(settings, result["key_id"])
    assert result["previous_key_id"] == old.active
    assert result["reencrypted"] == {"ssn": 2, "member_id": 1, "attachment": 0, "hl7_inbound": 0}
    new = load_keyring(settings)
    assert new.active == result["key_id"] != old.active
    assert set(new.keys) == {new.active}  # the old key is gone from the file
    assert _raw_key_ids(settings) == {new.active}
    after = query(settings, "SELECT id, ssn_enc FROM patient ORDER BY id")
    assert all(x["ssn_enc"] != y["ssn_enc"] for x, y in zip(before, after, strict=True))
    with ctx_for() as ctx:
        assert patients.show(ctx, a.mrn, reveal_ssn=True).ssn_masked == SSN
        assert [p.id for p in patients.search(ctx, SSN)] == [a.id]
        assert [p.id for p in patients.search(ctx, OTHER_SSN)] == [b.id]
        assert [c.member_id for c in coverage.list_coverage(ctx, a.mrn)] == [MEMBER]
        # New values are written under the new key too.
        c = patients.register(ctx, first_name="New", last_name="Comer", dob="2001-02-03", ssn="345-67-8901")
    assert _raw_key_ids(settings) == {new.active}
    # The old key alone no longer opens anything, nor finds anything.
    monkeypatch.setenv("HPMS_KEY", encode_key(old.keys[old.active]))
    with pytest.raises(EncryptionKeyError):
        with _ctx_with(settings) as ctx:
            patients.show(ctx, a.mrn)
    for query_ssn in (SSN, "345-67-8901"):
        with pytest.raises(EncryptionKeyError, match="does not hold"):
            with _ctx_with(settings) as ctx:
                patients.search(ctx, query_ssn)
    monkeypatch.delenv("HPMS_KEY")
    with ctx_for() as ctx:
        assert patients.show(ctx, c.mrn, reveal_ssn=True).ssn_masked == "345-67-8901"


def test_rotation_is_audited_without_values(settings, ctx_for, insured):
    from hpms.services.platform import admin
    from tests.services.helpers import audit_rows, last_seq

    seq = last_seq(settings)
    with ctx_for() as ctx:
        result = admin.rotate_keys(ctx)
    admin.finish_rotation(settings, result["key_id"])
    rows = audit_rows(settings, seq)
    assert [(r["action"], r["entity"], r["entity_id"]) for r in rows] == [("rotate", "keys", result["key_id"])]
    assert SSN_DIGITS not in str(rows) and MEMBER not in str(rows)


def test_crash_before_commit_leaves_both_keys_and_everything_readable(settings, ctx_for, insured):
    """The key file is written (old + new) before the re-encryption commits; a crash there
    leaves old ciphertexts and a ring whose active key is the new one."""
    from hpms.services.people import coverage, patients
    from hpms.services.platform import admin
    from hpms.services.platform.crypto import load_keyring

    a, _ = insured
    old = load_keyring(settings)

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        with ctx_for() as ctx:
            result = admin.rotate_keys(ctx)
            raise Crash
    ring = load_keyring(settings)
    assert set(ring.keys) == {old.active, result["key_id"]} and ring.active == result["key_id"]
    assert _raw_key_ids(settings) == {old.active}  # the re-encryption was rolled back
    with ctx_for() as ctx:
        assert patients.show(ctx, a.mrn, reveal_ssn=True).ssn_masked == SSN
        assert [p.id for p in patients.search(ctx, SSN)] == [a.id]
        assert [c.member_id for c in coverage.list_coverage(ctx, a.mrn)] == [MEMBER]
        d = patients.register(ctx, first_name="Mid", last_name="Crash", dob="1990-01-01", ssn="456-78-9012")
    with ctx_for() as ctx:  # values old and new live side by side, both found
        assert [p.id for p in patients.search(ctx, "456-78-9012")] == [d.id]
        assert [p.id for p in patients.search(ctx, SSN)] == [a.id]
    # Running the rotation again completes it.
    with ctx_for() as ctx:
        again = admin.rotate_keys(ctx)
    admin.finish_rotation(settings, again["key_id"])
    assert _raw_key_ids(settings) == {again["key_id"]}
    with ctx_for() as ctx:
        assert patients.show(ctx, d.mrn, reveal_ssn=True).ssn_masked == "456-78-9012"
        assert [p.id for p in patients.search(ctx, SSN)] == [a.id]


def test_crash_after_commit_before_the_key_file_is_trimmed(settings, ctx_for, insured):
    from hpms.services.people import patients
    from hpms.services.platform import admin
    from hpms.services.platform.crypto import load_keyring

    a, _ = insured
    old = load_keyring(settings)
    with ctx_for() as ctx:
        result = admin.rotate_keys(ctx)
    # finish_rotation never ran: the ring holds both keys, the data is under the new one.
    assert set(load_keyring(settings).keys) == {old.active, result["key_id"]}
    assert _raw_key_ids(settings) == {result["key_id"]}
    with ctx_for() as ctx:
        assert patients.show(ctx, a.mrn, reveal_ssn=True).ssn_masked == SSN
        assert [p.id for p in patients.search(ctx, SSN)] == [a.id]
    admin.finish_rotation(settings, result["key_id"])
    assert set(load_keyring(settings).keys) == {result["key_id"]}


def test_rotation_with_the_key_in_the_environment(settings, ctx_for, insured, monkeypatch, tmp_path):
    from hpms.services.people import patients
    from hpms.services.platform import admin
    from hpms.services.platform.crypto import encode_key, key_id, load_keyring, new_key

    a, _ = insured
    # Move to HPMS_KEY: the same key as the file holds.
    ring = load_keyring(settings)
    monkeypatch.setenv("HPMS_KEY", encode_key(ring.keys[ring.active]))
    from hpms.config import load_settings

    env_settings = load_settings()
    assert env_settings.key_from_env
    with pytest.raises(UsageError):
        with _ctx_with(env_settings) as ctx:
            admin.rotate_keys(ctx)
    with pytest.raises(ValidationError):
        with _ctx_with(env_settings) as ctx:
            admin.rotate_keys(ctx, new_key=ring.keys[ring.active])
    fresh = new_key()
    key_file_before = settings.key_file.read_bytes()
    with _ctx_with(env_settings) as ctx:
        result = admin.rotate_keys(ctx, new_key=fresh)
    admin.finish_rotation(env_settings, result["key_id"])
    assert result["key_id"] == key_id(fresh) and result["key_file"] is None
    assert settings.key_file.read_bytes() == key_file_before  # the file is not touched
    monkeypatch.setenv("HPMS_KEY", encode_key(fresh))
    with _ctx_with(env_settings) as ctx:
        assert patients.show(ctx, a.mrn, reveal_ssn=True).ssn_masked == SSN
        assert [p.id for p in patients.search(ctx, SSN)] == [a.id]


def test_a_value_written_during_a_rotation_stays_readable(settings, ctx_for, insured):
    from hpms.services.people import patients
    from hpms.services.platform import admin
    from hpms.services.platform.crypto import FieldCrypto, load_keyring

    # A process that loaded its key ring before the rotation and writes after it.
    stale = FieldCrypto(load_keyring(settings))
    with ctx_for() as rotating:
        result = admin.rotate_keys(rotating)
    admin.finish_rotation(settings, result["key_id"])
    with ctx_for() as writer:
        writer._crypto = stale
        late = patients.register(writer, first_name="Late", last_name="Writer", dob="1990-01-01", ssn="345-67-8901")
    assert _raw_key_ids(settings) == {result["key_id"]}
    with ctx_for() as ctx:
        assert patients.show(ctx, late.mrn, reveal_ssn=True).ssn_masked == "345-67-8901"


def test_a_workstation_with_another_key_cannot_write(settings, ctx_for, insured, tmp_path, monkeypatch):
    """A machine with a key file of its own (not the database's) is refused before it writes
    values nobody else could read."""
    from hpms.services.people import patients
    from hpms.services.platform.crypto import encode_key, new_key

    monkeypatch.setenv("HPMS_KEY", encode_key(new_key()))
    with pytest.raises(EncryptionKeyError, match="does not hold"):
        with _ctx_with(settings) as ctx:
            patients.register(ctx, first_name="Wrong", last_name="Key", dob="1990-01-01", ssn="345-67-8901")
    assert query(settings, "SELECT count(*) AS n FROM patient WHERE last_name = 'Key'")[0]["n"] == 0


def test_init_on_a_second_machine_refuses_a_new_key_and_removes_it(settings, insured, tmp_path, monkeypatch):
    """`hpms init` with a fresh home pointing at an existing database: the key it would create
    does not open the data, so init refuses and leaves no stray key file behind."""
    from hpms.config import load_settings
    from hpms.services.platform import admin

    other_home = tmp_path / "workstation2"
    env = {"HPMS_HOME": str(other_home), "HPMS_DATABASE_URL": settings.database_url}
    other = load_settings(env=env)
    before = query(settings, "SELECT count(*) AS n FROM audit_event")[0]["n"]
    with pytest.raises(EncryptionKeyError, match="does not hold") as err:
        admin.init(other, practice=None, tz="UTC")
    assert "copy the key file" in str(err.value)
    assert not other.key_file.exists()
    assert query(settings, "SELECT count(*) AS n FROM audit_event")[0]["n"] == before


def test_the_key_ring_is_read_again_when_the_key_file_changes(settings):
    # load_keyring keeps the parsed ring per state of the file: a change in place (same inode)
    # is seen, and a caller changing its ring does not change the next caller's.
    import os

    from hpms.services.platform.crypto import KeyRing, load_keyring, new_key

    first = load_keyring(settings)
    first.keys.clear()
    assert load_keyring(settings).keys  # the cached ring was not the one changed
    other = KeyRing.single(new_key(), str(settings.key_file))
    inode = settings.key_file.stat().st_ino
    settings.key_file.write_text(other.to_json(), encoding="utf-8")
    os.chmod(settings.key_file, 0o600)
    assert settings.key_file.stat().st_ino == inode
    assert load_keyring(settings).active == other.active != first.active
