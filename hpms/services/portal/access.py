"""Passwordless sign-in and sessions of the patient portal, and what a signed-in patient sees.

A patient gives an email address or a mobile number and their date of birth; when exactly one
patient matches, a 6-digit code goes to that address through the outbox. The answer is the
same whether or not anyone matched. Codes and session tokens are kept only as HMAC-SHA256
digests under a key derived from the practice key; a code works once, for 10 minutes, and
for at most 5 tries. Sign-ins, failed codes and sign-outs are audited with the patient as the
actor (`patient:<id>`, on behalf of the user who runs the web server)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import ValidationError
from hpms.models import Actor, Patient
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

log = logging.getLogger("hpms.portal")

CODE_LIFETIME = dt.timedelta(minutes=10)
MAX_TRIES = 5  # wrong codes before a code stops working
CODES_PER_PATIENT = 3  # codes sent to one patient...
CODE_WINDOW = dt.timedelta(minutes=15)  # ...within this long
ATTEMPTS_PER_ADDRESS = 10  # sign-in requests and code entries from one client address...
ADDRESS_WINDOW = dt.timedelta(minutes=15)  # ...within the sliding window before now
CODE_TEMPLATE = "portal_code"
NOT_RIGHT = "that code is not right, or it is no longer valid: check it, or ask for a new code"


@dataclass(frozen=True)
class Started:
    """A sign-in asked for: the browser's pending sign-in (the same shape whether or not a
    patient matched), or `throttled` when the client address asked too often."""

    challenge: str | None
    throttled: bool = False


@dataclass(frozen=True)
class CodeChecked:
    """A code entered: the new session's token when it was right, else why not (a plain
    message, the same for a wrong, expired or used code)."""

    token: str | None
    message: str | None = None
    throttled: bool = False


@dataclass(frozen=True)
class Visit:
    """One of the signed-in patient's visits to come, in its location's zone."""

    start: dt.datetime
    what: str
    provider: str
    location: str
    status: str
    id: int = 0


@dataclass(frozen=True)
class Person:
    id: int
    name: str


@dataclass(frozen=True)
class Home:
    """What a signed-in patient sees: who they are, whom they act for, that patient's visits to
    come, and the patients they may switch to (themselves first)."""

    signed_in: Person
    acting_for: Person
    visits: list[Visit]
    may_act_for: list[Person]


# ---- keys and digests ------------------------------------------------------------------------


def _key(ctx: Ctx) -> bytes:
    ring = ctx.key_ring
    return hmac.new(ring.keys[ring.active], b"hpms v1 portal", hashlib.sha256).digest()


def _digest(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def patient_actor(ctx: Ctx, patient_id: int, *, by: int | None = None) -> Actor:
    """The actor of a patient in the portal: no role, on behalf of the server's user. `by` is
    the guardian who signed in when they act for `patient_id`: the audit trail names who acted
    (`patient:<by>`), each event the patient whose records it touched."""
    return Actor(
        user_id=ctx.actor.user_id,
        username=f"patient:{by or patient_id}",
        org_id=ctx.org_id,
        roles=frozenset(),
        auth_method="portal",
        patient_id=patient_id,
    )


def as_patient(ctx: Ctx, patient_id: int, *, by: int | None = None) -> Ctx:
    """The same transaction, acting as the patient (for them, when `by` is their guardian)."""
    return dataclasses.replace(ctx, actor=patient_actor(ctx, patient_id, by=by))


def check_server(ctx: Ctx) -> None:
    """That the actor may serve the portal (sign patients in). Raises PermissionDenied."""
    require(ctx.actor, "portal.serve")


# ---- the throttle -----------------------------------------------------------------------------


def _throttled(ctx: Ctx, key: bytes, client: str) -> bool:
    """Count this attempt from `client`; True when it is over the limit of the sliding window
    (that attempt is not counted: a client that keeps trying is let in once the window moves)."""
    from hpms.models import PortalThrottle

    now = ctx.now()
    who = _digest(key, "client", client or "-")
    table = PortalThrottle.__table__
    conn = ctx.session.connection()
    conn.execute(sa.delete(table).where(table.c.key_hash == who, table.c.at < now - ADDRESS_WINDOW))
    recent = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.key_hash == who)).scalar_one()
    if recent >= ATTEMPTS_PER_ADDRESS:
        return True
    conn.execute(sa.insert(table).values(key_hash=who, at=now))
    return False


def throttled(ctx: Ctx, client: str) -> bool:
    """Count an attempt from `client` (a client address, or a purpose and an address: each has
    its own window); True when it is over the limit of the sliding window."""
    return _throttled(ctx, _key(ctx), client)


# ---- sign-in -------------------------------------------------------------------------------------


def _contact(contact: str | None) -> tuple[str, str]:
    """("email", address) or ("sms", +E.164) from what the patient typed. Raises ValidationError."""
    text = v.clean(contact)
    if text is None:
        raise ValidationError("contact", "is required: your email address or mobile number")
    if "@" in text:
        email = v.parse_email("contact", text)
        assert email is not None
        return "email", email
    try:
        number = v.parse_e164("contact", text)
    except ValidationError:
        raise ValidationError(
            "contact", "is neither an email address nor a mobile number (10 digits, or + and the country code)"
        ) from None
    assert number is not None
    return "sms", number


def parse_sign_in(ctx: Ctx, contact: str | None, dob: str | None) -> tuple[str, str, dt.date]:
    """The channel, address and date of birth of a sign-in form. Raises ValidationError."""
    channel, address = _contact(contact)
    if not (dob or "").strip():
        raise ValidationError("dob", "is required")
    birth = v.parse_dob("dob", dob, today=ctx.now().date())
    return channel, address, birth


def start_sign_in(ctx: Ctx, *, contact: str | None, dob: str | None, client: str) -> Started:
    """Send a sign-in code when exactly one patient has this email address (or mobile number)
    and date of birth, saying nothing of whether one did. Raises ValidationError (the field:
    contact or dob) before anything is written; PermissionDenied."""
    check_server(ctx)
    channel, address, birth = parse_sign_in(ctx, contact, dob)
    key = _key(ctx)
    if _throttled(ctx, key, client):
        return Started(None, throttled=True)
    challenge = secrets.token_urlsafe(32)
    match: Any
    if channel == "email":
        match = Patient.email_norm == address.lower()
    else:
        digits = v.phone_digits(address)
        match = sa.or_(Patient.phone_digits == digits, Patient.phone_alt_digits == digits)
    found = ctx.session.execute(
        sa.select(Patient.id, Patient.email)
        .where(
            Patient.org_id == ctx.org_id,
            Patient.dob == birth,
            match,
            Patient.active.is_(True),
            Patient.merged_into_id.is_(None),  # type: ignore[union-attr]
        )
        .limit(2)
    ).all()
    if len(found) == 1:  # the address on file (an email's case as the practice has it)
        to = (found[0].email or address) if channel == "email" else address
        _send_code(ctx, key, found[0].id, channel, to, challenge)
    return Started(challenge)


def _send_code(ctx: Ctx, key: bytes, patient_id: int, channel: str, address: str, challenge: str) -> None:
    from hpms.models import PortalCode
    from hpms.services.messages import outbox

    now = ctx.now()
    pctx = as_patient(ctx, patient_id)
    recent = ctx.session.execute(
        sa.select(sa.func.count())
        .select_from(PortalCode)
        .where(PortalCode.patient_id == patient_id, PortalCode.created_at > now - CODE_WINDOW)
    ).scalar_one()
    if recent >= CODES_PER_PATIENT:
        audit.record(
            pctx,
            audit.Event(
                "denied", "portal_code", None, patient_id=patient_id, detail="too many sign-in codes asked for"
            ),
        )
        return
    code = f"{secrets.randbelow(1_000_000):06d}"
    row = PortalCode(
        org_id=ctx.org_id,
        patient_id=patient_id,
        challenge_hash=_digest(key, "challenge", challenge),
        code_hash=_digest(key, "code", code),
        channel=channel,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
    )
    ctx.session.add(row)
    ctx.session.flush()
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    body = f"Your sign-in code is {code}. It works once, for {minutes} minutes. If you did not ask for it, ignore this."
    outbox.enqueue(
        pctx,
        channel=channel,
        recipient=address,
        body=body,
        subject="Your sign-in code" if channel == "email" else None,
        template=CODE_TEMPLATE,
        patient_id=patient_id,
    )
    audit.record(pctx, audit.Event("create", "portal_code", row.id, patient_id=patient_id, detail=f"by {channel}"))
    if ctx.settings.portal_dev_codes:
        log.warning("portal_dev_codes: sign-in code for patient %s is %s", patient_id, code)


def check_code(ctx: Ctx, *, challenge: str | None, code: str | None, client: str) -> CodeChecked:
    """Sign in with the code the patient received: a new session's token when it is the right,
    unused, unexpired code of this browser's pending sign-in. A wrong code counts against the
    code and is audited. Raises ValidationError (code) for what is not 6 digits, before anything
    is written; PermissionDenied."""
    from hpms.models import PortalCode

    check_server(ctx)
    text = "".join((code or "").split())
    if not text:
        raise ValidationError("code", "is required: the 6 digits we sent you")
    if len(text) != 6 or not text.isascii() or not text.isdigit():
        raise ValidationError("code", "is 6 digits")
    key = _key(ctx)
    if _throttled(ctx, key, client):
        return CodeChecked(None, throttled=True)
    if not challenge:
        return CodeChecked(None, NOT_RIGHT)
    row = ctx.session.execute(
        sa.select(PortalCode)
        .where(PortalCode.challenge_hash == _digest(key, "challenge", challenge), PortalCode.org_id == ctx.org_id)
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        return CodeChecked(None, NOT_RIGHT)
    now = ctx.now()
    pctx = as_patient(ctx, row.patient_id)
    why = None
    if row.used_at is not None:
        why = "a used code"
    elif row.expires_at <= now:
        why = "an expired code"
    elif row.failed_tries >= MAX_TRIES:
        why = "a code tried too often"
    elif not hmac.compare_digest(row.code_hash, _digest(key, "code", text)):
        row.failed_tries += 1
        why = f"a wrong code (try {row.failed_tries} of {MAX_TRIES})"
    if why is not None:
        audit.record(pctx, audit.Event("signin_failed", "portal_code", row.id, patient_id=row.patient_id, detail=why))
        return CodeChecked(None, NOT_RIGHT)
    row.used_at = now
    token = _open_session(pctx, key, row.patient_id)
    return CodeChecked(token)


def _open_session(pctx: Ctx, key: bytes, patient_id: int) -> str:
    from hpms.models import PortalSession

    now = pctx.now()
    token = secrets.token_urlsafe(32)
    cfg = pctx.settings
    row = PortalSession(
        org_id=pctx.org_id,
        token_hash=_digest(key, "session", token),
        patient_id=patient_id,
        acting_for_id=patient_id,
        created_at=now,
        last_seen_at=now,
        idle_expires_at=now + dt.timedelta(minutes=cfg.portal_idle_minutes),
        expires_at=now + dt.timedelta(hours=cfg.portal_session_hours),
    )
    pctx.session.add(row)
    pctx.session.flush()
    audit.record(pctx, audit.Event("signin", "portal_session", row.id, patient_id=patient_id))
    return token


# ---- sessions ----------------------------------------------------------------------------------


def _session(ctx: Ctx, key: bytes, token: str | None):  # -> PortalSession | None
    """The live session of `token`, its idle time restarted; an expired one is deleted."""
    from hpms.models import PortalSession

    if not token:
        return None
    row = ctx.session.execute(
        sa.select(PortalSession).where(
            PortalSession.token_hash == _digest(key, "session", token), PortalSession.org_id == ctx.org_id
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    now = ctx.now()
    if row.idle_expires_at <= now or row.expires_at <= now:
        audit.record(
            as_patient(ctx, row.patient_id),
            audit.Event("expire", "portal_session", row.id, patient_id=row.patient_id),
        )
        ctx.session.delete(row)
        ctx.session.flush()
        return None
    row.last_seen_at = now
    row.idle_expires_at = min(now + dt.timedelta(minutes=ctx.settings.portal_idle_minutes), row.expires_at)
    return row


def signed_in(ctx: Ctx, *, token: str | None) -> bool:
    """Whether `token` is a live session (restarting its idle time)."""
    check_server(ctx)
    return _session(ctx, _key(ctx), token) is not None


def sign_out(ctx: Ctx, *, token: str | None) -> bool:
    """End the session of `token` (False: there was none). Raises PermissionDenied."""
    check_server(ctx)
    from hpms.models import PortalSession

    row = _session(ctx, _key(ctx), token)
    if row is None:
        return False
    assert isinstance(row, PortalSession)
    audit.record(
        as_patient(ctx, row.patient_id), audit.Event("signout", "portal_session", row.id, patient_id=row.patient_id)
    )
    ctx.session.delete(row)
    ctx.session.flush()
    return True


def _may_act_for(ctx: Ctx, patient_id: int) -> list[Person]:
    """The signed-in patient first, then the active patients they may act for, by name."""
    from hpms.models import PortalProxy

    me = ctx.session.get(Patient, patient_id)
    assert me is not None
    rows = ctx.session.execute(
        sa.select(Patient.id, Patient.first_name, Patient.last_name, Patient.preferred_name)
        .join(PortalProxy, PortalProxy.patient_id == Patient.id)
        .where(
            PortalProxy.guardian_id == patient_id,
            Patient.active.is_(True),
            Patient.merged_into_id.is_(None),  # type: ignore[union-attr]
        )
        .order_by(Patient.last_name, Patient.first_name, Patient.id)
    ).all()
    return [Person(me.id or 0, _name(me))] + [Person(r.id, _name(r)) for r in rows]


def _name(p: object) -> str:
    first = getattr(p, "preferred_name", None) or getattr(p, "first_name", "")
    return f"{first} {getattr(p, 'last_name', '')}".strip()


def switch(ctx: Ctx, *, token: str | None, patient_id: str | int | None) -> bool | None:
    """Act for another patient (or oneself again): True when the signed-in patient may act for
    them, False when not (audited as a refusal), None when not signed in. Raises
    ValidationError (patient) for what is not a patient's number."""
    check_server(ctx)
    try:
        wanted = int(str(patient_id or "").strip())
    except ValueError:
        raise ValidationError("patient", "choose one of the people listed") from None
    row = _session(ctx, _key(ctx), token)
    if row is None:
        return None
    pctx = as_patient(ctx, row.patient_id)
    if wanted not in {p.id for p in _may_act_for(ctx, row.patient_id)}:
        audit.record(
            pctx,
            audit.Event("denied", "portal_session", row.id, patient_id=row.patient_id, detail=f"act for {wanted}"),
        )
        return False
    if wanted != row.acting_for_id:
        row.acting_for_id = wanted
        audit.record(
            pctx, audit.Event("switch", "portal_session", row.id, patient_id=wanted, detail=f"by {row.patient_id}")
        )
    return True


