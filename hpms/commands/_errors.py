"""How the CLI says an error: the one place that turns the services' structured errors into
`--option: message; hint` and the exit code; the parser's usage errors and the operating
system's errors too.

A field becomes the option (or the argument's metavar) of the command that ran when the
command has a parameter of that name, else it is shown as it is (a CSV column, "HPMS_KEY",
"row 3"). An action becomes a command line; flags to retry with become "add --flag ...".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typer.core import TyperCommand

    from hpms.errors import Action, HpmsError

_current: list[TyperCommand] = []


def running(command: TyperCommand | None) -> None:
    """Remember the command being run (its parameters name the options fields map to)."""
    _current[:] = [command] if command is not None else []


def leaf(group, ctx, args: list[str]):
    """The command `args` name below `group` (a sub-group's sub-command, ...), or None."""
    command = group
    while hasattr(command, "resolve_command") and args and not args[0].startswith("-"):
        try:
            _, sub, args = command.resolve_command(ctx, args)
        except Exception:  # noqa: BLE001 - an unknown name: the parser reports it
            return None
        if sub is None:
            return None
        command = sub
    return command


def option(field: str | None, command: TyperCommand | None = None) -> str | None:
    """The CLI's name for a service field: `--tax-id`, `FILE`, ..."""
    if not field:
        return None
    command = command if command is not None else (_current[0] if _current else None)
    if command is not None:
        for p in command.params:
            if p.name in (field, field + "_"):  # `type_`: a parameter named after a Python builtin
                if p.param_type_name == "option":
                    longs = [o for o in p.opts if o.startswith("--")]
                    return (longs or p.opts)[0]
                return getattr(p, "metavar", None) or (p.name or field).upper()
    return field


def command_line(action: Action) -> str:
    """`see \\`hpms claims list\\``, `add one with \\`hpms encounters update 5 --dx CODE\\``,
    `create one with \\`hpms init\\`` (an action without a verb)."""
    parts = ["hpms", action.noun, *([action.verb] if action.verb else [])]
    if action.target:
        parts.append(action.target)
    for give in action.give:
        name, placeholder = give if isinstance(give, tuple) else (give, "...")
        parts += ["--" + name.replace("_", "-"), placeholder]
    return f"{action.purpose} `{' '.join(parts)}`"


def describe(exc: HpmsError) -> str:
    """The error as one line (without the `hpms: error:` prefix)."""
    label = option(exc.field)
    text = f"{label}: {exc.message}" if label else exc.message
    hints = []
    if exc.retry_with:
        flags = " ".join(option(f) or f for f in exc.retry_with)
        hints.append(f"add {flags} {exc.hint}" if exc.hint else f"add {flags}")
    elif exc.hint:
        hints.append(exc.hint)
    if exc.action is not None:
        hints.append(command_line(exc.action))
    return "; ".join([text, *hints])


def usage(exc: Any) -> tuple[str, str]:
    """The parser's usage error (a Click UsageError) as (error, hint): one line each, the hint
    naming the help of the command that was being parsed."""
    text = " ".join(str(exc.format_message()).split()).rstrip(".")
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    path = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "hpms"
    return text, f"see `{path} --help`"


def environment(exc: OSError) -> str:
    """An operating-system error (a full disk, a file that may not be read or written) as one
    line naming the file."""
    import os

    what = exc.strerror or str(exc) or type(exc).__name__
    names = [os.fsdecode(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {what}" if names else what
