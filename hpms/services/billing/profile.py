"""The practice's billing profile: its tax id and X12 identities (the submitter, and the
receiver: the clearinghouse), and whether its files are production data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpms.errors import Action, ValidationError
from hpms.models import BillingProfile
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

PROFILE_FIELDS = (
    "tax_id",
    "submitter_id",
    "submitter_name",
    "receiver_id",
    "receiver_name",
    "contact_name",
    "contact_phone",
    "production",
)


def get_profile(ctx: Ctx) -> dict[str, Any]:
    require(ctx.actor, "billing.read")
    p = ctx.session.get(BillingProfile, ctx.org_id)
    return {f: getattr(p, f) if p else (False if f == "production" else None) for f in PROFILE_FIELDS}


def set_profile(ctx: Ctx, **data: Any) -> dict[str, Any]:
    """Set the fields given (None: unchanged). Raises ValidationError naming the field,
    PermissionDenied."""
    require(ctx.actor, "billing.setup")
    p = ctx.session.get(BillingProfile, ctx.org_id)
    if p is None:
        p = BillingProfile(org_id=ctx.org_id)
        ctx.session.add(p)
    changed = []
    for f, val in data.items():
        if val is None:
            continue
        if f == "tax_id":
            digits = "".join(ch for ch in str(val) if ch.isdigit())
            if len(digits) != 9 or not all(ch.isdigit() or ch in "- " for ch in str(val).strip()):
                raise ValidationError(f, "must be a 9-digit EIN (12-3456789)")
            val = digits
        elif f in ("submitter_id", "receiver_id"):
            val = v.require_text(f, val, 15)
            if not all(ch.isalnum() for ch in val):
                raise ValidationError(f, "letters and digits only")
        elif f == "production":
            val = bool(val)
        elif f == "contact_phone":
            val = v.parse_phone(f, val)
        else:
            val = v.require_text(f, val, 60)
        setattr(p, f, val)
        changed.append(f)
    if not changed:
        raise ValidationError("options", "nothing to change")
    p.updated_at = ctx.now()
    ctx.session.flush()
    audit.record(ctx, audit.Event("update", "billing_profile", ctx.org_id, fields=changed))
    return get_profile(ctx)


def for_sending(ctx: Ctx) -> BillingProfile:
    """The profile, with the submitter and receiver ids every X12 file needs. Raises
    ValidationError without them."""
    profile = ctx.session.get(BillingProfile, ctx.org_id)
    if profile is None or not profile.submitter_id or not profile.receiver_id:
        raise ValidationError(
            None,
            "the billing profile has no submitter and receiver (clearinghouse) ids",
            action=Action(
                "billing", "setup", give=(("submitter_id", "ID"), ("receiver_id", "ID")), purpose="set them with"
            ),
        )
    return profile
