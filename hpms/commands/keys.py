"""`hpms keys`: the field-encryption key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, YesOpt, emit_object, info, service_context

app = typer.Typer(help="The key that encrypts SSNs and member ids.", no_args_is_help=True)


@app.command("rotate")
def rotate(as_json: JsonOpt = False) -> None:
    """Re-encrypt every sensitive field under a new key (admin). Back up the key file after.

    With HPMS_KEY in the environment, put the new key in HPMS_NEW_KEY (see `hpms keys generate`).

    Example: hpms keys rotate
    """
    import os

    from hpms.errors import EncryptionKeyError, ValidationError
    from hpms.services.platform import admin
    from hpms.services.platform.crypto import decode_key

    env_new = os.environ.get("HPMS_NEW_KEY")
    try:
        new_key = decode_key(env_new, "HPMS_NEW_KEY") if env_new else None
    except EncryptionKeyError as exc:
        raise ValidationError("HPMS_NEW_KEY", exc.message.split(": ", 1)[-1]) from None
    with service_context() as ctx:
        result = admin.rotate_keys(ctx, new_key=new_key)
    admin.finish_rotation(ctx.settings, result["key_id"])
    if as_json:
        emit_object(result, as_json=True)
        return
    info(
        f"re-encrypted {result['reencrypted']['ssn']} SSN(s) and {result['reencrypted']['member_id']} member id(s) "
        f"under key {result['key_id']}"
    )
    if result["key_file"]:
        info(f"back up the new key file {result['key_file']} now; the old key no longer opens the data")
    else:
        info("now set HPMS_KEY to the value of HPMS_NEW_KEY everywhere hpms runs")


@app.command("generate")
def generate() -> None:
    """Print a new random key (for HPMS_KEY / HPMS_NEW_KEY); touches no database.

    Example: export HPMS_NEW_KEY=$(hpms keys generate)
    """
    from hpms.services.platform.crypto import encode_key, new_key

    typer.echo(encode_key(new_key()))


@app.command("export")
def export(
    to: Annotated[Path, typer.Option("--to", help="File to write (0600; temp name, then renamed).")],
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a copy of the key file for safekeeping apart from the database (admin).

    The copy opens the data as the key file does (HPMS_KEY_FILE); `hpms doctor` reports its age
    and whether a rotation since made it stale. Export again after `hpms keys rotate`.

    Example: hpms keys export --to /media/keys/hpms-key-$(date +%F).json
    """
    from hpms.services.platform import admin

    with service_context() as ctx:
        result = admin.export_key(ctx, to, overwrite=yes)
    if as_json:
        emit_object(result, as_json=True)
    else:
        info(f"key {result['key_id']} written to {result['exported']}; keep it apart from the database backups")
