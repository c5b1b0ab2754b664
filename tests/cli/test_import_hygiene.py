"""Start-up budget and layer boundaries.

`import hpms.cli` and `hpms --help` must not import the heavy libraries (checked in a fresh
interpreter), and `hpms --help` no command module: the root help is written from the command
list and summaries kept in hpms/cli.py, checked here against the commands themselves; services
and models never import a face (typer, textual, rich); commands and the TUI never import each
other (checked by parsing the sources).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hpms.cli import GROUPS
from tests.conftest import REPO

HEAVY = ("textual", "sqlmodel", "sqlalchemy", "pendulum", "tablib", "openpyxl")
PACKAGE = REPO / "hpms"

PROBE = textwrap.dedent("""
    import json, sys
    HEAVY = {heavy!r}

    def loaded():
        return sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)

    def commands():
        return sorted(m for m in sys.modules if m.startswith("hpms.commands."))

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
    result = {{"after_import": after_import, "after_run": loaded(), "commands": commands(), "code": code}}
    print(json.dumps(result), file=sys.stderr)
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


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("argv", "modules"),
    [
        pytest.param(["--help"], [], id="--help"),
        pytest.param([], [], id="no arguments"),
        pytest.param(["--version"], [], id="--version"),
        pytest.param(["patients", "--help"], ["patients"], id="patients --help"),
        pytest.param(["doctor", "--help"], ["doctor"], id="doctor --help"),
        pytest.param(["logout", "--help"], ["users"], id="logout --help"),
        pytest.param(["tui", "--help"], [], id="tui --help"),
    ],
)
def test_cli_imports_only_the_command_run(argv, modules, tmp_path):
    """The root help imports no command module; a command or group imports its own module
    (and the shared private helpers), never the other commands'."""
    result = _probe(argv, tmp_path)
    assert result["code"] == (2 if argv == [] else 0)  # no arguments: the help, as a usage error
    loaded = [m.removeprefix("hpms.commands.") for m in result["commands"]]
    assert [m for m in loaded if not m.startswith("_")] == modules
    if not argv or argv[0].startswith("-"):
        assert loaded == []


def _root_commands():
    """The root click group of the whole tree (every module imported, as `hpms.cli.app`)."""
    import typer.main

    from hpms.cli import build_app

    return typer.main.get_command(build_app()).commands


def test_root_summaries_are_the_commands_help():
    """The root help's list (order and one-line help) is the commands' own: COMMANDS and GROUPS
    in the order the full tree registers them, each SUMMARY the first paragraph of its help."""
    from hpms.cli import COMMANDS, GROUPS, SUMMARY

    commands = _root_commands()
    assert list(commands) == [*COMMANDS, *GROUPS]
    assert list(SUMMARY) == [*COMMANDS, *GROUPS]
    for name, command in commands.items():
        first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
        assert SUMMARY[name] == first_paragraph, name
        # the summary stands in for all Click reads for a line of the list
        assert (command.short_help, command.hidden, command.deprecated) == (None, False, False), name


def _help(app, args: list[str], width: int) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, args, prog_name="hpms", terminal_width=width, env={"COLUMNS": str(width)})
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize("width", [40, 80, 100, 200])
def test_lazy_root_help_is_the_full_tree_help(width):
    from hpms.cli import build_app

    full = _help(build_app(), ["--help"], width)
    assert full[0] == 0 and "Commands:" in full[1]
    assert _help(build_app(lazy=True), ["--help"], width) == full
    assert _help(build_app(lazy=True), [], width) == _help(build_app(), [], width)


@pytest.mark.parametrize(
    "args",
    [
        ["init", "--help"],
        ["demo", "--help"],
        ["doctor", "--help"],
        ["whoami", "--help"],
        ["login", "--help"],
        ["logout", "--help"],
        ["tui", "--help"],
        ["patients", "--help"],
        ["appointment-types", "--help"],
        ["patients", "show", "--help"],
        ["patiens", "list"],  # a typo: the same suggestions
        ["--debug"],  # no command
        ["--nope"],
        ["--version"],
    ],
    ids=" ".join,
)
def test_lazy_root_runs_like_the_full_tree(args):
    """What `main` runs for a command outside the groups (the lazy root) answers like the full
    tree: the same help, usage errors and exit codes."""
    from hpms.cli import build_app

    assert _help(build_app(lazy=True), args, 100) == _help(build_app(), args, 100)


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


@pytest.mark.parametrize("group", GROUPS)
def test_lazy_group_runs_like_the_full_group(group):
    """The group `main` runs for `hpms GROUP ...` (its commands converted only when run)
    answers like the fully converted one: its help, every command's help, usage errors."""
    import typer.main

    from hpms.cli import build_app

    commands = typer.main.get_command(build_app(group)).commands[group].commands
    runs = [[group, "--help"], [group], [group, "lsit"], [group, "--nope"]]
    runs += [[group, name, "--help"] for name in commands] + [[group, name, "--nope"] for name in commands]
    for args in runs:
        for width in (60, 100) if len(args) == 2 else (100,):
            assert _help(build_app(group, lazy=True), args, width) == _help(build_app(group), args, width), args


def test_lazy_group_converts_only_the_command_run(monkeypatch):
    from typer._click import Context
    from typer.testing import CliRunner

    from hpms.cli import LazyTyperGroup, _Pending, build_app

    app = build_app("patients", lazy=True)
    seen: list[LazyTyperGroup] = []
    original = LazyTyperGroup.format_help

    def spy(self, ctx, formatter):
        seen.append(self)
        return original(self, ctx, formatter)

    monkeypatch.setattr(LazyTyperGroup, "format_help", spy)
    assert CliRunner().invoke(app, ["patients", "--help"], prog_name="hpms").exit_code == 0
    (group,) = seen
    assert group.commands and all(isinstance(cmd, _Pending) for cmd in group.commands.values())
    show = group.get_command(Context(group), "show")
    assert show is not None and not isinstance(show, _Pending) and {p.name for p in show.params} >= {"patient"}
    assert sum(not isinstance(cmd, _Pending) for cmd in group.commands.values()) == 1
