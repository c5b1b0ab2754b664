"""Who may do what: the role x action table, in one place (tested as a whole matrix)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpms.errors import PermissionDenied, ValidationError

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
    "payments.record": frozenset({"admin", "biller", "front_desk"}),
    "payments.refund": frozenset({"admin", "biller"}),
    "statements.run": frozenset({"admin", "biller", "service"}),
    "eligibility.read": frozenset({"admin", "biller", "front_desk", "provider"}),
    "eligibility.write": frozenset({"admin", "biller", "front_desk", "service"}),
}


def allowed(roles: frozenset[str] | set[str], action: str) -> bool:
    return bool(PERMISSIONS.get(action, frozenset()) & set(roles))


def require(actor: Actor, action: str) -> None:
    """Raise PermissionDenied unless one of the actor's roles may perform `action`."""
    if action not in PERMISSIONS:
        raise KeyError(f"unknown action {action!r}")
    if not allowed(actor.roles, action):
        roles = ", ".join(sorted(actor.roles)) or "no role"
        raise PermissionDenied(f"user {actor.username!r} ({roles}) may not {action}")


def validate_role(role: str, field: str = "role") -> str:
    value = role.strip().lower().replace("-", "_")
    if value not in ROLES:
        raise ValidationError(field, f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    return value
