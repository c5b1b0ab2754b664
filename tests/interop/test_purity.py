"""The file-format modules (X12, FHIR, HL7 v2 readers and writers, and the FHIR code systems they
share) are pure: importing them loads no database layer."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = [
    "hpms.interop.x12.x837p",
    "hpms.interop.x12.x835",
    "hpms.interop.fhir.systems",
    "hpms.interop.fhir.writing",
    "hpms.interop.fhir.reading",
    "hpms.interop.hl7v2.build",
    "hpms.interop.hl7v2.parse",
]


@pytest.mark.parametrize("module", PURE)
def test_module_imports_no_database_code(module):
    code = (
        f"import sys, {module}; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel') "
        "or m.startswith(('hpms.services', 'hpms.models', 'hpms.db'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
