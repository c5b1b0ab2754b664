"""How failures reach the user: one line without --debug, a traceback without locals with it,
usage errors from the argument parser, interrupts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.cli.conftest import run_subprocess, subprocess_env
from tests.conftest import REPO


def _boom(*args, **kwargs):
    patient_name = "Zelda Sentinelle"  # noqa: F841 - a local that must never be printed
    raise RuntimeError("boom in the service")


def test_internal_error_is_one_line(cli, monkeypatch, counts):
    monkeypatch.setattr("hpms.services.people.patients.list_patients", _boom)
    before = counts("audit_event")
    r = cli("patients", "list")
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert lines == ["hpms: internal error: RuntimeError: boom in the service (rerun with --debug for the traceback)"]
    assert r.stdout == ""
    assert counts("audit_event") == before


def test_debug_adds_the_traceback_and_keeps_the_exit_code(cli, monkeypatch):
    monkeypatch.setattr("hpms.services.people.patients.list_patients", _boom)
    r = cli("--debug", "patients", "list")
    assert r.exit_code == 1
    assert "Traceback (most recent call last)" in r.stderr
    assert "RuntimeError: boom in the service" in r.stderr
    assert "Zelda Sentinelle" not in r.stderr  # the raising line is shown, never the value of a local
    assert r.stderr.splitlines()[-1].startswith("hpms: internal error: RuntimeError")


def test_debug_keeps_hpms_error_exit_codes(cli):
    r = cli("--debug", "patients", "show", "0999999")
    assert r.exit_code == 3
    assert "NotFoundError" in r.stderr
    assert r.stderr.splitlines()[-1].startswith("hpms: error: no patient '0999999'")


def test_interrupt(cli, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hpms.services.people.patients.list_patients", interrupted)
    r = cli("patients", "list")
    assert r.exit_code == 130
    assert r.stderr.splitlines() == ["hpms: interrupted"]


@pytest.mark.parametrize(
    "args",
    [
        ("patients", "register", "--no-such-option"),
        ("patients", "bogus"),
        ("coverage", "end", "not-a-number"),
        ("patients", "list", "--limit", "many"),
    ],
    ids=lambda a: " ".join(a),
)
def test_parser_usage_errors_exit_2(cli, args):
    r = cli(*args)
    assert r.exit_code == 2
    assert r.stdout == ""
    assert "Traceback" not in r.stderr


SCRIPT = textwrap.dedent("""
    import sys
    import hpms.services.people.patients as patients

    def exploding(ctx, *args, **kwargs):
        patient_name = "Zelda Sentinelle"
        raise RuntimeError("boom in the service")

    patients.list_patients = exploding
    from hpms.cli import main
    sys.argv = ["hpms", *sys.argv[1:]]
    main()
""")


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_debug_traceback_has_no_locals(settings):
    env = subprocess_env(settings.home)

    def run(*args):
        return subprocess.run(
            [sys.executable, "-c", SCRIPT, *args],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )

    plain = run("patients", "list")
    assert plain.returncode == 1
    assert plain.stderr.splitlines() == [
        "hpms: internal error: RuntimeError: boom in the service (rerun with --debug for the traceback)"
    ]

    debug = run("--debug", "patients", "list")
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "RuntimeError: boom in the service" in debug.stderr
    assert "in exploding" in debug.stderr
    assert "Zelda Sentinelle" not in debug.stderr  # code run with -c has no source lines: only locals could show it
    assert "patient_name" not in debug.stderr
    assert debug.stdout == ""


@pytest.mark.subprocess
def test_corrupt_database_debug_and_not(clean_env):
    home = clean_env
    home.mkdir(parents=True)
    (home / "hpms.db").write_bytes(b"this is not a database " * 400)
    env = subprocess_env(home)
    r = run_subprocess(["patients", "list"], env)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpms: internal error: ")
    assert "--debug" in lines[0]
    r = run_subprocess(["--debug", "patients", "list"], env)
    assert r.exit_code == 1
    assert "Traceback (most recent call last)" in r.stderr
    assert str(home) not in r.stderr  # the settings object lives in locals; locals are not shown