def home(ctx: Ctx, *, token: str | None, limit: int = 20) -> Home | None:
    """What the signed-in patient sees (None when not signed in): the visits to come of the
    patient they act for, read as the signed-in patient (audited)."""
    from hpms.models import Appointment
    from hpms.services.scheduling.listing import row_out, select_out

    check_server(ctx)
    row = _session(ctx, _key(ctx), token)
    if row is None:
        return None
    people = _may_act_for(ctx, row.patient_id)
    acting = next((p for p in people if p.id == row.acting_for_id), None)
    if acting is None:  # the link was removed while signed in: back to oneself
        row.acting_for_id, acting = row.patient_id, people[0]
    pctx = as_patient(ctx, row.patient_id)
    found = pctx.session.execute(
        select_out()
        .where(
            Appointment.org_id == ctx.org_id,
            Appointment.patient_id == acting.id,
            Appointment.start_utc >= ctx.now(),
            col(Appointment.status).in_(("booked", "confirmed")),
        )
        .order_by(Appointment.start_utc)
        .limit(limit)
    ).all()
    visits = [row_out(r) for r in found]
    audit.record(
        pctx,
        audit.Event("read", "appointment", None, patient_id=acting.id, detail=f"portal: {len(visits)} to come"),
    )
    return Home(
        signed_in=people[0],
        acting_for=acting,
        visits=[
            Visit(start=a.start, what=a.type, provider=a.provider, location=a.location, status=a.status, id=a.id)
            for a in visits
            if a.start is not None
        ],
        may_act_for=people,
    )


