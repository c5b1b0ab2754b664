"""Field-level encryption (AES-GCM) and HMAC blind indexes for exact-match search.

The key ring lives in a 0600 JSON file in HPMS_HOME (or one key in HPMS_KEY). Each
ciphertext and blind index carries the id of the key that made it, so a rotation that
stopped half-way leaves every value readable.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hpms.errors import EncryptionKeyError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.config import Settings

KEY_BYTES = 32


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (ValueError, TypeError):
        raise EncryptionKeyError(f"{source}: not a base64 key") from None
    if len(key) != KEY_BYTES:
        raise EncryptionKeyError(f"{source}: key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"hpms-key-id" + key).hexdigest()[:8]


def _derive(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"hpms v1 " + purpose, hashlib.sha256).digest()


@functools.lru_cache(maxsize=32)
def audit_key(key: bytes) -> bytes:
    """The key that seals audit events, derived from a practice key (one-way: it opens no field).
    Derived once per key: every write seals its audit events with it."""
    return _derive(key, b"audit seal")


@dataclass
class KeyRing:
    active: str
    keys: dict[str, bytes]
    source: str
    # The audit keys of practice keys dropped by a rotation: events they sealed stay verifiable,
    # while the dropped keys themselves (which would decrypt old copies of fields) are gone.
    retired_audit_keys: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def single(cls, key: bytes, source: str) -> KeyRing:
        kid = key_id(key)
        return cls(active=kid, keys={kid: key}, source=source)

    def copy(self) -> KeyRing:
        """A ring of the same keys that the caller may change without touching this one."""
        return KeyRing(self.active, dict(self.keys), self.source, dict(self.retired_audit_keys))

    def audit_keys(self) -> dict[str, bytes]:
        """Every audit key this ring can verify with, by practice key id."""
        return {**self.retired_audit_keys, **{kid: audit_key(k) for kid, k in self.keys.items()}}

    def without_old_keys(self) -> KeyRing:
        """The active key alone, keeping the audit keys of the ones dropped."""
        return KeyRing(
            active=self.active,
            keys={self.active: self.keys[self.active]},
            source=self.source,
            retired_audit_keys={kid: k for kid, k in self.audit_keys().items() if kid != self.active},
        )

    def to_json(self) -> str:
        data: dict[str, object] = {
            "version": 1,
            "active": self.active,
            "keys": {k: encode_key(v) for k, v in self.keys.items()},
        }
        if self.retired_audit_keys:
            data["audit_keys"] = {k: encode_key(v) for k, v in self.retired_audit_keys.items()}
        return json.dumps(data, indent=2)


def write_keyring(path: Path, ring: KeyRing) -> None:
    """Write the key file atomically with mode 0600 (a temp name in its folder, then renamed)."""
    from hpms.fileio import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(path, ring.to_json().encode(), field="key_file", mode=0o600)


def create_key_file(path: Path) -> bool:
    """Create a new key file unless one exists; True when created."""
    if path.exists():
        return False
    write_keyring(path, KeyRing.single(new_key(), str(path)))
    return True


def load_keyring(settings: Settings) -> KeyRing:
    """The key ring from HPMS_KEY or the key file; EncryptionKeyError when there is none."""
    env_key = os.environ.get("HPMS_KEY")
    if env_key:
        return KeyRing.single(decode_key(env_key, "HPMS_KEY"), "HPMS_KEY")
    path: Path = settings.key_file
    try:
        st = path.stat()  # one look at the file: whether it is there, and the stamp of the cache below
    except (FileNotFoundError, NotADirectoryError):
        raise EncryptionKeyError(
            f"no encryption key: {path} does not exist",
            hint="copy the key file from the machine that set up this database, or set HPMS_KEY",
        ) from None
    mode = st.st_mode & 0o777
    if os.name == "posix" and mode & 0o077:
        raise EncryptionKeyError(
            f"key file {path} is readable by others (mode {mode:04o}); refusing to use it",
            hint="make it readable by its owner alone (mode 0600, e.g. chmod 600 on the file)",
        )
    # Every service context reads the ring (it seals the audit trail): parsing the file again
    # cost as much as a short search. The cache is keyed on the file's identity, size, mode and
    # modification time, so a rotated, replaced or re-permissioned key file is read afresh.
    stamp = (str(path), st.st_ino, st.st_dev, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    cached = _RING_CACHE.get(stamp)
    if cached is not None:
        return cached.copy()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        keys = {kid: decode_key(v, str(path)) for kid, v in data["keys"].items()}
        retired = {kid: decode_key(v, str(path)) for kid, v in data.get("audit_keys", {}).items()}
        active = data["active"]
        if active not in keys:
            raise KeyError(active)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise EncryptionKeyError(f"key file {path} is damaged") from None
    ring = KeyRing(active=active, keys=keys, source=str(path), retired_audit_keys=retired)
    _RING_CACHE.clear()
    _RING_CACHE[stamp] = ring.copy()
    return ring


_RING_CACHE: dict[tuple[object, ...], KeyRing] = {}


class FieldCrypto:
    """Encrypt, decrypt and blind-index sensitive fields with a key ring."""

    def __init__(self, ring: KeyRing) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only when needed

        self.ring = ring
        self._aead = {kid: AESGCM(_derive(k, b"field encryption")) for kid, k in ring.keys.items()}
        self._bidx = {kid: _derive(k, b"blind index") for kid, k in ring.keys.items()}

    def encrypt(self, value: str, kind: str) -> str:
        nonce = secrets.token_bytes(12)
        ct = self._aead[self.ring.active].encrypt(nonce, value.encode(), kind.encode())
        return f"{self.ring.active}:{base64.b64encode(nonce + ct).decode()}"

    def decrypt(self, token: str, kind: str) -> str:
        from cryptography.exceptions import InvalidTag  # only when needed

        kid, _, body = token.partition(":")
        aead = self._aead.get(kid)
        if aead is None:
            raise EncryptionKeyError(f"value was encrypted with key {kid}, which {self.ring.source} does not hold")
        raw = base64.b64decode(body)
        try:
            return aead.decrypt(raw[:12], raw[12:], kind.encode()).decode()
        except InvalidTag:
            raise EncryptionKeyError(f"key {kid} from {self.ring.source} does not decrypt this value") from None

    def blind_index(self, value: str, kind: str, kid: str | None = None) -> str:
        kid = kid or self.ring.active
        # hmac.digest: the one-shot form, same MAC without building an HMAC object per value.
        mac = hmac.digest(self._bidx[kid], f"{kind}:{value}".encode(), "sha256")
        return f"{kid}:{mac.hex()[:40]}"

    def blind_indexes(self, value: str, kind: str) -> list[str]:
        """The index under every key held, for searches during a rotation."""
        return [self.blind_index(value, kind, kid) for kid in self.ring.keys]


def bind_to_database(session: Session, crypto: FieldCrypto | None, settings: Settings) -> FieldCrypto:
    """The crypto to use in this transaction, agreeing with the database's active key.

    Reads `key_state` FOR SHARE, so a rotation (which locks it FOR UPDATE) waits for this
    transaction, and this one waits for a rotation in progress. A process whose keys predate
    a rotation reloads the key file; one without the database's key gets EncryptionKeyError
    instead of writing values nobody else could read."""
    # Making and reading keys needs no database: sqlalchemy and the models load only here.
    import sqlalchemy as sa

    from hpms.models import KeyState

    kid = session.execute(
        sa.select(KeyState.active_kid).where(KeyState.id == 1).with_for_update(read=True)
    ).scalar_one_or_none()
    if crypto is None:
        crypto = FieldCrypto(load_keyring(settings))
    if kid is None or kid == crypto.ring.active:
        return crypto
    ring = load_keyring(settings)
    if kid not in ring.keys:
        raise EncryptionKeyError(
            f"the database's values are encrypted under key {kid}, which {ring.source} does not hold",
            hint="copy the key file from the machine that set up or last rotated this database's key, or set HPMS_KEY",
        )
    return FieldCrypto(KeyRing(active=kid, keys=ring.keys, source=ring.source))
