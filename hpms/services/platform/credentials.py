"""Stored sign-ins: a user's API token kept for one database, so people need not export it.

An entry is keyed by the database's identity (its URL without the password, plus the id and
creation time of the practice in it), so a token stored for a demo clinic is never offered to
another database. Entries live in the OS keyring when the `keyring` package is importable and
has a working backend, else in a private file (0600, directory 0700) in the user's config
directory (`platformdirs.user_config_dir("hpms")`, which honours XDG_CONFIG_HOME), or at
HPMS_CREDENTIALS. Signing in and out (verifying the token first) is hpms.services.platform.signin.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hpms.errors import UsageError
from hpms.models import Organization

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ENV_CREDENTIALS = "HPMS_CREDENTIALS"
KEYRING_SERVICE = "hpms"
FILE_NAME = "credentials.json"


@dataclass(frozen=True)
class StoredLogin:
    username: str
    token: str


def credentials_file(env: Mapping[str, str] | None = None) -> Path:
    """Where the file store lives (also when the keyring holds the entries)."""
    env = os.environ if env is None else env
    if env.get(ENV_CREDENTIALS):
        return Path(env[ENV_CREDENTIALS]).expanduser()
    return _default_file(os.environ.get("XDG_CONFIG_HOME"), os.environ.get("HOME"))


@functools.lru_cache(maxsize=8)
def _default_file(xdg_config_home: str | None, home: str | None) -> Path:
    """The platform's place for the file, worked out once per environment it depends on (every
    command asks whether a sign-in is stored)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("hpms", appauthor=False)) / FILE_NAME


def database_identity(session: Session) -> str:
    """The database as the stored entries know it: URL without password, practice id and birth."""
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    org = session.execute(sa.select(Organization.id, Organization.created_at).order_by(Organization.id)).first()
    if org is None:
        return url
    created = org.created_at.isoformat() if org.created_at is not None else ""
    return f"{url}#{org.id}@{created}"


@functools.cache
def _keyring_installed() -> bool:
    # a failed import is not cached by Python, and every command asks: ask the path once
    return importlib.util.find_spec("keyring") is not None


def _keyring() -> Any | None:
    """The keyring module when it is installed and has a usable backend, else None."""
    if not _keyring_installed():
        return None
    try:
        import keyring  # type: ignore[import-not-found,unused-ignore]
        from keyring.backends import fail  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    try:
        if isinstance(keyring.get_keyring(), fail.Keyring):
            return None
    except Exception:  # noqa: BLE001 - a broken backend means: use the file
        return None
    return keyring


def _read_file(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"credentials file {path} cannot be read: {exc}") from None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise UsageError(f"credentials file {path} holds no stored sign-ins (unexpected content)")
    return {k: v for k, v in entries.items() if isinstance(v, dict)}


def _write_file(path: Path, entries: dict[str, dict[str, str]]) -> None:
    from hpms.fileio import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    body = json.dumps({"version": 1, "entries": entries}, indent=2, sort_keys=True) + "\n"
    write_atomically(path, body.encode("utf-8"), field="credentials", mode=0o600)


def may_hold_any(env: Mapping[str, str] | None = None) -> bool:
    """Whether a sign-in may be stored at all (a keyring, or the file): when not, nothing need
    be read from the database to look one up."""
    return _keyring() is not None or os.path.lexists(credentials_file(env))


def load(identity: str, env: Mapping[str, str] | None = None) -> StoredLogin | None:
    """The sign-in stored for the database `identity`, if any."""
    ring = _keyring()
    if ring is not None:
        try:
            raw = ring.get_password(KEYRING_SERVICE, identity)
        except Exception:  # noqa: BLE001 - a locked or broken keyring: fall back to the file
            raw = None
        if raw:
            try:
                value = json.loads(raw)
                return StoredLogin(str(value["username"]), str(value["token"]))
            except (ValueError, KeyError, TypeError):
                return None
    entry = _read_file(credentials_file(env)).get(identity)
    if not entry or "username" not in entry or "token" not in entry:
        return None
    return StoredLogin(str(entry["username"]), str(entry["token"]))


def store(identity: str, login: StoredLogin, env: Mapping[str, str] | None = None) -> str:
    """Keep `login` for the database `identity`; returns where it went ("keyring" or the file)."""
    ring = _keyring()
    if ring is not None:
        try:
            ring.set_password(KEYRING_SERVICE, identity, json.dumps({"username": login.username, "token": login.token}))
            return "keyring"
        except Exception:  # noqa: BLE001 - fall back to the file
            pass
    path = credentials_file(env)
    entries = _read_file(path)
    entries[identity] = {"username": login.username, "token": login.token}
    _write_file(path, entries)
    return str(path)


def remove(identity: str | None, env: Mapping[str, str] | None = None) -> int:
    """Forget the sign-in for `identity` (every stored sign-in when None); returns how many."""
    removed = 0
    ring = _keyring()
    if ring is not None and identity is not None:
        try:
            if ring.get_password(KEYRING_SERVICE, identity):
                ring.delete_password(KEYRING_SERVICE, identity)
                removed += 1
        except Exception:  # noqa: BLE001
            pass
    path = credentials_file(env)
    entries = _read_file(path)
    if identity is None:
        removed += len(entries)
        entries = {}
    elif entries.pop(identity, None) is not None:
        removed += 1
    if path.exists():
        if entries:
            _write_file(path, entries)
        else:
            path.unlink()
    return removed
