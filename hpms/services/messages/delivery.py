"""Delivery reports: what the SMS provider later says became of a message it took.

`delivered` (or `read`) marks the message delivered; `undelivered` and `failed` mark it failed,
with the carrier's error code and what it means, so it shows on the staff's list of failed
messages; the provider's progress reports (queued, sending, sent, accepted...) change
nothing. A report never takes a message back: a late `sent` after `delivered` changes
nothing, a second report of the same fate neither; `delivered` after a failure does count (the
handset got it after all)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.errors import NotFoundError, ValidationError
from hpms.services.platform import audit
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

DELIVERED = frozenset({"delivered", "read"})
UNDELIVERED = frozenset({"undelivered", "failed"})
# On their way: nothing to record.
UNDERWAY = frozenset({"accepted", "scheduled", "queued", "sending", "sent", "partially_delivered"})
# States a delivery report may turn into `delivered`: the provider has the message (or had it,
# when staff queued it again or it was reported undelivered). A message a sender holds
# (`sending`) is left to that sender.
_MAY_BE_DELIVERED = frozenset({"sent", "failed", "unknown", "queued"})

# The carriers' error codes of undelivered messages (Twilio's 300xx) and what they mean.
CARRIER_ERRORS: dict[str, str] = {
    "30001": "the provider's queue overflowed",
    "30002": "the provider's account is suspended",
    "30003": "the handset is unreachable (off, or out of coverage)",
    "30004": "the message was blocked (the number refuses messages from this sender)",
    "30005": "the number is unknown: it does not exist or is no longer in service",
    "30006": "the number is a landline or its carrier cannot take SMS",
    "30007": "the carrier filtered it (taken for spam)",
    "30008": "the carrier gave no reason",
    "30034": "the sending number is not registered for messages to US numbers (10DLC)",
}


@dataclass(frozen=True)
class StatusOut:
    message_id: int
    state: str
    changed: bool

    def as_dict(self) -> dict[str, object]:
        return {"message_id": self.message_id, "state": self.state, "changed": self.changed}


def failure_text(status: str, error_code: str | None, error_text: str | None) -> str:
    """What staff read of an undelivered message: the carrier's code and its meaning."""
    code = (error_code or "").strip()
    said = f"the SMS provider reports it {status}"
    if code:
        said += f": carrier error {code}"
        meaning = CARRIER_ERRORS.get(code)
        if meaning:
            said += f" ({meaning})"
    if error_text and error_text.strip():
        said += f": {' '.join(error_text.split())}"
    return said[:500]


def record_status(
    ctx: Ctx,
    provider_id: str,
    status: str,
    error_code: str | None = None,
    error_text: str | None = None,
) -> StatusOut:
    """Record the provider's report on the message it knows as `provider_id`, in the caller's
    transaction (see the module docstring). Raises ValidationError naming `status` or
    `provider_id`, NotFoundError (no message has this provider id), PermissionDenied."""
    from hpms.models import Message

    require(ctx.actor, "messages.send")
    provider_id = (provider_id or "").strip()
    if not provider_id:
        raise ValidationError("provider_id", "is required")
    said = (status or "").strip().lower()
    if said not in DELIVERED | UNDELIVERED | UNDERWAY:
        raise ValidationError("status", f"{status!r} is not a message status the provider reports")
    msg = ctx.session.execute(
        sa.select(Message).where(
            Message.org_id == ctx.org_id, Message.channel == "sms", Message.provider_id == provider_id
        )
    ).scalar_one_or_none()
    if msg is None:
        raise NotFoundError(f"no message was sent with provider id {provider_id[:64]!r}")
    assert msg.id is not None
    was = msg.state
    if said in DELIVERED and was in _MAY_BE_DELIVERED:
        msg.state, msg.delivered_at, msg.error = "delivered", ctx.now(), None
        fields, detail = ["state", "delivered_at"], f"{was} -> delivered, reported by the SMS provider"
    elif said in UNDELIVERED and was == "sent":
        msg.state, msg.error = "failed", failure_text(said, error_code, error_text)
        code = f" (carrier error {error_code.strip()})" if error_code and error_code.strip() else ""
        fields, detail = ["state", "error"], f"sent -> failed{code}: {said}, reported by the SMS provider"
    else:
        return StatusOut(msg.id, msg.state, changed=False)
    ctx.session.flush()
    audit.record(ctx, audit.Event("update", "message", msg.id, patient_id=msg.patient_id, fields=fields, detail=detail))
    return StatusOut(msg.id, msg.state, changed=True)


def check_server(ctx: Ctx) -> None:
    """That the actor may take the provider's reports and the patients' replies (what the web
    server does for each request). Raises PermissionDenied."""
    require(ctx.actor, "messages.send")
    require(ctx.actor, "messages.inbound")


__all__ = ["record_status", "check_server", "failure_text", "StatusOut", "CARRIER_ERRORS"]
