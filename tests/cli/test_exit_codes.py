"""The exit codes of docs/cli.md, command group by command group: a sample of every group for
each code that applies to it, the shape of the message, and the table itself (exactly the codes
hpms/errors.py defines). A new command group without samples here fails."""

from __future__ import annotations

import errno
import os
import re
import socket

import pytest

from hpms.cli import GROUPS
from hpms.errors import ExitCode
from tests.billing_fixtures import setup_practice
from tests.cli.helpers import error_line
from tests.cli.test_file_modes import deny_writes_under
from tests.conftest import REPO

# A parser usage error of every group: exit 2, `hpms: error: ...` and a hint naming the help.
USAGE: dict[str, tuple[str, ...]] = {
    "config": ("config", "show", "--bogus"),
    "db": ("db", "backup"),
    "locations": ("locations", "show"),
    "users": ("users", "grant", "someone"),
    "patients": ("patients", "list", "--limit", "many"),
    "payers": ("payers", "show"),
    "coverage": ("coverage", "end", "not-a-number"),
    "audit": ("audit", "log", "--limit", "x"),
    "keys": ("keys", "rotate", "--bogus"),
    "providers": ("providers", "show"),
    "rooms": ("rooms", "list", "--bogus"),
    "appointment-types": ("appointment-types", "list", "--bogus"),
    "schedule": ("schedule", "hours", "remove"),
    "appointments": ("appointments", "show"),
    "waitlist": ("waitlist", "remove"),
    "fees": ("fees", "set", "99213"),
    "encounters": ("encounters", "bogus"),
    "billing": ("billing", "run", "--bogus"),
    "claims": ("claims", "show"),
    "reports": ("reports", "show"),
    "codes": ("codes", "search"),
    "surveys": ("surveys", "import"),
    "remits": ("remits", "match", "1"),
    "payments": ("payments", "list", "--bogus"),
    "statements": ("statements", "list", "--bogus"),
    "eligibility": ("eligibility", "request"),  # a missing required option
    "messages": ("messages", "cancel"),
    "reminders": ("reminders", "remove"),
    "comms": ("comms", "log"),
    "portal": ("portal", "serve", "--bogus"),
    "fhir": ("fhir", "import"),  # a missing argument
    "tokens": ("tokens", "revoke"),
    "hl7": ("hl7", "resend"),
    "interfaces": ("interfaces", "status", "--bogus"),
}

# Not found (3) in every group that looks something up; the words the line must hold.
NOT_FOUND: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "locations": (("locations", "show", "Nowhere"), ("'Nowhere'",)),
    "users": (("users", "show", "nobody"), ("'nobody'",)),
    "patients": (("patients", "show", "0999999"), ("'0999999'",)),
    "payers": (("payers", "show", "NOPE"), ("'NOPE'",)),
    "coverage": (("coverage", "end", "999999"), ("999999",)),
    "audit": (("audit", "log", "--patient", "0999999"), ("--patient", "'0999999'")),
    "providers": (("providers", "show", "999999"), ("PROVIDER", "'999999'")),
    "rooms": (("rooms", "list", "--location", "Nowhere"), ("--location", "'Nowhere'")),
    "schedule": (("schedule", "show", "Nobody"), ("'Nobody'",)),
    "appointments": (("appointments", "show", "999999"), ("'999999'",)),
    "waitlist": (("waitlist", "remove", "4242"), ("4242",)),
    "fees": (("fees", "list", "--payer", "NOPE"), ("--payer", "'NOPE'")),
    "encounters": (("encounters", "show", "999999"), ("'999999'",)),
    "billing": (("billing", "run", "--payer", "NOPE", "--out", "{out}"), ("--payer", "'NOPE'")),
    "claims": (("claims", "show", "999999"), ("'999999'",)),
    "reports": (("reports", "show", "no-such-report"), ("'no-such-report'",)),
    "codes": (("codes", "show", "ZZZ99"), ("'ZZZ99'",)),
    "surveys": (("surveys", "record", "--appointment", "999999", "--score", "5"), ("--appointment",)),
    "remits": (("remits", "match", "999", "999"), ("999",)),
    "payments": (("payments", "list", "--patient", "0999999"), ("--patient",)),
    "statements": (("statements", "list", "--patient", "0999999"), ("--patient",)),
    "eligibility": (("eligibility", "request", "--out", "{out}/x.270", "--patient", "0999999"), ("--patient",)),
    "messages": (("messages", "cancel", "9999"), ("9999",)),
    "reminders": (("reminders", "remove", "9999"), ("9999",)),
    "comms": (("comms", "log", "0999999"), ("'0999999'",)),
    "portal": (("portal", "policies", "clear", "--type", "Nope"), ("--type", "'Nope'")),
    "fhir": (("fhir", "export", "--patient", "0999999", "-o", "{out}/fhir"), ("--patient", "'0999999'")),
    "tokens": (("tokens", "revoke", "9999"), ("ID", "'9999'")),
    "hl7": (("hl7", "receivers", "remove", "nowhere"), ("'nowhere'",)),
}
# Groups with nothing to look up by name or id.
NOTHING_TO_FIND = {"config", "db", "keys", "appointment-types", "interfaces"}

