"""SQLModel tables and their Create/Out models, by domain. Importing this registers every table."""

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

__all__ = [
    "Actor", "AuditEvent", "AuditEventOut", "AuditHead", "Counter", "Coverage", "KeyState", "CoverageOut",
    "DuplicateCandidate", "Location", "LocationCreate", "LocationOut", "Organization",
    "OrganizationOut", "Patient", "PatientCreate", "PatientOut", "PatientSummary", "Payer",
    "PayerOut", "User", "UserOut", "UserRole",
    "Appointment", "AppointmentOut", "AppointmentSeries", "AppointmentType", "AppointmentTypeOut",
    "FreedSlot", "OfferOut", "Provider", "ProviderLocation", "ProviderOut", "Room", "RoomOut",
    "SlotOut", "TimeOff", "TimeOffOut", "WaitlistEntry", "WaitlistOut", "WorkingHours",
    "WorkingHoursOut",
]
