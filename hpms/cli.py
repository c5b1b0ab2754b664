"""The `hpms` command: registers the command groups and turns errors into exit codes.

Start-up budget: nothing here (or in the command modules' top level) imports sqlmodel,
sqlalchemy, textual, pendulum or tablib; tests/cli/test_import_hygiene.py checks it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import MarkupMode, TyperCommand, TyperGroup
from typer.models import CommandInfo

from hpms import __version__
from hpms.errors import ExitCode, HpmsError

if TYPE_CHECKING:
    # The Click that Typer 0.29 vendors, whose Context the overridden methods take (pinned in
    # pyproject.toml with the internals `_plain_coercion` uses).
    from typer._click import Command, Context, HelpFormatter


class HpmsGroup(TyperGroup):
    """Root group: one line on stderr and the documented exit code for every error."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        _plain_coercion(self, ctx)
        with _usage_errors():
            return super().parse_args(ctx, args)

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        from hpms.commands._errors import leaf, running

        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None:
            _plain_coercion(cmd, ctx)
            for sub in getattr(cmd, "commands", {}).values():
                _plain_coercion(sub, ctx)
            running(leaf(cmd, ctx, list(rest)))  # the services' error fields name its parameters
        return name, cmd, rest

    def invoke(self, ctx: Context) -> Any:
        try:
            with _usage_errors():
                return super().invoke(ctx)
        except HpmsError as exc:
            from hpms.commands._errors import describe

            _traceback(ctx)
            typer.echo(f"hpms: error: {describe(exc)}", err=True)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            typer.echo("hpms: interrupted", err=True)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except BrokenPipeError:
            # The reader went away (`hpms patients list | head`): stop quietly.
            _silence_stdout()
            raise typer.Exit(int(ExitCode.OK)) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except OSError as exc:
            # The machine's fault, not the program's: a full disk, a file that may not be
            # written. One line naming the file; never "internal error".
            from hpms.commands._errors import environment

            _traceback(ctx)
            typer.echo(f"hpms: error: {environment(exc)}", err=True)
            raise typer.Exit(int(ExitCode.IO)) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if type(exc).__module__.startswith(("click", "typer")):
                raise
            _traceback(ctx)
            typer.echo(
                f"hpms: internal error: {type(exc).__name__}: {_short(exc)} (rerun with --debug for the traceback)",
                err=True,
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None


@contextmanager
def _usage_errors() -> Iterator[None]:
    """The parser's usage errors (an unknown option or command, a bad or missing value) as
    `hpms: error: ...` and a hint line naming the help to read; exit 2."""
    from typer._click.exceptions import NoArgsIsHelpError
    from typer._click.exceptions import UsageError as ParserUsageError

    try:
        yield
    except NoArgsIsHelpError:
        raise  # `hpms patients` alone: the help, as Click shows it
    except ParserUsageError as exc:
        from hpms.commands._errors import usage

        error, hint = usage(exc)
        typer.echo(f"hpms: error: {error}", err=True)
        typer.echo(f"hint: {hint}", err=True)
        raise typer.Exit(int(ExitCode.USAGE)) from None


def _plain_coercion(command: Command, ctx: Context) -> None:
    """Give the flags (bool) and plain str parameters of `command` a pass-through conversion.

    Typer converts every parameter's value with a pydantic TypeAdapter built on first use, even
    the None of a flag not given; building the first one imports pydantic (~50 ms of `hpms
    patients --help`). A flag's value is already a bool and a plain str parameter's a str, so
    these need no conversion. Relies on Typer internals, hence the pin of Typer's minor version
    in pyproject.toml; if they change anyway, nothing is replaced."""
    try:
        from typer._coercion import PassThroughRuntimeParam
        from typer.core import _TyperParameter
    except ImportError:  # pragma: no cover - another Typer
        return
    for param in command.get_params(ctx):
        if not isinstance(param, _TyperParameter) or getattr(param, "_runtime_param", True) is not None:
            continue
        desc = param.type_descriptor
        info = desc.parameter_info
        plain = (
            not param.envvar
            and desc.file_annotation is None
            and getattr(info, "parser", True) is None
            and getattr(info, "click_type", None) is None
        )
        if plain and (desc.annotation is str or desc.annotation is bool and getattr(param, "is_flag", False)):
            param._runtime_param = PassThroughRuntimeParam(annotation=desc.annotation, parameter_info=info)


def _traceback(ctx: Context) -> None:
    """With --debug, the traceback (never local variables) before the one-line error; the
    exit code stays the documented one."""
    if _debug(ctx):
        import traceback

        traceback.print_exc(file=sys.stderr)


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def _debug(ctx: Context) -> bool:
    root = ctx.find_root()
    return bool(root.obj and root.obj.get("debug"))


PRETTY_EXCEPTIONS_SHORT = True  # Typer's default; what it passes when it converts a command

GROUPS: tuple[str, ...] = (
    "config",
    "db",
    "locations",
    "users",
    "patients",
    "payers",
    "coverage",
    "audit",
    "keys",
    "providers",
    "rooms",
    "appointment-types",
    "schedule",
    "appointments",
    "waitlist",
    "fees",
    "encounters",
)
GROUPS += ("billing", "claims")
GROUPS += ("reports",)
GROUPS += ("codes",)
GROUPS += ("surveys",)
GROUPS += ("remits", "payments", "statements", "eligibility")
GROUPS += ("messages", "reminders", "comms")
GROUPS += ("portal",)
GROUPS += ("fhir", "tokens")
GROUPS += ("hl7", "interfaces")

# The commands outside the groups, in the order of the root help (they come before the groups).
COMMANDS: tuple[str, ...] = ("init", "demo", "doctor", "whoami", "login", "logout", "tui")

# The first paragraph of the help of every command and group, whitespace collapsed: all Click
# reads to write a line of the root help (at any width), so `hpms --help` needs no command module.
# tests/cli/test_import_hygiene.py checks each against the command's real help.
SUMMARY: dict[str, str] = {
    "init": "Create or upgrade the hpms database; the OS user running it becomes the first admin.",
    "demo": "Build a demo clinic: 2 locations, staff of every role, payers, synthetic patients and a schedule.",
    "doctor": "Check the installation before it is relied on (exit 1 when a check fails).",
    "whoami": "Show who you act as, your roles and how you were authenticated.",
    "login": "Sign in with your API token, kept for this database (keyring, or a 0600 file).",
    "logout": "Forget the token `hpms login` kept for this database.",
    "tui": "Open the full-screen scheduler (day view, booking, check-in, waitlist); ? inside shows the keys.",
    "config": "Show the effective configuration.",
    "db": "Database upgrade, check, backup and restore.",
    "locations": "Locations (sites) of the practice.",
    "users": "Users, roles and API tokens.",
    "patients": "Patient registration and lookup.",
    "payers": "Payers (insurers) and their X12 payer ids.",
    "coverage": "Patients' insurance coverage.",
    "audit": "The audit trail of every touch of patient data.",
    "keys": "The key that encrypts SSNs and member ids.",
    "providers": "Providers (clinicians) and the locations they work at.",
    "rooms": "Rooms and equipment at each location.",
    "appointment-types": "Appointment types: length, buffer, room and billing code of each kind of visit.",
    "schedule": "Working hours, time off, a provider's week and the scheduling policy.",
    "appointments": "Appointments: booking, rescheduling, the visit lifecycle and the day sheet.",
    "waitlist": "The waitlist: patients waiting for an earlier visit, and freed slots to offer them.",
    "fees": "Fee schedules: the default prices and each payer's.",
    "encounters": "Encounters: diagnoses and procedure lines of visits, signing, superbills.",
    "billing": "The billing run (837P claim files) and the practice's billing profile.",
    "claims": "Claims: list, show, scrub, submit, void, resubmit, the work list.",
    "reports": "Reports and exports: appointments, no-shows, reminders, utilization, revenue, A/R, KPIs.",
    "codes": "Diagnosis and procedure codes (ICD-10-CM, HCPCS, CPT) and modifiers.",
    "surveys": "Patient satisfaction surveys: one score (1-5) per completed visit.",
    "remits": "Remittance advice (835): import payments and adjustments, match what could not be matched.",
    "payments": (
        "Patient payments: record (copays at check-in too), list, refund; credit is applied oldest visit first."
    ),
    "statements": (
        "Patient statements: one file per patient with activity, insurance paid, adjustments, amount due and aging."
    ),
    "eligibility": "Insurance eligibility: write 270 requests for scheduled patients, import 271 answers.",
    "messages": "Messages to patients (email, SMS): the outbox and its sender.",
    "reminders": "Appointment reminders: rules by type (hours before, channel) and quiet hours.",
    "comms": "A patient's communication log: messages sent, calls, letters and notes.",
    "portal": (
        "The web server: the patient portal, the SMS provider's delivery reports and patients' replies over HTTP."
    ),
    "fhir": "FHIR R4 exchange with other systems: the practice's records out and in as FHIR resources.",
    "tokens": "Bearer tokens of API clients (an EHR reading the FHIR API), each acting with one role.",
    "hl7": "HL7 v2 interfaces: SIU and ADT messages to other systems over MLLP or into a folder, ADT messages in.",
    "interfaces": "The interfaces with other systems: what each HL7 receiver has queued, failed and sent.",
}


class _Unloaded(TyperCommand):
    """A command or group of the root not imported yet: its name and summary, enough for the
    root help; `load` gives the real one."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, help=SUMMARY[name])

    def load(self) -> Command:
        import typer.main

        name = self.name or ""
        slim = typer.main.get_command(build_app(name))
        assert isinstance(slim, TyperGroup)
        return slim.commands[name]


class LazyHpmsGroup(HpmsGroup):
    """The root group `main` runs when no group is named (`hpms --help`, `hpms init`, a typo):
    every command and group is listed from COMMANDS, GROUPS and SUMMARY, and imported and
    converted by Typer only when it is the one run (Typer otherwise reads the parameters of
    every command of every group to print the root help)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name in (*COMMANDS, *GROUPS):
            self.commands.setdefault(name, _Unloaded(name))
        self._listing = False

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        cmd = self.commands.get(cmd_name)
        if isinstance(cmd, _Unloaded) and not self._listing:
            cmd = self.commands[cmd_name] = cmd.load()
        return cmd

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True  # the summaries are enough: nothing is imported
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


class _Pending(TyperCommand):
    """A command of a group not converted by Typer yet: what the group's help reads of it
    (name, help, short help, hidden, deprecated), as Typer would set it; `load` converts it."""

    def __init__(self, info: CommandInfo) -> None:
        import inspect

        self.info = info
        callback = info.callback
        assert callback is not None
        super().__init__(
            name=info.name or callback.__name__.lower().replace("_", "-"),
            help=inspect.getdoc(callback) if info.help is None else inspect.cleandoc(info.help),
            short_help=info.short_help,
            hidden=info.hidden,
            deprecated=info.deprecated,
        )

    def load(self, rich_markup_mode: MarkupMode) -> Command:
        import typer.main

        return typer.main.get_command_from_info(
            self.info, pretty_exceptions_short=PRETTY_EXCEPTIONS_SHORT, rich_markup_mode=rich_markup_mode
        )


class LazyTyperGroup(TyperGroup):
    """A command group whose commands Typer converts (reading every parameter's annotation)
    only when one is run: `hpms GROUP --help` lists them from their help alone. Made for one
    group by `_lazy_group`, which sets `pending`."""

    pending: tuple[CommandInfo, ...] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        groups = dict(self.commands)  # the sub-groups, converted (Typer lists them after the commands)
        self.commands = {cmd.name or "": cmd for cmd in map(_Pending, self.pending)}
        self.commands.update(groups)
        self._listing = False

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        cmd = self.commands.get(cmd_name)
        if isinstance(cmd, _Pending) and not self._listing:
            cmd = self.commands[cmd_name] = cmd.load(self.rich_markup_mode)
            _plain_coercion(cmd, ctx)
        return cmd

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True  # the help of each is enough: nothing is converted
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


def _lazy_group(sub: typer.Typer) -> tuple[typer.Typer, type[LazyTyperGroup]]:
    """`sub` without its commands, and the LazyTyperGroup class that holds them instead."""
    import copy

    lean = copy.copy(sub)
    lean.registered_commands = []
    cls = type("LazyTyperGroup", (LazyTyperGroup,), {"pending": tuple(sub.registered_commands)})
    return lean, cls


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hpms {__version__}")
        raise typer.Exit()


def root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors (never local variables).")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    config: Annotated[
        str | None,
        typer.Option("--config", metavar="FILE", help="Config file to read (as HPMS_CONFIG); it must exist."),
    ] = None,
) -> None:
    """hpms: practice management for outpatient clinics, from the terminal.

    Start with `hpms init` (or `hpms demo` for a demo clinic), then see `hpms patients --help`.
    """
    ctx.obj = {"debug": debug}
    _check_config(config)


