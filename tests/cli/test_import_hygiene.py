"""Start-up budget and layer boundaries.

`import hpms.cli` and `hpms --help` must not import the heavy libraries (checked in a fresh
interpreter); services and models never import a face (typer, textual, rich); commands and
the TUI never import each other (checked by parsing the sources).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO

HEAVY = ("textual", "sqlmodel", "sqlalchemy", "pendulum", "tablib", "openpyxl")
PACKAGE = REPO / "hpms"

PROBE = textwrap.dedent("""
    import json, sys
    HEAVY = {heavy!r}

    def loaded():
        return sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)

    import hpms.cli
    after_import = loaded()
    sys.argv = ["hpms", *{argv!r}]
    try:
        hpms.cli.main()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    sys.stdout.flush()
    print(json.dumps({{"after_import": after_import, "after_run": loaded(), "code": code}}), file=sys.stderr)
""")


def _probe(argv: list[str], tmp_path) -> dict:
    code = PROBE.format(heavy=HEAVY, argv=argv)
    env = {"PATH": "/usr/bin:/bin", "HPMS_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.subprocess
@pytest.mark.parametrize(
    "argv", [["--help"], ["patients", "--help"], ["patients", "register", "--help"], ["--version"]], ids=" ".join
)
def test_cli_start_does_not_import_heavy_libraries(argv, tmp_path):
    result = _probe(argv, tmp_path)
    assert result["code"] == 0
    assert result["after_import"] == []
    assert result["after_run"] == []


def _imports(path: Path) -> set[str]:
    """Absolute names of every module a source file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _sources(*parts: str) -> list[Path]:
    return sorted((PACKAGE.joinpath(*parts)).rglob("*.py"))


def _offending(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in files:
        for name in sorted(_imports(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(REPO)} imports {name}")
    return bad


def test_there_is_something_to_check():
    assert _sources("services") and _sources("models") and _sources("commands")


@pytest.mark.parametrize("layer", ["services", "models"])
def test_core_never_imports_a_face(layer):
    assert (
        _offending(_sources(layer), ("typer", "textual", "rich", "click", "hpms.commands", "hpms.tui", "hpms.cli"))
        == []
    )


def test_commands_never_import_the_tui():
    assert _offending(_sources("commands"), ("hpms.tui", "textual")) == []


def test_tui_never_imports_the_commands():
    assert _offending(_sources("tui"), ("hpms.commands", "hpms.cli", "typer")) == []


def test_import_resolution_sees_relative_imports(monkeypatch):
    """The checker itself: a relative import of the TUI from a command module is caught."""
    fake = PACKAGE / "commands" / "x.py"
    source = "from ..tui import app\nfrom . import _common\nimport hpms.tui.screens\n"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source)
    names = _imports(fake)
    assert {"hpms.tui", "hpms.tui.app", "hpms.commands", "hpms.commands._common", "hpms.tui.screens"} <= names
    assert _offending([fake], ("hpms.tui",)) == [
        "hpms/commands/x.py imports hpms.tui",
        "hpms/commands/x.py imports hpms.tui.app",
        "hpms/commands/x.py imports hpms.tui.screens",
    ]
