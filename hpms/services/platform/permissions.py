"""Who may do what: the role x action table, in one place (tested as a whole matrix)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpms.errors import NotFoundError, PermissionDenied, ValidationError

if TYPE_CHECKING:
    from hpms.models import Actor

ROLES = ("admin", "front_desk", "biller", "provider", "auditor", "service")

_CLINICAL = frozenset({"admin", "front_desk", "biller", "provider"})
_ALL = frozenset(ROLES)

# action -> roles allowed. Anything not listed here is refused.
PERMISSIONS: dict[str, frozenset[str]] = {
    "org.read": _ALL,
    "location.read": _ALL,
    "location.write": frozenset({"admin"}),
    "user.self": _ALL,
    "user.read": frozenset({"admin", "auditor"}),
    "user.write": frozenset({"admin"}),
    "patient.read": _CLINICAL,
    "patient.create": frozenset({"admin", "front_desk"}),
    "patient.update": frozenset({"admin", "front_desk"}),
    "patient.import": frozenset({"admin", "front_desk"}),
    "patient.merge": frozenset({"admin", "front_desk"}),
    "patient.reveal_ssn": frozenset({"admin", "biller"}),
    "coverage.read": _CLINICAL,
    "coverage.write": frozenset({"admin", "front_desk", "biller"}),
    "payer.read": _CLINICAL | {"service"},
    "payer.write": frozenset({"admin", "biller"}),
    "audit.read": frozenset({"admin", "auditor"}),
    "audit.verify": frozenset({"admin", "auditor", "service"}),
    "keys.rotate": frozenset({"admin"}),
    "keys.export": frozenset({"admin"}),
    "doctor.run": frozenset({"admin", "auditor", "service"}),
    "db.check": frozenset({"admin", "auditor", "service"}),
    "db.backup": frozenset({"admin", "service"}),
    "db.admin": frozenset({"admin"}),
    "demo.build": frozenset({"admin"}),
    "provider.read": _CLINICAL | {"service"},
    "provider.write": frozenset({"admin"}),
    "schedule.read": _CLINICAL | {"service"},
    "schedule.setup": frozenset({"admin"}),
    "schedule.write": frozenset({"admin", "front_desk"}),
    "appointment.read": _CLINICAL | {"service"},
    "appointment.book": frozenset({"admin", "front_desk", "provider"}),
    "appointment.update": frozenset({"admin", "front_desk", "provider"}),
    "appointment.override": frozenset({"admin", "provider"}),
    "appointment.export": frozenset({"admin", "front_desk", "provider", "service"}),
    "waitlist.read": _CLINICAL,
    "waitlist.write": frozenset({"admin", "front_desk"}),
    "codes.read": _CLINICAL | {"service"},
    "codes.import": frozenset({"admin", "biller"}),
    "fee.read": _CLINICAL,
    "fee.write": frozenset({"admin", "biller"}),
    "encounter.read": _CLINICAL,
    "encounter.write": frozenset({"admin", "biller", "provider"}),
    "encounter.sign": frozenset({"admin", "biller", "provider"}),
    "billing.read": frozenset({"admin", "biller", "service"}),
    "billing.setup": frozenset({"admin", "biller"}),
    "billing.run": frozenset({"admin", "biller", "service"}),
    "claims.read": frozenset({"admin", "biller"}),
    "claims.write": frozenset({"admin", "biller"}),
    "reports.run": frozenset({"admin", "biller", "front_desk", "provider", "service"}),
    "reports.revenue": frozenset({"admin", "biller", "service"}),
    "surveys.write": frozenset({"admin", "front_desk"}),
    "ledger.read": frozenset({"admin", "biller", "front_desk"}),
    "ledger.post": frozenset({"admin", "biller"}),
    "remits.import": frozenset({"admin", "biller", "service"}),
    "fhir.import": frozenset({"admin"}),
    "payments.record": frozenset({"admin", "biller", "front_desk"}),
    "payments.refund": frozenset({"admin", "biller"}),
    "statements.run": frozenset({"admin", "biller", "service"}),
    "eligibility.read": frozenset({"admin", "biller", "front_desk", "provider"}),
    "eligibility.write": frozenset({"admin", "biller", "front_desk", "service"}),
    "messages.read": frozenset({"admin", "front_desk", "provider"}),
    "messages.write": frozenset({"admin", "front_desk"}),
    "messages.send": frozenset({"admin", "service"}),
    "messages.setup": frozenset({"admin"}),
    "messages.inbound": frozenset({"admin", "front_desk", "service"}),
    "hl7.admin": frozenset({"admin"}),
    "hl7.send": frozenset({"admin", "service"}),
    "hl7.receive": frozenset({"admin", "service"}),
    "hl7.review": frozenset({"admin", "front_desk"}),
    "interfaces.read": frozenset({"admin", "front_desk", "service"}),
    "online.read": frozenset({"admin", "front_desk", "provider"}),
    "online.setup": frozenset({"admin"}),
    "portal.serve": frozenset({"admin", "service"}),
    "proxy.read": frozenset({"admin", "front_desk", "provider"}),
    "proxy.write": frozenset({"admin", "front_desk"}),
    "fhir.export": frozenset({"admin"}),
    "api_token.read": frozenset({"admin", "auditor"}),
    "api_token.write": frozenset({"admin"}),
    "intake.read": frozenset({"admin", "front_desk"}),
    "intake.write": frozenset({"admin", "front_desk"}),
}

# What a signed-in patient (an actor with a patient id and no roles) may do, each only on their
# own records; every other action is answered as "not found", so that a patient learns nothing
# of what else exists. Staff are refused these (they book through the appointment actions).
PATIENT_ACTIONS: dict[str, str] = {
    "online.slots": "see the times open to online booking",
    "online.book": "book online",
    "online.reschedule": "move a visit online",
    "online.cancel": "cancel a visit online",
    "online.visits": "list a patient's own visits online",
    "intake.submit": "send a pre-visit form",
    "portal.account": "see their own balance, statements and past visits",
    "portal.statement": "open one of their own statements",
}


def allowed(roles: frozenset[str] | set[str], action: str) -> bool:
    return bool(PERMISSIONS.get(action, frozenset()) & set(roles))


# What each action is, in plain words ("may not <this>"); an action not named here is said as
# "<verb> <noun>s" from its key.
_SAID: dict[str, str] = {
    "org.read": "read the practice's details",
    "user.self": "see their own account",
    "patient.reveal_ssn": "reveal social security numbers",
    "audit.read": "read the audit trail",
    "audit.verify": "verify the audit trail",
    "keys.rotate": "rotate the encryption key",
    "keys.export": "export the encryption key",
    "doctor.run": "run the pre-flight checks",
    "db.check": "check the database",
    "db.backup": "back up the database",
    "db.admin": "administer the database",
    "demo.build": "build the demo practice",
    "schedule.read": "read schedules",
    "schedule.setup": "set up schedules",
    "schedule.write": "change schedules",
    "appointment.override": "book over the schedule's rules",
    "waitlist.read": "read the wait list",
    "waitlist.write": "change the wait list",
    "codes.read": "look up codes",
    "codes.import": "import code sets",
    "encounter.sign": "sign encounters",
    "billing.read": "read billing",
    "billing.setup": "set up billing",
    "billing.run": "run billing",
    "reports.run": "run reports",
    "reports.revenue": "run revenue reports",
    "surveys.write": "record surveys",
    "ledger.read": "read patient ledgers",
    "ledger.post": "post to patient ledgers",
    "payments.record": "record payments",
    "payments.refund": "refund payments",
    "statements.run": "run patient statements",
    "eligibility.read": "read eligibility",
    "eligibility.write": "check eligibility",
    "remits.import": "import remittances",
    "fhir.import": "import FHIR resources",
    "coverage.read": "read coverage",
    "coverage.write": "change coverage",
    "messages.read": "read messages to patients",
    "messages.write": "change messages to patients",
    "messages.send": "send the outbox",
    "messages.setup": "set up messaging",
    "messages.inbound": "take in patients' replies",
    "hl7.admin": "set up the HL7 interfaces",
    "hl7.send": "send the HL7 outbox",
    "hl7.receive": "take in HL7 messages",
    "hl7.review": "review the HL7 messages received",
    "interfaces.read": "read the state of the interfaces",
    "online.read": "read the online booking policies",
    "online.setup": "set the online booking policies",
    "portal.serve": "serve the patient portal",
    "proxy.read": "read who may act for patients in the portal",
    "proxy.write": "change who may act for patients in the portal",
    "fhir.export": "export records as FHIR",
    "api_token.read": "list the API tokens",
    "api_token.write": "create or revoke API tokens",
    "intake.read": "read the registrations and pre-visit forms sent online",
    "intake.write": "accept or reject the registrations and pre-visit forms sent online",
}
_VERBS = {"read": "read", "write": "change", "create": "register", "update": "change", "book": "book"}


def describe(action: str) -> str:
    """The action in plain words, e.g. "read appointments"."""
    if action in _SAID:
        return _SAID[action]
    noun, _, verb = action.partition(".")
    return f"{_VERBS.get(verb, verb)} {noun if noun.endswith('s') else noun + 's'}"


def roles_for(action: str) -> list[str]:
    """The roles a person may be given to do `action` (the service role only when it alone may)."""
    roles = PERMISSIONS.get(action, frozenset())
    people = roles - {"service"}
    return [r for r in ROLES if r in (people or roles)]


def require(actor: Actor, action: str) -> None:
    """Raise PermissionDenied unless one of the actor's roles may perform `action`; the message
    says what was refused in plain words and which roles may do it. A patient actor may do
    the patient actions (and what their online operation was granted); anything else is
    NotFoundError. Staff are refused the patient actions."""
    if action not in PERMISSIONS and action not in PATIENT_ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    if actor.patient_id is not None:
        if action in PATIENT_ACTIONS or action in actor.grants:
            return
        raise NotFoundError("not found")
    if action in PATIENT_ACTIONS:
        err = PermissionDenied(
            f"user {actor.username!r} may not {PATIENT_ACTIONS[action]}: only a signed-in patient may, for themselves"
        )
        err.refused = action
        raise err
    if not allowed(actor.roles, action):
        roles = ", ".join(sorted(actor.roles)) or "no role"
        who = roles_for(action)
        takes = who[0] if len(who) == 1 else f"{', '.join(who[:-1])} or {who[-1]}"
        err = PermissionDenied(
            f"user {actor.username!r} ({roles}) may not {describe(action)}: that takes the {takes} role"
        )
        err.refused = action
        raise err


def validate_role(role: str, field: str = "role") -> str:
    value = role.strip().lower().replace("-", "_")
    if value not in ROLES:
        raise ValidationError(field, f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    return value
