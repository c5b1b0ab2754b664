"""`hpms users`, `hpms whoami`, `hpms login` and `hpms logout`: accounts, roles, tokens, sign-in."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(help="Users, roles and API tokens.", no_args_is_help=True)

COLUMNS = [
    ("username", "User"),
    ("full_name", "Name"),
    ("roles", "Roles"),
    ("disabled", "Disabled"),
    ("has_token", "Token"),
]
UserArg = Annotated[str, typer.Argument(help="User name (the OS login for people).")]
RoleArg = Annotated[str, typer.Argument(help="admin, front_desk, biller, provider, auditor or service.")]


def register_whoami(root: typer.Typer) -> None:
    root.command("whoami")(whoami)


def register_login(root: typer.Typer) -> None:
    root.command("login")(login)
    root.command("logout")(logout)


def _read_token() -> str:
    """The token from a prompt without echo on a TTY, else the first line of stdin."""
    import sys

    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("token: ")
    return sys.stdin.readline().strip()


def login(username: UserArg, as_json: JsonOpt = False) -> None:
    """Sign in with your API token, kept for this database (keyring, or a 0600 file).

    The token is read from a prompt without echo, or from stdin when that is not a terminal
    (never from the command line). It is checked against the database before it is kept; later
    commands use it when HPMS_TOKEN is not set. An admin makes tokens with `hpms users token`.

    Example: hpms login maria < maria.token
    """
    from hpms.commands._common import settings
    from hpms.services.platform import signin

    token = _read_token()
    out = signin.login(settings(), username=username, token=token)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"signed in as {out['username']} on {out['database']} (token kept in {out['stored_in']})")


def logout(
    everywhere: Annotated[bool, typer.Option("--all", help="Forget the sign-ins of every database.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Forget the token `hpms login` kept for this database.

    Example: hpms logout
    """
    from hpms.commands._common import settings
    from hpms.services.platform import signin

    out = signin.logout(settings(), everywhere=everywhere)
    if as_json:
        emit_object(out, as_json=True)
    elif out["removed"]:
        info(f"signed out ({out['removed']} stored sign-in{'s' if out['removed'] != 1 else ''} removed)")
    else:
        info("not signed in: no stored sign-in to remove")


def whoami(as_json: JsonOpt = False) -> None:
    """Show who you act as, your roles and how you were authenticated.

    Example: HPMS_USER=nightly HPMS_TOKEN=... hpms whoami --json
    """
    from hpms.services.platform import users

    with service_context() as ctx:
        me = users.whoami(ctx)
    emit_object(me, as_json=as_json)


@app.command("add")
def add(
    username: UserArg,
    role: Annotated[list[str], typer.Option("--role", "-r", help="Role to grant (repeatable).")] = [],  # noqa: B006
    full_name: Annotated[str | None, typer.Option("--full-name")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a user with one or more roles (admin).

    Example: hpms users add maria --role front_desk --full-name "Maria Lopez"
    """
    from hpms.services.platform import users

    with service_context() as ctx:
        out = users.add_user(ctx, username=username, roles=role, full_name=full_name)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"added user {out.username} ({', '.join(out.roles)})")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List users and their roles (admin, auditor).

    Example: hpms users list
    """
    from hpms.services.platform import users

    with service_context() as ctx:
        rows = users.list_users(ctx)
    emit_table(rows, COLUMNS, as_json=as_json, title="Users")


@app.command("show")
def show(username: UserArg, as_json: JsonOpt = False) -> None:
    """Show one user.

    Example: hpms users show maria
    """
    from hpms.services.platform import users

    with service_context() as ctx:
        out = users.show_user(ctx, username)
    emit_object(out, as_json=as_json)


@app.command("disable")
def disable(username: UserArg, as_json: JsonOpt = False) -> None:
    """Disable a user: they are refused from now on and their token stops working (admin).

    Example: hpms users disable maria
    """
    from hpms.services.platform import users

    with service_context() as ctx:
        out = users.set_disabled(ctx, username, True)
    emit_object(out, as_json=as_json)


@app.command("enable")
def enable(username: UserArg, as_json: JsonOpt = False) -> None:
    """Enable a disabled user again (admin).

    Example: hpms users enable maria
    """
    from hpms.services.platform import users

    with service_context() as ctx:
        out = users.set_disabled(ctx, username, False)
    emit_object(out, as_json=as_json)


@app.command("grant")
def grant(username: UserArg, role: RoleArg, as_json: JsonOpt = False) -> None:
    """Give a user a role (admin).

    Example: hpms users grant maria biller
    """
    from hpms.services.platform import users

    with service_context() as ctx:
        out = users.grant(ctx, username, role)
    emit_object(out, as_json=as_json)


@app.command("revoke")
def revoke(username: UserArg, role: RoleArg, as_json: JsonOpt = False) -> None:
    """Take a role from a user (admin); the last admin keeps theirs.

    Example: hpms users revoke maria biller
    """
    from hpms.services.platform import users

    with service_context() as ctx:
        out = users.revoke(ctx, username, role)
    emit_object(out, as_json=as_json)


@app.command("token")
def token(username: UserArg, as_json: JsonOpt = False) -> None:
    """Create (or replace) a user's API token and print it once (admin).

    Use it as HPMS_USER=NAME HPMS_TOKEN=TOKEN for cron jobs and service accounts.

    Example: hpms users token nightly
    """
    from hpms.services.platform import users

    with service_context() as ctx:
        tok = users.issue_token(ctx, username)
    if as_json:
        emit_object({"username": username, "token": tok}, as_json=True)
    else:
        typer.echo(tok)
        info(f"token for {username}: shown once; store it like a password (HPMS_USER={username} HPMS_TOKEN=...)")
