"""SQLModel tables and their Create/Out models, by domain.

The tables every command uses (organization, users, patients, audit, counters) are registered
on import. The other domains load on first use of one of their names (`from hpms.models import
Appointment`), so that a patients command does not pay for building the scheduling and billing
tables. A domain may name, in its foreign keys, the tables of the core and of the domains listed
before it in `_LAZY`: loading one loads those first. Whatever works on the whole schema
(Alembic's env.py, comparisons of the models with the migrations) calls `load_all()`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from hpms.models.audit import AuditEvent, AuditEventOut, AuditHead
from hpms.models.counters import Counter, KeyState
from hpms.models.identity import Actor, User, UserOut, UserRole
from hpms.models.org import Location, LocationCreate, LocationOut, Organization, OrganizationOut
from hpms.models.patients import (
    Coverage,
    CoverageOut,
    DuplicateCandidate,
    Patient,
    PatientCreate,
    PatientOut,
    PatientSummary,
    Payer,
    PayerOut,
)

if TYPE_CHECKING:
    from hpms.models.billing import (
        BillingProfile,
        BillingRun,
        Claim,
        ClaimEvent,
        ClaimLine,
        Encounter,
        EncounterDiagnosis,
        EncounterLine,
        Fee,
        JobLock,
        ProcedureCode,
        WorklistItem,
        X12File,
    )
    from hpms.models.hl7 import (
        Hl7Inbound,
        Hl7InboundOut,
        Hl7Message,
        Hl7MessageOut,
        Hl7Receiver,
        Hl7ReceiverOut,
    )
    from hpms.models.intake import IntakeRequest, IntakeUpload
    from hpms.models.interop import ExternalRef, ExternalVisit
    from hpms.models.ledger import LedgerEntry
    from hpms.models.messages import (
        CommEntry,
        InboundMessage,
        Message,
        MessageAttachment,
        MessageOut,
        MessageTemplate,
        MessagingProfile,
        ReminderRule,
    )
    from hpms.models.online import OnlineBooking, OnlineBookingPolicy, OnlineBookingProfile
    from hpms.models.portal import PortalCode, PortalProxy, PortalSession, PortalThrottle, ProxyOut
    from hpms.models.receivables import (
        EligibilityCheck,
        PaymentApplication,
        RemitAdjustment,
        RemitClaim,
        RemitFile,
        Remittance,
        Statement,
    )
    from hpms.models.scheduling import (
        Appointment,
        AppointmentOut,
        AppointmentSeries,
        AppointmentType,
        AppointmentTypeOut,
        FreedSlot,
        OfferOut,
        Provider,
        ProviderLocation,
        ProviderOut,
        Room,
        RoomOut,
        SlotOut,
        TimeOff,
        TimeOffOut,
        WaitlistEntry,
        WaitlistOut,
        WorkingHours,
        WorkingHoursOut,
    )
    from hpms.models.surveys import SurveyImportOut, SurveyResponse, SurveyResponseOut

# Domains loaded on first use, in dependency order: each may reference the tables of the ones above.
_LAZY: dict[str, tuple[str, ...]] = {
    "scheduling": (
        "Appointment",
        "AppointmentOut",
        "AppointmentSeries",
        "AppointmentType",
        "AppointmentTypeOut",
        "FreedSlot",
        "OfferOut",
        "Provider",
        "ProviderLocation",
        "ProviderOut",
        "Room",
        "RoomOut",
        "SlotOut",
        "TimeOff",
        "TimeOffOut",
        "WaitlistEntry",
        "WaitlistOut",
        "WorkingHours",
        "WorkingHoursOut",
    ),
    "hl7": ("Hl7Inbound", "Hl7InboundOut", "Hl7Message", "Hl7MessageOut", "Hl7Receiver", "Hl7ReceiverOut"),
    "billing": (
        "BillingProfile",
        "BillingRun",
        "Claim",
        "ClaimEvent",
        "ClaimLine",
        "Encounter",
        "EncounterDiagnosis",
        "EncounterLine",
        "Fee",
        "JobLock",
        "ProcedureCode",
        "WorklistItem",
        "X12File",
    ),
    "surveys": ("SurveyImportOut", "SurveyResponse", "SurveyResponseOut"),
    "ledger": ("LedgerEntry",),
    "receivables": (
        "EligibilityCheck",
        "PaymentApplication",
        "RemitAdjustment",
        "RemitClaim",
        "RemitFile",
        "Remittance",
        "Statement",
    ),
    "messages": (
        "CommEntry",
        "InboundMessage",
        "Message",
        "MessageAttachment",
        "MessageOut",
        "MessageTemplate",
        "MessagingProfile",
        "ReminderRule",
    ),
    "online": ("OnlineBooking", "OnlineBookingPolicy", "OnlineBookingProfile"),
    "portal": ("PortalCode", "PortalProxy", "PortalSession", "PortalThrottle", "ProxyOut"),
    "interop": ("ExternalRef", "ExternalVisit"),
    "intake": ("IntakeRequest", "IntakeUpload"),
}
_HOME = {name: domain for domain, names in _LAZY.items() for name in names}


def _load(domain: str) -> None:
    """Import `domain` and, first, every lazy domain listed before it (tables its keys name)."""
    for name in _LAZY:
        importlib.import_module(f"{__name__}.{name}")
        if name == domain:
            return


def load_all():
    """Register every table; returns the metadata holding them all."""
    from sqlmodel import SQLModel

    for domain in _LAZY:
        _load(domain)
    return SQLModel.metadata


def __getattr__(name: str):
    domain = _HOME.get(name)
    if domain is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _load(domain)
    value = getattr(importlib.import_module(f"{__name__}.{domain}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))


__all__ = [
    "Actor",
    "AuditEvent",
    "AuditEventOut",
    "AuditHead",
    "Counter",
    "Coverage",
    "KeyState",
    "CoverageOut",
    "DuplicateCandidate",
    "Location",
    "LocationCreate",
    "LocationOut",
    "Organization",
    "OrganizationOut",
    "Patient",
    "PatientCreate",
    "PatientOut",
    "PatientSummary",
    "Payer",
    "PayerOut",
    "User",
    "UserOut",
    "UserRole",
    "load_all",
    *_HOME,
]