# Input files that do not exist: 2, naming the argument and the file.
MISSING_INPUT = [
    ("patients", "import"),
    ("fees", "import"),
    ("codes", "import-hcpcs"),
    ("surveys", "import"),
    ("remits", "import"),
    ("eligibility", "import"),
    ("db", "restore"),
    ("fhir", "import"),
]

# Output folders (-o, --out) that do not exist: 2, naming the option and the folder.
MISSING_OUTPUT = [
    (("reports", "export", "appointments-by-day", "-o", "{missing}/x.csv"), "--output"),
    (("appointments", "ical", "--provider", "Smith", "-o", "{missing}/x.ics"), "--output"),
    (("eligibility", "request", "--date", "tomorrow", "--out", "{missing}/x.270"), "--out"),
    (("billing", "run", "--out", "{missing}"), "--out"),
    (("statements", "generate", "--out", "{missing}"), "--out"),
    (("portal", "requests", "photo", "1", "-o", "{missing}/card.png"), "--output"),
]


def usage_lines(result, command_path: str) -> str:
    """Assert exit 2 and the two lines of a parser usage error; returns the error line."""
    assert result.exit_code == 2, f"exit {result.exit_code}\nstderr: {result.stderr}"
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("hpms: error: ") and lines[0][len("hpms: error: ")].islower(), lines
    assert lines[1] == f"hint: see `{command_path} --help`"
    return lines[0]


def test_every_group_has_samples():
    assert set(USAGE) == set(GROUPS)
    assert set(NOT_FOUND) | NOTHING_TO_FIND == set(GROUPS) and not set(NOT_FOUND) & NOTHING_TO_FIND


@pytest.mark.parametrize("group", GROUPS)
def test_parser_usage_errors_of_every_group(fresh_cli, clean_env, group):
    args = USAGE[group]
    usage_lines(fresh_cli(*args), _command_path(args))
    assert not clean_env.exists()  # refused while parsing: nothing was opened or created


def _command_path(args: tuple[str, ...]) -> str:
    """`hpms GROUP [SUB] CMD`: the words of `args` that name commands."""
    from typer.main import get_command

    from hpms.cli import app

    command = get_command(app)
    path = ["hpms"]
    for word in args:
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        path.append(word)
        command = sub
    return " ".join(path)


def test_root_usage_errors(fresh_cli):
    usage_lines(fresh_cli("no-such-group"), "hpms")
    usage_lines(fresh_cli("--no-such-option"), "hpms")
    r = fresh_cli("eligibility", "request")
    assert usage_lines(r, "hpms eligibility request") == "hpms: error: missing option '--out'"


