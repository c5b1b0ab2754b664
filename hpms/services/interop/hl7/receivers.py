"""The systems that get hpms's HL7 messages: an MLLP listener (host and port) or a folder,
each with the groups of events it takes (siu: the visits; adt: the patients)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import ConflictError, NotFoundError, ValidationError
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.models import Hl7ReceiverOut
    from hpms.services.platform.context import Ctx

_CACHE_KEY = "hpms.hl7.receivers"  # in the session's info: (transaction, its active receivers)
_ACTIVE = sa.text(
    "SELECT id, events, receiving_app, receiving_facility FROM hl7_receiver"
    " WHERE org_id = :org AND active = true ORDER BY id"
)


@dataclass(frozen=True)
class Active:
    """What the event hooks need of a receiver."""

    id: int
    events: frozenset[str]
    receiving_app: str
    receiving_facility: str


def active(ctx: Ctx) -> tuple[Active, ...]:
    """The active receivers, read once per transaction (the hooks of a transaction with several
    events ask once; adding or removing a receiver forgets it)."""
    tx = ctx.session.get_transaction()
    cached = ctx.session.info.get(_CACHE_KEY)
    if cached is not None and cached[0] is tx:
        return cached[1]
    # Plain SQL: the models of the HL7 tables (and of scheduling, whose tables they name) stay
    # unloaded for a registration.
    rows = ctx.session.execute(_ACTIVE, {"org": ctx.org_id}).all()
    found = tuple(Active(i, frozenset(e.split(",")), app, fac) for i, e, app, fac in rows)
    ctx.session.info[_CACHE_KEY] = (tx, found)
    return found


def forget(ctx: Ctx) -> None:
    ctx.session.info.pop(_CACHE_KEY, None)


def _events(value: str | None) -> str:
    from hpms.models.hl7 import EVENT_GROUPS

    wanted = [x.strip().lower() for x in (value or "siu,adt").split(",") if x.strip()]
    if not wanted:
        raise ValidationError("events", "name at least one of siu, adt")
    for x in wanted:
        if x not in EVENT_GROUPS:
            raise ValidationError("events", f"{x!r} is not a group of events (siu, adt)")
    return ",".join(g for g in EVENT_GROUPS if g in wanted)


def _hl7_name(field: str, value: str | None, default: str) -> str:
    text = (value or "").strip() or default
    if len(text) > 20 or any(c in text for c in "|^~\\&") or v.CONTROL_CHARS.search(text):
        raise ValidationError(field, f"{text!r} must be 1 to 20 characters without | ^ ~ \\ &")
    return text


def add(
    ctx: Ctx,
    *,
    name: str,
    host: str | None = None,
    port: int | None = None,
    folder: str | None = None,
    events: str | None = None,
    receiving_app: str | None = None,
    receiving_facility: str | None = None,
) -> Hl7ReceiverOut:
    """A receiver over MLLP (`host`, `port`) or into `folder` (checked to take new files). A
    removed receiver of the same name comes back with these settings. Raises ValidationError
    naming the field, ConflictError (the name is in use)."""
    from hpms.fileio import check_directory
    from hpms.models import Hl7Receiver, Hl7ReceiverOut

    require(ctx.actor, "hl7.admin")
    label = v.require_text("name", name, 64)
    if not all(c.isalnum() or c in "-_." for c in label):
        raise ValidationError("name", f"{label!r}: letters, digits, - _ . only")
    if (folder is None) == (host is None and port is None):
        raise ValidationError("host", "give a host and port, or a folder")
    kind = "folder" if folder is not None else "mllp"
    where: str | None = None
    if kind == "mllp":
        host = (host or "").strip()
        if not host or len(host) > 255 or any(c.isspace() or c in "/@" for c in host):
            raise ValidationError("host", f"{host!r} is not a host name or address")
        if port is None or not 1 <= port <= 65535:
            raise ValidationError("port", "must be from 1 to 65535")
    else:
        where = str(check_directory(folder, field="folder").resolve())
    groups = _events(events)
    app = _hl7_name("receiving_app", receiving_app, label.upper()[:20])
    facility = _hl7_name("receiving_facility", receiving_facility, label.upper()[:20])
    row = ctx.session.execute(
        sa.select(Hl7Receiver).where(Hl7Receiver.org_id == ctx.org_id, Hl7Receiver.name == label)
    ).scalar_one_or_none()
    if row is not None and row.active:
        raise ConflictError(f"a receiver {label!r} exists", field="name")
    if row is None:
        row = Hl7Receiver(org_id=ctx.org_id, name=label, kind=kind, receiving_app=app, receiving_facility=facility)
        ctx.session.add(row)
    row.kind, row.host, row.port, row.folder = (
        kind,
        host if kind == "mllp" else None,
        port if kind == "mllp" else None,
        where,
    )
    row.events, row.receiving_app, row.receiving_facility, row.active = groups, app, facility, True
    row.created_at = ctx.now()
    ctx.session.flush()
    forget(ctx)
    audit.record(
        ctx, audit.Event("create", "hl7_receiver", row.id, fields=["kind", "events"], detail=f"{kind} {label}")
    )
    return Hl7ReceiverOut.model_validate(row)


def find(ctx: Ctx, name: str) -> int:
    """The id of the receiver `name` (active or not). Raises NotFoundError."""
    from hpms.models import Hl7Receiver

    found = ctx.session.execute(
        sa.select(Hl7Receiver.id).where(Hl7Receiver.org_id == ctx.org_id, Hl7Receiver.name == (name or "").strip())
    ).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"no HL7 receiver {name!r}", field="name")
    return int(found)


def list_receivers(ctx: Ctx, *, include_removed: bool = False) -> list[Hl7ReceiverOut]:
    from hpms.models import Hl7Receiver, Hl7ReceiverOut

    require(ctx.actor, "interfaces.read")
    stmt = sa.select(Hl7Receiver).where(Hl7Receiver.org_id == ctx.org_id)
    if not include_removed:
        stmt = stmt.where(col(Hl7Receiver.active).is_(True))
    rows = ctx.session.execute(stmt.order_by(Hl7Receiver.name)).scalars().all()
    return [Hl7ReceiverOut.model_validate(r) for r in rows]


def remove(ctx: Ctx, name: str) -> dict[str, object]:
    """Stop sending to a receiver: it gets nothing new, and what was still queued for it is
    withdrawn (`cancelled`); its history stays. Raises NotFoundError."""
    from hpms.models import Hl7Message, Hl7Receiver

    require(ctx.actor, "hl7.admin")
    row = ctx.session.get(Hl7Receiver, find(ctx, name))
    assert row is not None
    if not row.active:
        raise NotFoundError(f"no HL7 receiver {name!r}", field="name")
    row.active = False
    res = ctx.session.execute(
        sa.update(Hl7Message)
        .where(Hl7Message.receiver_id == row.id, Hl7Message.state == "queued")
        .values(state="cancelled", error="its receiver was removed")
        .execution_options(synchronize_session=False)
    )
    ctx.session.flush()
    forget(ctx)
    withdrawn = int(res.rowcount or 0)
    audit.record(ctx, audit.Event("delete", "hl7_receiver", row.id, detail=f"{withdrawn} queued message(s) withdrawn"))
    return {"name": row.name, "removed": True, "withdrawn": withdrawn}
