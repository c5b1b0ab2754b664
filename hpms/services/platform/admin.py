"""Set-up and care of an installation: init, schema upgrade and check, backup, restore and
key rotation. These open their own transactions because they act before or around the schema.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.config import Settings, redact_url
from hpms.db import (
    INIT,
    check_schema,
    connect_error,
    current_revision,
    dispose_engines,
    head_revision,
    known_revisions,
    make_engine,
    migrate,
    session_scope,
)
from hpms.errors import (
    Action,
    ConflictError,
    DatabaseUnavailable,
    EncryptionKeyError,
    NotInitializedError,
    UsageError,
    ValidationError,
)
from hpms.fileio import atomic_path, open_input
from hpms.models import Coverage, KeyState, Patient
from hpms.models.messages import ATTACHMENT_KIND, MessageAttachment
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.auth import authenticate, os_login
from hpms.services.platform.context import Ctx
from hpms.services.platform.crypto import (
    FieldCrypto,
    KeyRing,
    create_key_file,
    key_id,
    load_keyring,
    write_keyring,
)
from hpms.services.platform.crypto import new_key as make_key
from hpms.services.platform.org import bootstrap
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session


def machine_timezone() -> str:
    # pendulum costs start-up time; only the set-up asks for the machine's zone
    from pendulum.tz.local_timezone import get_local_timezone

    try:
        name = get_local_timezone().name
    except Exception:  # noqa: BLE001 - any failure means "unknown"
        name = "UTC"
    return name if "/" in name or name == "UTC" else "UTC"


def _engine_for(settings: Settings, *, create: bool = False) -> Engine:
    path = settings.sqlite_path
    if path is not None:
        if not path.exists() and not create:
            raise NotInitializedError(f"no database at {path}", action=INIT)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600, exist_ok=True)  # a new database is private from its first byte
    return make_engine(settings.database_url)


def init(
    settings: Settings,
    *,
    practice: str | None,
    tz: str | None,
    location: str | None = None,
    is_demo: bool = False,
    admin: str | None = None,
) -> dict:
    """Create or upgrade the database, the key file, the organization, a first location and
    the OS user as first admin. Safe to rerun. Raises ValidationError, DatabaseUnavailable."""
    tz = v.parse_tz("tz", tz or machine_timezone())
    if practice is not None:
        v.require_text("practice", practice, 200)
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_created = False if settings.key_from_env else create_key_file(settings.key_file)
    engine = _engine_for(settings, create=True)
    try:
        before, after = migrate(engine)
        if settings.sqlite_path is not None:
            os.chmod(settings.sqlite_path, 0o600)  # patient data: readable by its owner only
        with session_scope(engine) as session:
            org, created = bootstrap(
                session,
                settings,
                practice=practice or "My Practice",
                tz=tz,
                location_name=location,
                admin_username=admin or os_login(),
                is_demo=is_demo,
            )
            _adopt_key(session, settings, key_created)
            sealed = audit.seal(session, load_keyring(settings))
    finally:
        engine.dispose()
    return {
        "database": redact_url(settings.database_url),
        "home": str(settings.home),
        "schema_before": before,
        "schema": after,
        "organization": org.name,
        "created": created,
        "admin": admin or os_login() if created else None,
        "key_file": None if settings.key_from_env else str(settings.key_file),
        "key_created": key_created,
        "audit_sealed": sealed,
    }


def _adopt_key(session: Session, settings: Settings, key_created: bool) -> None:
    """Record the key of a new database; refuse a key that does not open an existing one
    (a second workstation must get the first one's key file, not a new key)."""
    state = session.get(KeyState, 1)
    assert state is not None  # the first migration creates the row
    ring = load_keyring(settings)
    if state.active_kid is None:
        state.active_kid = ring.active
    elif state.active_kid not in ring.keys:
        if key_created:
            settings.key_file.unlink(missing_ok=True)
        raise EncryptionKeyError(
            f"this database is encrypted under key {state.active_kid}, which {ring.source} does not hold",
            hint=f"copy the key file of the machine that set up this database to {settings.key_file}, or set HPMS_KEY",
        )


def _ctx(session: Session, settings: Settings) -> Ctx:
    return Ctx(session=session, actor=authenticate(session), settings=settings)


def upgrade(settings: Settings) -> dict:
    """Bring the schema to head (admin only). Raises NotInitializedError, SchemaMismatch."""
    engine = _engine_for(settings)
    try:
        with engine.connect() as conn:
            rev = current_revision(conn)
        if rev is None:
            raise NotInitializedError("the database has no hpms schema", action=INIT)
        with session_scope(engine) as session:
            require(authenticate(session), "db.admin")
        before, after = migrate(engine)
        with session_scope(engine) as session:
            # events written before sealing existed are sealed once the key is at hand
            try:
                sealed = audit.seal(session, load_keyring(settings))
            except EncryptionKeyError as exc:
                sealed = {"sealed": 0, "problem": str(exc)}
    except sa.exc.OperationalError as exc:
        raise connect_error(settings.database_url, exc) from None
    finally:
        engine.dispose()
    return {"schema_before": before, "schema": after, "changed": before != after, "audit_sealed": sealed}


def check(settings: Settings) -> dict:
    """Schema at head, database integrity and foreign keys. Returns a report with `ok`."""
    engine = _engine_for(settings)
    try:
        check_schema(engine)
        report: dict = {"database": redact_url(settings.database_url), "schema": head_revision(), "schema_ok": True}
        with session_scope(engine) as session:
            require(authenticate(session), "db.check")
            if engine.dialect.name == "sqlite":
                integrity = [r[0] for r in session.execute(sa.text("PRAGMA integrity_check")).all()]
                fk = session.execute(sa.text("PRAGMA foreign_key_check")).all()
                report["integrity"] = "ok" if integrity == ["ok"] else "; ".join(integrity[:5])
                report["foreign_keys"] = "ok" if not fk else f"{len(fk)} broken reference(s)"
            else:
                session.execute(sa.text("SELECT 1"))
                report["integrity"] = "ok (PostgreSQL checks its own pages; see docs/admin.md for amcheck)"
                report["foreign_keys"] = "ok (enforced by PostgreSQL)"
        report["ok"] = report["integrity"].startswith("ok") and report["foreign_keys"].startswith("ok")
    except sa.exc.OperationalError as exc:
        raise connect_error(settings.database_url, exc) from None
    finally:
        engine.dispose()
    return report


def _atomic_sqlite_copy(src: sqlite3.Connection, dest: Path) -> None:
    with atomic_path(dest, field="path", mode=0o600) as tmp:  # created 0600: never readable by others
        out = sqlite3.connect(tmp)
        try:
            src.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
        finally:
            out.close()


def backup(settings: Settings, dest: Path, *, overwrite: bool = False) -> dict:
    """Copy the live SQLite database to `dest` (online backup API, temp file then rename).
    PostgreSQL: refuses with the pg_dump command to use. Raises UsageError, ConflictError."""
    path = settings.sqlite_path
    if not settings.is_sqlite or path is None:
        raise UsageError(
            "backup works on SQLite only",
            hint="for PostgreSQL use `pg_dump -Fc -f hpms.dump DBNAME` (see docs/admin.md)",
        )
    engine = _engine_for(settings)
    check_schema(engine)
    dest = Path(dest).expanduser()
    if dest.is_dir():
        raise ValidationError("path", f"{dest} is a directory; give a file name")
    if dest.exists() and not overwrite:
        raise ConflictError(f"{dest} exists", field="path", retry_with=("yes",), hint="to overwrite it")
    if not dest.parent.exists():
        raise ValidationError("path", f"directory {dest.parent} does not exist")
    if dest.resolve() == path.resolve():
        raise ValidationError("path", "is the live database itself")
    with session_scope(engine) as session:
        ctx = _ctx(session, settings)
        require(ctx.actor, "db.backup")
        audit.record(ctx, audit.Event("backup", "database", detail=f"to {dest.name}"))
    engine.dispose()
    src = sqlite3.connect(path)
    try:
        _atomic_sqlite_copy(src, dest)
    finally:
        src.close()
    return {"backup": str(dest), "bytes": dest.stat().st_size}


def _validate_backup(path: Path) -> str:
    with open_input(path, field="path") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise ValidationError("path", f"{path} is not a SQLite database")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            rev = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:
            raise ValidationError("path", f"{path} is not an hpms database") from None
        if not rev or rev[0] not in known_revisions():
            raise ValidationError("path", f"{path} has schema {rev and rev[0]!r}, unknown to this hpms")
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise ValidationError("path", f"{path} fails the integrity check")
        return rev[0]
    finally:
        conn.close()


def restore(settings: Settings, source: Path, *, yes: bool = False) -> dict:
    """Replace the SQLite database with a backup; refuses to overwrite without `yes` and,
    when a database exists, unless the acting user is an admin of it."""
    path = settings.sqlite_path
    if not settings.is_sqlite or path is None:
        raise UsageError(
            "restore works on SQLite only",
            hint="for PostgreSQL use `pg_restore -d DBNAME hpms.dump` (see docs/admin.md)",
        )
    source = Path(source).expanduser()
    rev = _validate_backup(source)
    if path.exists():
        if not yes:
            raise ConflictError(f"{path} exists and would be overwritten", retry_with=("yes",), hint="to replace it")
        engine = make_engine(settings.database_url)
        try:
            with session_scope(engine) as session:
                require(authenticate(session), "db.admin")
        except sa.exc.OperationalError:
            pass  # a damaged database cannot name its admins; the OS user owns the file
        finally:
            engine.dispose()
    dispose_engines()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        _atomic_sqlite_copy(src, path)
    finally:
        src.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            try:
                ctx = _ctx(session, settings)
                audit.record(ctx, audit.Event("restore", "database", detail=f"from {source.name}"))
            except Exception:  # noqa: BLE001 - the restoring user may not exist in the backup
                pass
    finally:
        engine.dispose()
    return {"restored": str(path), "from": str(source), "schema": rev, "schema_ok": rev == head_revision()}


def rotate_keys(ctx: Ctx, *, new_key: bytes | None = None) -> dict:
    """Re-encrypt every sensitive field and blind index under a new key (key file: written
    with both keys first, so a crash leaves all values readable). Raises PermissionDenied."""
    require(ctx.actor, "keys.rotate")
    settings = ctx.settings
    s = ctx.session
    # Lock out writers until this commits; transactions that already hold the key (FOR SHARE)
    # finish first, so their values are among those re-encrypted below.
    s.execute(sa.select(KeyState.active_kid).where(KeyState.id == 1).with_for_update())
    old = load_keyring(settings)
    if settings.key_from_env and new_key is None:
        raise UsageError(
            "the key comes from HPMS_KEY",
            hint="run again with HPMS_NEW_KEY set to a new key",
            action=Action("keys", "generate", purpose="make one with"),
        )
    key = new_key or make_key()
    kid = key_id(key)
    if kid in old.keys:
        raise ValidationError("HPMS_NEW_KEY", "is the key already in use")
    both = KeyRing(
        active=kid, keys={**old.keys, kid: key}, source=old.source, retired_audit_keys=old.retired_audit_keys
    )
    if not settings.key_from_env:
        write_keyring(settings.key_file, both)
    crypto_old, crypto_new = FieldCrypto(old), FieldCrypto(both)
    counts = {"ssn": 0, "member_id": 0, "attachment": 0, "hl7_inbound": 0}
    for pid, enc in s.execute(sa.select(Patient.id, Patient.ssn_enc).where(col(Patient.ssn_enc).is_not(None))).all():
        value = crypto_old.decrypt(enc, "ssn")
        s.execute(
            sa.update(Patient)
            .where(Patient.id == pid)
            .values(ssn_enc=crypto_new.encrypt(value, "ssn"), ssn_bidx=crypto_new.blind_index(value, "ssn"))
        )
        counts["ssn"] += 1
    for cid, enc in s.execute(sa.select(Coverage.id, Coverage.member_id_enc)).all():
        value = crypto_old.decrypt(enc, "member_id")
        s.execute(
            sa.update(Coverage)
            .where(Coverage.id == cid)
            .values(
                member_id_enc=crypto_new.encrypt(value, "member_id"),
                member_id_bidx=crypto_new.blind_index(value, "member_id"),
            )
        )
        counts["member_id"] += 1
    for aid, enc in s.execute(sa.select(MessageAttachment.id, MessageAttachment.data_enc)).all():
        value = crypto_old.decrypt(enc, ATTACHMENT_KIND)
        s.execute(
            sa.update(MessageAttachment)
            .where(MessageAttachment.id == aid)
            .values(data_enc=crypto_new.encrypt(value, ATTACHMENT_KIND))
        )
        counts["attachment"] += 1
    _rotate_intake(s, crypto_old, crypto_new, counts)
    from hpms.models.hl7 import INBOUND_KIND, Hl7Inbound

    for iid, enc in s.execute(sa.select(Hl7Inbound.id, Hl7Inbound.raw_enc)).all():
        value = crypto_old.decrypt(enc, INBOUND_KIND)
        s.execute(
            sa.update(Hl7Inbound).where(Hl7Inbound.id == iid).values(raw_enc=crypto_new.encrypt(value, INBOUND_KIND))
        )
        counts["hl7_inbound"] += 1
    s.execute(sa.update(KeyState).where(KeyState.id == 1).values(active_kid=kid))
    ctx._crypto, ctx._key_checked = crypto_new, True
    audit.record(ctx, audit.Event("rotate", "keys", kid, detail=" ".join(f"{k}={n}" for k, n in counts.items())))
    return {
        "key_id": kid,
        "previous_key_id": old.active,
        "reencrypted": counts,
        "key_file": None if settings.key_from_env else str(settings.key_file),
    }


def _rotate_intake(s: Session, crypto_old: FieldCrypto, crypto_new: FieldCrypto, counts: dict[str, int]) -> None:
    """The member ids and card photos staged from the portal, counted with the coverages' member
    ids and the attachments."""
    from hpms.models.intake import UPLOAD_KIND, IntakeRequest, IntakeUpload

    staged = sa.select(IntakeRequest.id, IntakeRequest.member_id_enc).where(
        col(IntakeRequest.member_id_enc).is_not(None)
    )
    for rid, enc in s.execute(staged).all():
        value = crypto_old.decrypt(enc, "member_id")
        s.execute(
            sa.update(IntakeRequest)
            .where(IntakeRequest.id == rid)
            .values(member_id_enc=crypto_new.encrypt(value, "member_id"))
        )
        counts["member_id"] += 1
    for uid, enc in s.execute(sa.select(IntakeUpload.id, IntakeUpload.data_enc)).all():
        value = crypto_old.decrypt(enc, UPLOAD_KIND)
        s.execute(
            sa.update(IntakeUpload)
            .where(IntakeUpload.id == uid)
            .values(data_enc=crypto_new.encrypt(value, UPLOAD_KIND))
        )
        counts["attachment"] += 1


def finish_rotation(settings: Settings, kid: str) -> None:
    """After the re-encryption committed: drop the old keys from the key file."""
    if settings.key_from_env:
        return
    ring = load_keyring(settings)
    write_keyring(
        settings.key_file,
        KeyRing(
            active=kid, keys=ring.keys, source=ring.source, retired_audit_keys=ring.retired_audit_keys
        ).without_old_keys(),
    )


def export_key(ctx: Ctx, dest: Path, *, overwrite: bool = False) -> dict:
    """Write a copy of the practice key ring to `dest` (0600, temp name then renamed), for
    safekeeping apart from the database; the export is audited with the key id it holds, so
    the pre-flight checks can tell its age and whether a later rotation made it stale.
    Raises PermissionDenied, ValidationError, ConflictError, EncryptionKeyError."""
    from hpms.fileio import write_atomically

    require(ctx.actor, "keys.export")
    dest = Path(dest).expanduser()
    if dest.is_dir():
        raise ValidationError("to", f"{dest} is a directory; give a file name")
    if not dest.parent.is_dir():
        raise ValidationError("to", f"directory {dest.parent} does not exist")
    if not ctx.settings.key_from_env and dest.resolve() == ctx.settings.key_file.resolve():
        raise ValidationError("to", "is the key file itself")
    if dest.exists() and not overwrite:
        raise ConflictError(f"{dest} exists", field="to", retry_with=("yes",), hint="to overwrite it")
    ring = ctx.key_ring
    audit.record(ctx, audit.Event("export", "key", ring.active, detail=f"to {dest.name}"))
    ctx.session.flush()
    write_atomically(dest, ring.to_json().encode(), field="to", mode=0o600)
    return {"exported": str(dest), "key_id": ring.active, "keys": sorted(ring.keys)}


def ensure_reachable(settings: Settings) -> None:
    """Connect once; DatabaseUnavailable with a one-line reason when that fails."""
    engine = _engine_for(settings)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        raise connect_error(settings.database_url, exc) from None
    finally:
        engine.dispose()


__all__ = [
    "init",
    "upgrade",
    "check",
    "backup",
    "restore",
    "rotate_keys",
    "finish_rotation",
    "export_key",
    "ensure_reachable",
    "DatabaseUnavailable",
]
