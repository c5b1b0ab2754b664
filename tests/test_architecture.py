"""The shape of the code, checked: no import cycles inside the service layer (function-level
imports included), the lower layers import none of the higher ones, and the models know no
service or face."""

from __future__ import annotations

import sys

import pytest

grimp = pytest.importorskip("grimp")

SERVICES = "hpms.services"
DOMAINS = ("people", "scheduling", "billing", "payments", "reports")


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
    ],
)
def test_a_lower_layer_imports_no_higher_one(graph, low, high):
    chains = graph.find_illegal_dependencies_for_layers(layers=[high, low], containers=set())
    assert not chains, [(c.importer, c.imported) for c in chains]
