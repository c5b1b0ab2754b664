"""`hpms portal`: the web server: the SMS provider's delivery reports and patients' replies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hpms.commands._common import JsonOpt, info, print_json, service_context, settings

if TYPE_CHECKING:
    import socket

    from hpms.config import Settings

app = typer.Typer(
    help="The web server: the SMS provider's delivery reports and patients' replies over HTTP.",
    no_args_is_help=True,
)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (keep the loopback behind a proxy).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="TCP port to listen on (1-65535).")] = 8080,
    as_json: JsonOpt = False,
) -> None:
    """Serve the SMS and mail providers' callbacks over HTTP until SIGTERM or Ctrl-C (admin or a service account).

    Runs as the user who starts it, one transaction per request. Give the provider
    PUBLIC_URL/hooks/sms/inbound for patients' replies; the sender asks it to report each
    message's fate to PUBLIC_URL/hooks/sms/status (PUBLIC_URL is `public_url` in the config
    file, or HPMS_PUBLIC_URL). Requests without the provider's valid signature are refused
    (403). A mail provider's inbound webhook posts patients' emails to
    PUBLIC_URL/hooks/email/inbound with `inbound_email_secret` (HPMS_INBOUND_EMAIL_SECRET) as
    the password of HTTP basic auth; without it, 403. GET /healthz answers "ok". Put it behind
    a reverse proxy that terminates TLS.

    Example: hpms portal serve --host 127.0.0.1 --port 8080
    """
    import socket

    from hpms.errors import ValidationError

    if not 1 <= port <= 65535:
        raise ValidationError("port", f"{port} is not a TCP port (1-65535)")
    if not host.strip():
        raise ValidationError("host", "is empty")
    from hpms.portal.app import EMAIL_INBOUND_PATH
    from hpms.services.messages import delivery
    from hpms.services.messages.sms import INBOUND_PATH, status_callback_url

    cfg = settings()
    with service_context() as ctx:  # who the server runs as, refused now rather than per request
        delivery.check_server(ctx)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (socket.gaierror, UnicodeError):  # a host name that does not resolve
        sock.close()
        raise ValidationError("host", f"{host!r} is not an address of this machine") from None
    except OSError:  # in use, or not ours: the machine's answer, one line
        sock.close()
        raise
    if not cfg.sms_url:
        info("hpms: warning: sms_url is not set: every callback will be refused (its signature cannot be checked)")
    if not cfg.inbound_email_secret:
        info("hpms: warning: inbound_email_secret is not set: every inbound email will be refused")
    if not cfg.public_url:
        info(
            "hpms: warning: public_url is not set: delivery reports are not asked for, and signatures are "
            "checked against the URL this server sees"
        )
    try:
        _run(sock, cfg)
    finally:
        sock.close()
    url = f"http://{host}:{port}"
    if as_json:
        print_json(
            {
                "url": url,
                "public_url": cfg.public_url,
                "status_callback": status_callback_url(cfg.public_url),
                "inbound": cfg.public_url + INBOUND_PATH if cfg.public_url else None,
                "email_inbound": cfg.public_url + EMAIL_INBOUND_PATH if cfg.public_url else None,
                "stopped": True,
            }
        )
    else:
        info(f"stopped serving {url}")


def _run(sock: socket.socket, cfg: Settings) -> None:
    """Serve on `sock` until SIGTERM or SIGINT, which end it normally (exit 0) once the requests
    in hand are answered."""
    import copy
    import signal

    import uvicorn
    import uvicorn.config

    from hpms.portal.app import create_app

    def stopped(signum: int, frame: object) -> None:
        pass  # uvicorn stops on the signal, then hands it on here: nothing more to do

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stopped)
    logging = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    logging["handlers"]["access"]["stream"] = "ext://sys.stderr"  # stdout is for data (--json)
    config = uvicorn.Config(
        create_app(cfg),
        log_config=logging,
        log_level="info",
        access_log=True,
        lifespan="off",
        server_header=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
