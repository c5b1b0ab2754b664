"""ASC X12 5010 healthcare transactions."""

from hpms.interop.x12.x837p import (
    BillingProvider,
    Claim,
    FileSummary,
    Line,
    Party,
    Patient,
    Payer,
    Receiver,
    RenderingProvider,
    Submitter,
    Subscriber,
    format_amount,
    write_837p,
)

__all__ = [
    "BillingProvider",
    "Claim",
    "FileSummary",
    "Line",
    "Party",
    "Patient",
    "Payer",
    "Receiver",
    "RenderingProvider",
    "Submitter",
    "Subscriber",
    "format_amount",
    "write_837p",
]
