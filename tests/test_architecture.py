"""The shape of the code, checked: no import cycles inside the service layer (function-level
imports included), the lower layers import none of the higher ones, and the models know no
service or face."""

from __future__ import annotations

import re
import sys
import tokenize
from pathlib import Path

import pytest

from tests.conftest import REPO

grimp = pytest.importorskip("grimp")

SERVICES = "hpms.services"
DOMAINS = ("people", "scheduling", "billing", "payments", "reports", "messages", "portal", "interop_hl7")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("hpms", include_external_packages=False)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 5000))
    try:
        for m in sorted(edges):
            if m not in index:
                visit(m)
    finally:
        sys.setrecursionlimit(old)
    return found


def test_no_import_cycles_in_the_services(graph):
    mods = {m for m in graph.modules if m.startswith(SERVICES)}
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in mods and i != m} for m in mods}
    assert _cycles(edges) == []


def test_lookups_stand_on_the_models_and_validation_only(graph):
    """So every layer, the platform's own organization and audit queries included, may use them."""
    allowed = {"hpms.errors", "hpms.models", "hpms.services.platform.validation", "hpms.services.platform.context"}
    used = graph.find_modules_directly_imported_by("hpms.services.lookups")
    assert {m for m in used if not any(m == a or m.startswith(a + ".") for a in allowed)} == set()


@pytest.mark.parametrize(
    "low, high",
    [
        *[("hpms.services.platform", f"hpms.services.{d}") for d in DOMAINS],
        *[("hpms.services.lookups", f"hpms.services.{d}") for d in DOMAINS],
        ("hpms.models", "hpms.services"),
        ("hpms.models", "hpms.commands"),
        ("hpms.models", "hpms.tui"),
        ("hpms.services", "hpms.commands"),
        ("hpms.services", "hpms.tui"),
        ("hpms.models", "hpms.portal"),
        ("hpms.services", "hpms.portal"),
    ],
)
def test_a_lower_layer_imports_no_higher_one(graph, low, high):
    chains = graph.find_illegal_dependencies_for_layers(layers=[high, low], containers=set())
    assert not chains, [(c.importer, c.imported) for c in chains]


# ---- the services speak facts ----------------------------------------------------------------

PACKAGES = (
    "platform",
    "people",
    "scheduling",
    "billing",
    "payments",
    "reports",
    "messages",
    "portal",
    "interop_hl7",
    "lookups.py",
    "demo.py",
    "demo_billing.py",
    "doctor.py",
)
# an option name ("--tax-id", "(--location") or a command ("`hpms encounters update", "hpms claims list")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
COMMAND = re.compile(r"\bhpms [a-z][a-z-]* [a-z][a-z-]*")


def _words(path: Path) -> list[str]:
    """Every string literal, docstring and comment of a source file, with its line."""
    found = []
    with path.open(encoding="utf-8") as fh:
        for tok in tokenize.generate_tokens(fh.readline):
            if tok.type in (tokenize.STRING, tokenize.COMMENT) or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
                found.append((tok.start[0], tok.string))
    return [
        f"{path.relative_to(REPO)}:{line}: {text.strip()[:100]}"
        for line, text in found
        if OPTION.search(text) or COMMAND.search(text)
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_the_services_name_no_option_and_no_command(package):
    """Services say what is wrong and what to do in the domain's words; the CLI adds its option
    names and command lines (hpms.commands._errors), the TUI its keys."""
    root = REPO / "hpms" / "services" / package
    files = [root] if root.suffix == ".py" else sorted(root.rglob("*.py"))
    offenders = [w for f in files for w in _words(f)]
    assert offenders == []