def test_not_found_in_every_group_that_finds(cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for group, (args, words) in NOT_FOUND.items():
        r = cli(*(a.format(out=out) for a in args))
        try:
            error_line(r, 3, *words)
        except AssertionError as exc:
            raise AssertionError(f"{group}: {' '.join(args)}: {exc}") from None
    assert list(out.iterdir()) == []


def test_a_missing_input_file_is_a_usage_error(cli, tmp_path, counts, settings):
    before = counts("patient", "audit_event")
    for command in MISSING_INPUT:
        if command == ("db", "restore") and not settings.is_sqlite:
            continue  # (PostgreSQL is restored with pg_restore)
        missing = tmp_path / f"none-{command[0]}.txt"
        args = (*command, str(missing), *(("--yes",) if command == ("db", "restore") else ()))
        line = error_line(cli(*args), 2, str(missing), "does not exist")
        assert re.match(r"hpms: error: (FILE|PATH): ", line), line
    assert counts("patient", "audit_event") == before


def test_a_missing_or_unwritable_output_folder_is_a_usage_error(cli, tmp_path, monkeypatch, ctx_for):
    setup_practice(ctx_for)  # provider Smith, a billing profile
    missing = tmp_path / "missing"
    for args, option in MISSING_OUTPUT:
        error_line(cli(*(a.format(missing=missing) for a in args)), 2, option, str(missing), "does not exist")
    ro = tmp_path / "ro"
    ro.mkdir()
    deny_writes_under(monkeypatch, ro)
    for args, option in MISSING_OUTPUT:
        r = cli(*(a.format(missing=ro) for a in args))
        error_line(r, 2, option, str(ro), "is not writable")
    assert list(ro.iterdir()) == [] and not missing.exists()


def test_an_unsupported_database_url_is_a_usage_error(fresh_cli):
    for url in ("mysql://user:secret@db/hpms", "not a url"):
        line = error_line(fresh_cli("patients", "list", env={"HPMS_DATABASE_URL": url}), 2, "is not supported")
        assert "secret" not in line and "sqlite:///PATH" in line


def test_conflict_permission_and_lock(cli, raw_sql, make_user, ctx_for, tmp_path):
    setup_practice(ctx_for)  # a billing profile: the run gets as far as the lock
    make_user("clerk", "front_desk")
    error_line(cli("users", "add", "clerk", "--role", "front_desk"), 4, "'clerk'")
    error_line(cli("users", "add", "other", "--role", "admin", env={"HPMS_USER": "clerk"}), 5)
    raw_sql(
        "INSERT INTO job_lock (name, holder, host, pid, acquired_at, heartbeat_at) VALUES "
        f"('billing_run', 'cron', '{socket.gethostname()}', {os.getppid()}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    out = tmp_path / "out"
    out.mkdir()
    error_line(cli("billing", "run", "--out", str(out)), 75, "lock")
    assert list(out.iterdir()) == []


def test_a_full_disk_is_one_line_naming_the_file(cli, tmp_path, monkeypatch):
    from hpms import fileio

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", full)
    target = tmp_path / "visits.csv"
    r = cli("reports", "export", "appointments-by-day", "-o", str(target))
    line = error_line(r, 74, f"cannot write {target}", "No space left on device", "nothing was written")
    assert "internal error" not in line and list(tmp_path.iterdir()) == [tmp_path / "home"]


def test_an_operating_system_error_is_never_an_internal_error(cli, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/srv/hpms/config.toml")

    monkeypatch.setattr("hpms.services.people.patients.list_patients", denied)
    r = cli("patients", "list")
    assert error_line(r, 74) == "hpms: error: /srv/hpms/config.toml: Permission denied"


def test_the_table_lists_exactly_the_codes_hpms_defines():
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    listed = [int(m) for m in re.findall(r"^\| (\d+) \|", section, flags=re.MULTILINE)]
    assert listed == sorted(int(c) for c in ExitCode)