# ---- booking online ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    id: int
    name: str


@dataclass(frozen=True)
class Choices:
    """What the booking form offers: the types with a policy open online, the locations and
    the active providers."""

    types: list[Choice]
    locations: list[Choice]
    providers: list[Choice]


def with_patient(ctx: Ctx, *, token: str | None) -> Ctx | None:
    """The same transaction acting as the patient the session acts for (None when not signed
    in), for the online booking's services."""
    check_server(ctx)
    row = _session(ctx, _key(ctx), token)
    if row is None:
        return None
    return as_patient(ctx, row.acting_for_id, by=row.patient_id)


def booking_choices(ctx: Ctx) -> Choices:
    """The booking form's choices (names only, no patient data)."""
    from hpms.models import AppointmentType, Location, OnlineBookingPolicy, Provider
    from hpms.services.lookups import provider_name

    check_server(ctx)
    open_online = sa.exists().where(  # the type's own policy, or a provider's override, is open
        OnlineBookingPolicy.type_id == AppointmentType.id,
        OnlineBookingPolicy.enabled.is_(True),  # type: ignore[union-attr]
    )
    types = ctx.session.execute(
        sa.select(AppointmentType.id, AppointmentType.name)
        .where(
            AppointmentType.org_id == ctx.org_id,
            col(AppointmentType.active).is_(True),
            col(AppointmentType.self_bookable).is_(True),
            open_online,
        )
        .order_by(AppointmentType.name)
    ).all()
    locations = ctx.session.execute(
        sa.select(Location.id, Location.name).where(Location.org_id == ctx.org_id).order_by(Location.name)
    ).all()
    providers = ctx.session.execute(
        sa.select(Provider)
        .where(Provider.org_id == ctx.org_id, Provider.active.is_(True))
        .order_by(Provider.last_name, Provider.first_name)
    ).scalars()
    return Choices(
        types=[Choice(r.id, r.name) for r in types],
        locations=[Choice(r.id, r.name) for r in locations],
        providers=[Choice(p.id or 0, provider_name(p)) for p in providers],
    )
