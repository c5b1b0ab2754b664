"""The docs cannot drift from the code: the generated CLI reference, help texts with an
example, the command list of docs/cli.md, every `hpms ...` command quoted in the README,
docs/ and examples/, the README's first commands, the permission table of the admin guide,
and the example files themselves."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import count_rows

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
EXAMPLES = REPO / "examples"
README = REPO / "README.md"
REGENERATE = "run `python scripts/gen_cli_reference.py`"


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_cli_reference", REPO / "scripts" / "gen_cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return _load_generator()


@pytest.fixture(scope="module")
def tree(gen) -> dict[tuple[str, ...], object]:
    """Every command path (() is the root) -> its click command."""
    return dict(gen.walk())


def _is_group(command) -> bool:
    return hasattr(command, "commands")


# --- finding `hpms ...` invocations in shell text -------------------------------------------

_SEPARATORS = re.compile(r"\$\(|`|\(|\)|;|&&|\|\||\|")
_ASSIGNMENT = re.compile(r"""^[A-Za-z_][A-Za-z0-9_]*=(?:'[^']*'|"[^"]*"|\S*)\s*""")
_PREFIX_WORDS = ("$", "!", "if", "then", "else", "do", "while", "until", "exec", "time", "export")
_HPMS = re.compile(r"^(?:\S*/)?hpms$")


def invocations(line: str) -> list[list[str]]:
    """The arguments of each `hpms` run at a command position of a shell line."""
    line = re.sub(r"(^|\s)#.*$", "", line)
    found = []
    for segment in _SEPARATORS.split(line):
        segment = segment.strip()
        while True:
            before = segment
            segment = _ASSIGNMENT.sub("", segment)
            for word in _PREFIX_WORDS:
                if segment.startswith(word + " "):
                    segment = segment[len(word) + 1 :].lstrip()
            if segment == before:
                break
        words = segment.split()
        if words and _HPMS.match(words[0]):
            found.append(words[1:])
    return found


def resolve(tree, args: list[str]) -> tuple[tuple[str, ...] | None, str | None]:
    """(command path, None) for `hpms ARGS`, or (None, why not)."""
    words = list(args)
    while words and words[0].startswith("-"):  # root options such as --debug
        words.pop(0)
    path: tuple[str, ...] = ()
    for word in words:
        command = tree[path]
        if not _is_group(command):
            break
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", word):
            # A placeholder (`hpms <noun> <verb>`) or an option value: nothing to check.
            return path, None
        if (*path, word) not in tree:
            where = f"hpms {' '.join(path)}".strip()
            return None, f"`{where}` has no command {word!r}"
        path = (*path, word)
    return path, None


def _markdown_code_lines(path: Path):
    """(line number, text) of the lines of fenced and indented code blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fenced = False
    last_text = ""  # the last non-blank line outside code
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            yield number, stripped
            continue
        previous = lines[number - 2] if number > 1 else ""
        indented = line.startswith("    ") and stripped
        if indented and not previous.strip() and not last_text.startswith((" ", "-", "*", "1.")):
            yield number, stripped
            continue
        if stripped:
            last_text = line


def _script_lines(path: Path):
    """(line number, text) of a shell script or crontab, including commands quoted in comments
    as an indented line (`#   hpms users token nightly`)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            quoted = re.match(r"#\s{2,}(hpms .*)", stripped)
            if quoted:
                yield number, quoted.group(1)
            continue
        yield number, stripped


def _documented_files() -> list[Path]:
    files = [README, *sorted(DOCS.glob("*.md")), *sorted(EXAMPLES.rglob("*.md"))]
    files += sorted(EXAMPLES.rglob("*.sh")) + sorted(EXAMPLES.rglob("*.example"))
    return files


# --- the tests --------------------------------------------------------------------------------


def test_cli_reference_is_up_to_date(gen):
    reference = DOCS / "cli-reference.md"
    assert reference.exists(), f"docs/cli-reference.md is missing; {REGENERATE}"
    assert reference.read_text(encoding="utf-8") == gen.generate_reference(), (
        f"docs/cli-reference.md is out of date; {REGENERATE}"
    )


def test_every_command_has_help_and_an_example(tree):
    problems = []
    for path, command in tree.items():
        name = " ".join(("hpms", *path))
        text = (command.help or "").strip()
        if not text:
            problems.append(f"`{name}` has no help text")
            continue
        if _is_group(command):
            continue
        examples = [
            line.strip()[len("Example:") :] for line in text.splitlines() if line.strip().startswith("Example:")
        ]
        if not examples:
            problems.append(f"`{name}` has no 'Example:' line in its help")
            continue
        runs = [args for example in examples for args in invocations(example)]
        if not runs:
            problems.append(f"`{name}`: its example runs no hpms command")
        for args in runs:
            got, why = resolve(tree, args)
            if got != path:
                problems.append(
                    f"`{name}`: example `hpms {' '.join(args)}` {why or 'runs `hpms ' + ' '.join(got or ()) + '`'}"
                )
    assert not problems, "\n".join(problems)


# A date in an example goes stale: examples say today, tomorrow, next monday, +30 or -30 instead.
# A date of birth is a fixed date, and so is a date inside a file's name.
FIXED_DATE = re.compile(r"(?<![\w/.-])(--[a-z-]+[ =])?\"?(\d{4}-\d{2}-\d{2})")


