"""The X12 readers and writers are pure file-format code: importing them loads no database layer."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    ["hpms.interop.x12.x837p", "hpms.interop.x12.x835", "hpms.interop.fhir.writing", "hpms.interop.fhir.reading"],
)
def test_module_imports_no_database_code(module):
    code = (
        f"import sys, {module}; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel') "
        "or m.startswith(('hpms.services', 'hpms.models', 'hpms.db'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
