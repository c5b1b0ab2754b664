"""Signed, expiring links in messages: a token names its purpose (manage one visit, answer its
survey), the visit, the patient and when it expires, signed with HMAC-SHA256 under a key
derived from the practice key. Only these internal numbers are in it (no name, date or MRN);
a token altered in any way, expired, or made for another purpose is worth nothing.

Stands on the platform alone: the scheduling and message services that make links import it."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

MANAGE, SURVEY = "manage", "survey"
PURPOSES = {MANAGE: "m", SURVEY: "s"}  # purpose -> its letter in the token and its path
PATHS = {MANAGE: "/v/", SURVEY: "/s/"}
SURVEY_LINK_DAYS = 30  # a survey link works this long after it is made
MAC_BYTES = 18  # 144 bits of the HMAC: short enough for an SMS, far beyond guessing
MAX_TOKEN = 200


@dataclass(frozen=True)
class Link:
    """What a valid token says."""

    purpose: str
    appointment_id: int
    patient_id: int
    expires_at: dt.datetime


def _keys(ctx: Ctx) -> list[bytes]:
    """The link keys of every practice key the ring holds, the active one first: a link made
    before a key rotation keeps working until it expires."""
    ring = ctx.key_ring
    order = [ring.active, *(k for k in ring.keys if k != ring.active)]
    return [hmac.new(ring.keys[k], b"hpms v1 portal links", hashlib.sha256).digest() for k in order]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES]


def make(ctx: Ctx, *, purpose: str, appointment_id: int, patient_id: int, expires_at: dt.datetime) -> str:
    """A URL-safe token for `purpose` (manage or survey) of one visit of one patient, valid
    until `expires_at`. Raises ValueError for an unknown purpose."""
    letter = PURPOSES[purpose]
    payload = f"{letter}.{appointment_id}.{patient_id}.{int(expires_at.timestamp())}"
    return f"{_b64(payload.encode('ascii'))}.{_b64(_mac(_keys(ctx)[0], payload))}"


def check(ctx: Ctx, token: str | None, purpose: str) -> Link | None:
    """What `token` says when it is intact, made for `purpose` and not yet expired; else None
    (the caller answers every such case the same way)."""
    if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
        return None
    body, _, mac = token.partition(".")
    try:
        payload = _unb64(body).decode("ascii")
        given = _unb64(mac)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not any(hmac.compare_digest(given, _mac(key, payload)) for key in _keys(ctx)):
        return None
    parts = payload.split(".")
    if len(parts) != 4 or parts[0] != PURPOSES.get(purpose) or not all(p.isdigit() for p in parts[1:]):
        return None
    expires = dt.datetime.fromtimestamp(int(parts[3]), dt.UTC)
    if expires <= ctx.now():
        return None
    return Link(purpose, int(parts[1]), int(parts[2]), expires)


def url(ctx: Ctx, token: str, purpose: str) -> str:
    """The full address of a link ("" when the portal's public address is not set)."""
    base = ctx.settings.portal_public_url
    return f"{base}{PATHS[purpose]}{token}" if base else ""


def manage_url(ctx: Ctx, *, appointment_id: int, patient_id: int, start: dt.datetime) -> str:
    """The link to cancel or move a visit, valid until the visit starts ("" without the
    portal's public address)."""
    if not ctx.settings.portal_public_url:
        return ""
    token = make(ctx, purpose=MANAGE, appointment_id=appointment_id, patient_id=patient_id, expires_at=start)
    return url(ctx, token, MANAGE)


def survey_url(ctx: Ctx, *, appointment_id: int, patient_id: int, sent_at: dt.datetime) -> str:
    """The link to a visit's survey, valid SURVEY_LINK_DAYS from `sent_at` ("" without the
    portal's public address)."""
    if not ctx.settings.portal_public_url:
        return ""
    expires = sent_at + dt.timedelta(days=SURVEY_LINK_DAYS)
    token = make(ctx, purpose=SURVEY, appointment_id=appointment_id, patient_id=patient_id, expires_at=expires)
    return url(ctx, token, SURVEY)
