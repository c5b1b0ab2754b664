"""`hpms config`: the effective settings."""

from __future__ import annotations

import typer

from hpms.commands._common import JsonOpt, emit_object

app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)


@app.command("show")
def show(as_json: JsonOpt = False) -> None:
    """Print the effective settings and where each came from (never a password or key).

    Example: hpms config show --json
    """
    from hpms.config import load_settings

    data = load_settings().public_dict()
    if as_json:
        emit_object(data, as_json=True)
        return
    sources = data.pop("sources")
    assert isinstance(sources, dict)
    emit_object(data, as_json=False)
    for k, src in sources.items():
        typer.echo(f"source of {k}: {src}")
