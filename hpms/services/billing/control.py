"""The counters that number what billing sends: claim control numbers (CLM01), and the
interchange and group control numbers (ISA13, GS06) the 837P and 270 files share."""

from __future__ import annotations

CLAIM_COUNTER = "claim_control"
ISA_COUNTER = "x12_isa"
GS_COUNTER = "x12_gs"