def _check_config(config: str | None) -> None:
    """Read the config file once before any command: a named file that is missing or unreadable
    stops here (exit 2); a warning it carries goes to stderr."""
    import os

    from hpms.config import ENV_CONFIG, load_settings

    if config is not None:
        os.environ[ENV_CONFIG] = config
    for warning in load_settings().warnings:
        typer.echo(f"hpms: warning: {warning}", err=True)


def tui(
    location: Annotated[
        str | None,
        typer.Option("--location", help="Location id or name (default: the configured one, else the first)."),
    ] = None,
    date: Annotated[str | None, typer.Option("--date", help="Day to open: YYYY-MM-DD, today, tomorrow, +N.")] = None,
    step: Annotated[int, typer.Option("--step", help="Minutes per row: 5, 10, 15 or 30.")] = 15,
) -> None:
    """Open the full-screen scheduler (day view, booking, check-in, waitlist); ? inside shows the keys.

    Example: hpms tui --location "Lakeside Clinic" --date tomorrow
    """
    from hpms.tui.app import launch  # the face next to this one; imported only when used

    launch(location=location, date=date, step=step)


def build_app(only: str | None = None, *, lazy: bool = False) -> typer.Typer:
    """The root app with every command and group, or with just `only` (what `main` runs for
    `hpms GROUP ...`: Typer converts every registered command on each call, so a slim tree
    saves that work for all the groups not used). `lazy` (what `main` runs): the root imports
    each command or group only when it is run (LazyHpmsGroup); the group `only` converts
    each of its commands only when it is run (LazyTyperGroup)."""
    import importlib

    new = typer.Typer(
        cls=LazyHpmsGroup if lazy else HpmsGroup,
        name="hpms",
        help="hpms: practice management for outpatient clinics, from the terminal.",
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        pretty_exceptions_show_locals=False,
        pretty_exceptions_short=PRETTY_EXCEPTIONS_SHORT,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    new.callback()(root)
    if lazy and only is None:
        return new
    if only is None:
        from hpms.commands import demo, doctor, init, users

        init.register(new)
        demo.register(new)
        doctor.register(new)
        users.register_whoami(new)
        users.register_login(new)
        new.command("tui")(tui)
    elif only in COMMANDS:
        _register_command(new, only)
        return new
    for name in GROUPS if only is None else (only,):
        sub = importlib.import_module(f"hpms.commands.{name.replace('-', '_')}").app
        if lazy:
            lean, cls = _lazy_group(sub)
            new.add_typer(lean, name=name, cls=cls)
        else:
            new.add_typer(sub, name=name)
    return new


def _register_command(new: typer.Typer, name: str) -> None:
    """Register the command `name` of COMMANDS alone (login comes with logout)."""
    if name == "tui":
        new.command("tui")(tui)
        return
    if name in ("whoami", "login", "logout"):
        from hpms.commands import users

        (users.register_whoami if name == "whoami" else users.register_login)(new)
    else:  # init, demo, doctor: a module of their own
        import importlib

        importlib.import_module(f"hpms.commands.{name}").register(new)


def __getattr__(name: str) -> Any:
    # `app`, the whole tree (for the docs and the tests), is built on first use: `main` runs a
    # lazy one instead, which imports only the command module it runs.
    if name == "app":
        value = globals()["app"] = build_app()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_exit_hook = False
ROOT_VALUE_OPTIONS = ("--config",)


def _words(args: list[str]) -> list[str]:
    """The arguments that are not options, nor the value of a root option (`--config FILE`)."""
    words: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ROOT_VALUE_OPTIONS and not words:
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    return words


def main() -> None:
    import os

    global _exit_hook
    if not _exit_hook:
        import atexit
        import gc

        # At exit CPython runs full garbage collections over everything the imports built
        # (SQLAlchemy, pydantic, the models): ~65 ms of each command here. Freezing the heap
        # first skips them; the process ends anyway, transactions are committed or rolled back
        # by then, and files are closed by `with` blocks, not by the collector. Registered
        # first, it runs after the handlers registered later (atexit runs them in reverse).
        atexit.register(gc.freeze)
        _exit_hook = True
    # Pydantic scans every installed package's entry points for plugins on first use (~40 ms
    # of each command here); hpms uses none. A value set by the user still wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    words = _words(sys.argv[1:])
    group = words[0] if words and words[0] in GROUPS else None
    build_app(group, lazy=True)(prog_name="hpms")


if __name__ == "__main__":  # pragma: no cover
    main()