def test_help_examples_use_no_fixed_dates(tree):
    problems = []
    for path, command in tree.items():
        for line in (command.help or "").splitlines():
            if not line.strip().startswith("Example:"):
                continue
            for m in FIXED_DATE.finditer(line):
                if m.group(1) and m.group(1).strip(" =") in ("--dob",):
                    continue
                problems.append(f"`hpms {' '.join(path)}`: {line.strip()} (fixed date {m.group(2)})")
    assert not problems, "\n".join(problems)


def test_cli_guide_lists_every_command(tree):
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    match = re.search(r"^## Command list\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "docs/cli.md has no '## Command list' section"
    listed, problems = set(), []
    for span in re.findall(r"`([^`]+)`", match.group(1)):
        for args in invocations(span):
            path, why = resolve(tree, args)
            if why:
                problems.append(f"docs/cli.md lists `{span}`: {why}")
            elif path is not None:
                listed.add(path)
    leaves = {path for path, command in tree.items() if path and not _is_group(command)}
    problems += [f"docs/cli.md's command list misses `hpms {' '.join(p)}`" for p in sorted(leaves - listed)]
    assert not problems, "\n".join(problems)


def test_commands_in_readme_docs_and_examples_exist(tree):
    problems, seen = [], 0
    for path in _documented_files():
        lines = _markdown_code_lines(path) if path.suffix == ".md" else _script_lines(path)
        for number, line in lines:
            for args in invocations(line):
                seen += 1
                _, why = resolve(tree, args)
                if why:
                    problems.append(f"{path.relative_to(REPO)}:{number}: {why}: {line}")
    assert seen > 50, f"only {seen} hpms commands found in the docs: is the scanner broken?"
    assert not problems, "\n".join(problems)


def _readme_commands() -> tuple[str, str]:
    head = README.read_text(encoding="utf-8").splitlines()[:12]
    commands = [line.strip() for line in head if line.startswith("    ")]
    demo = [c for c in commands if "pip install" in c and re.search(r"hpms demo$", c)]
    tests = [c for c in commands if "pip install" in c and "-m pytest" in c]
    assert demo, "README's first lines must hold the command that installs hpms and runs `hpms demo`"
    assert tests, "README's first lines must hold the command that installs hpms and runs the tests"
    return demo[0], tests[0]


def test_readme_starts_with_install_demo_and_test_commands():
    demo, tests = _readme_commands()
    assert demo.startswith("python3 -m venv ")
    assert tests.startswith("python3 -m venv ") and "[dev]" in tests


def test_ci_runs_the_readme_test_command():
    _, tests = _readme_commands()
    ci = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert tests in ci, f".ci/run must run exactly the README's test command: {tests}"


def test_admin_guide_permission_table_matches_the_code(gen):
    from hpms.services.platform.permissions import PERMISSIONS, ROLES

    text = (DOCS / "admin.md").read_text(encoding="utf-8")
    assert gen.PERM_START in text and gen.PERM_END in text, "docs/admin.md lost its permission table markers"
    table = text.split(gen.PERM_START, 1)[1].split(gen.PERM_END, 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table.strip().splitlines()]
    assert rows and rows[0][0] == "action", f"docs/admin.md: no permission table; {REGENERATE}"
    roles = tuple(rows[0][1:])
    assert roles == ROLES, f"docs/admin.md: roles {roles} are not {ROLES}; {REGENERATE}"
    documented = {
        row[0].strip("`"): {role for role, cell in zip(roles, row[1:], strict=True) if cell} for row in rows[2:]
    }
    assert documented == {action: set(allowed) for action, allowed in PERMISSIONS.items()}, (
        f"docs/admin.md's permission table differs from hpms/services/platform/permissions.py; {REGENERATE}"
    )


def test_example_scripts_are_valid_bash():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    scripts = sorted(EXAMPLES.rglob("*.sh"))
    assert scripts, "no example scripts found"
    for script in scripts:
        result = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.relative_to(REPO)}: {result.stderr}"


def test_example_patients_import_cleanly(cli, settings):
    dry = cli("patients", "import", str(EXAMPLES / "patients.csv"), "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would import 12 patient(s); 0 row(s) skipped" in dry.stderr
    assert count_rows(settings, "patient") == 0
    real = cli("patients", "import", str(EXAMPLES / "patients.csv"))
    assert real.exit_code == 0, real.stderr
    assert count_rows(settings, "patient") == 12


def test_example_patients_with_errors_are_rejected(cli, settings):
    path = EXAMPLES / "patients-with-errors.csv"
    result = cli("patients", "import", str(path))
    assert result.exit_code == 2, result.stderr
    reported = [line for line in result.stderr.splitlines() if line.startswith(f"{path}:")]
    assert len(reported) >= 3, result.stderr
    assert all(re.match(rf"{re.escape(str(path))}:\d+: \w+: ", line) for line in reported), reported
    assert "nothing imported" in result.stderr
    assert count_rows(settings, "patient") == 0


def test_the_portal_guides_screenshots_exist():
    """Every image docs/portal.md shows is in the repository (scripts/portal_screenshots.py)."""
    docs = REPO / "docs"
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", (docs / "portal.md").read_text())
    assert len(images) == 12
    missing = [i for i in images if not (docs / i).is_file() or (docs / i).stat().st_size < 1000]
    assert missing == []
