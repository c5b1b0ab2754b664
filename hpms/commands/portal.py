"""`hpms portal`: the web server (the patient portal, the SMS provider's delivery reports and
patients' replies), the policies of patients' online booking, and who may act for whom.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, print_json, service_context, settings

if TYPE_CHECKING:
    import socket

    from hpms.config import Settings

app = typer.Typer(
    help="The web server: the patient portal, the SMS provider's delivery reports and patients' replies over HTTP.\n\n"
    "`policies`: which times patients may book online, and the cancellation window. `requests`: the "
    "registrations and pre-visit forms patients sent, for the front desk to accept or reject.",
    no_args_is_help=True,
)
policies_app = typer.Typer(
    help="Online booking policies: per appointment type (and provider), the lead time, horizon, daily cap and "
    "new patients; the practice's cancellation window.",
    no_args_is_help=True,
)
app.add_typer(policies_app, name="policies")

POLICY_COLUMNS = [
    ("type", "Type"),
    ("provider", "Provider"),
    ("enabled", "Enabled"),
    ("lead_minutes", "Lead (min)"),
    ("horizon_days", "Horizon (days)"),
    ("daily_cap", "Daily cap"),
    ("new_patients_allowed", "New patients"),
]

proxies_app = typer.Typer(
    help="Who may act for whom in the patient portal (a parent for a child, a carer).", no_args_is_help=True
)
app.add_typer(proxies_app, name="proxies")

PROXY_COLUMNS = [
    ("guardian_mrn", "Guardian MRN"),
    ("guardian", "Guardian"),
    ("patient_mrn", "Patient MRN"),
    ("patient", "Patient"),
    ("created_at", "Since"),
]
GuardianOpt = Annotated[str, typer.Option("--guardian", help="MRN (or id) of the patient who acts for the other.")]
PatientOpt = Annotated[str, typer.Option("--patient", help="MRN (or id) of the patient they act for.")]


@proxies_app.command("add")
def proxies_add(guardian: GuardianOpt, patient: PatientOpt, as_json: JsonOpt = False) -> None:
    """Let a patient (a parent, a guardian) see another patient's portal (admin, front desk).

    Once signed in, the guardian can switch to the patient's records.

    Example: hpms portal proxies add --guardian 0000012 --patient 0000013
    """
    from hpms.services.portal import proxies

    with service_context() as ctx:
        out = proxies.add(ctx, guardian=guardian, patient=patient)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"MRN {out.guardian_mrn} may now act for MRN {out.patient_mrn} in the portal")


@proxies_app.command("list")
def proxies_list(
    patient: Annotated[
        str | None, typer.Option("--patient", help="Only the links of this patient (MRN or id), either side.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List who may act for whom in the portal (admin, front desk, provider).

    Example: hpms portal proxies list --patient 0000012
    """
    from hpms.services.portal import proxies

    with service_context() as ctx:
        rows = proxies.list_links(ctx, patient=patient)
    emit_table(rows, PROXY_COLUMNS, as_json=as_json, title="Portal proxies")


@proxies_app.command("remove")
def proxies_remove(guardian: GuardianOpt, patient: PatientOpt, as_json: JsonOpt = False) -> None:
    """Stop a guardian seeing a patient's portal, at once (admin, front desk).

    Example: hpms portal proxies remove --guardian 0000012 --patient 0000013
    """
    from hpms.services.portal import proxies

    with service_context() as ctx:
        out = proxies.remove(ctx, guardian=guardian, patient=patient)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"MRN {out.guardian_mrn} may no longer act for MRN {out.patient_mrn} in the portal")


requests_app = typer.Typer(
    help="Registrations and pre-visit forms sent from the patient portal, staged until the front desk accepts "
    "(into the chart) or rejects them.",
    no_args_is_help=True,
)
app.add_typer(requests_app, name="requests")

REQUEST_COLUMNS = [
    ("id", "Id"),
    ("kind", "Kind"),
    ("state", "State"),
    ("created_at", "Sent"),
    ("name", "Name"),
    ("dob", "Born"),
    ("patient_mrn", "MRN"),
    ("photos", "Photos"),
]
RequestId = Annotated[str, typer.Argument(metavar="ID", help="The request's id (see `hpms portal requests list`).")]


@requests_app.command("list")
def requests_list(
    state: Annotated[
        str, typer.Option("--state", help="pending (the default), accepted, rejected, or all.")
    ] = "pending",
    as_json: JsonOpt = False,
) -> None:
    """List the registrations and pre-visit forms sent online, oldest first (admin, front desk).

    Example: hpms portal requests list --state pending
    """
    from hpms.services.portal import intake

    with service_context() as ctx:
        rows = intake.list_requests(ctx, state=None if state.strip().lower() == "all" else state)
    emit_table(rows, REQUEST_COLUMNS, as_json=as_json, title="Portal requests")


@requests_app.command("show")
def requests_show(request_id: RequestId, as_json: JsonOpt = False) -> None:
    """Show what a request holds and, for a new registration, the patients on file it likely
    duplicates (admin, front desk).

    Example: hpms portal requests show 12 --json
    """
    from hpms.services.portal import intake

    with service_context() as ctx:
        out = intake.show(ctx, request_id)
    if as_json:
        emit_object(out, as_json=True)
        return
    data = out.model_dump(mode="json")
    emit_object(
        {k: data[k] for k in ("id", "kind", "state", "created_at", "submitted_by", "patient_mrn")}, as_json=False
    )
    emit_object({**data["fields"], "member_id": data["member_id"], "photos": data["photos"]}, as_json=False)
    for c in out.candidates:
        p = c.patient
        info(f"likely on file: MRN {p.mrn} {p.first_name} {p.last_name} ({'; '.join(c.reasons)})")


@requests_app.command("accept")
def requests_accept(
    request_id: RequestId,
    merge_into: Annotated[
        str | None, typer.Option("--merge-into", help="Apply a registration to this patient (MRN) instead.")
    ] = None,
    allow_duplicate: Annotated[
        bool, typer.Option("--new", help="Register a new patient even when one on file looks the same.")
    ] = False,
    payer: Annotated[
        str | None, typer.Option("--payer", help="The payer of the coverage (default: the name on the form).")
    ] = None,
    skip_coverage: Annotated[
        bool, typer.Option("--no-coverage", help="Take in the demographics only, not the insurance.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Accept a request into the chart (admin, front desk): a registration creates the patient
    (refused when one on file looks the same, unless --new or --merge-into), a pre-visit form
    updates the patient; a member id adds the coverage. Nothing is written unless all of it is.

    Example: hpms portal requests accept 12 --merge-into 0100001
    """
    from hpms.services.portal import intake

    with service_context() as ctx:
        out = intake.accept(
            ctx,
            request_id,
            merge_into=merge_into,
            allow_duplicate=allow_duplicate,
            payer=payer,
            skip_coverage=skip_coverage,
        )
    if as_json:
        emit_object(out, as_json=True)
    else:
        did = "registered as" if out.created else "applied to"
        info(f"request {out.id} {did} MRN {out.patient_mrn}")


@requests_app.command("reject")
def requests_reject(
    request_id: RequestId,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept with the request).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject a request, saying why; nothing goes into the chart (admin, front desk).

    Example: hpms portal requests reject 12 --reason "sent twice"
    """
    from hpms.services.portal import intake

    with service_context() as ctx:
        out = intake.reject(ctx, request_id, reason=reason)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"request {out.id} rejected")


@requests_app.command("photo")
def requests_photo(
    request_id: RequestId,
    output: Annotated[Path, typer.Option("-o", "--output", help="The file to write (0600, replaced atomically).")],
    side: Annotated[str, typer.Option("--side", help="front or back.")] = "front",
    as_json: JsonOpt = False,
) -> None:
    """Save the photo of an insurance card sent with a request (admin, front desk).

    Example: hpms portal requests photo 12 --side front -o card-front.jpg
    """
    from hpms.fileio import check_directory, write_atomically
    from hpms.services.portal import intake

    check_directory(output.parent if str(output.parent) else Path("."), field="output")
    with service_context() as ctx:
        out = intake.photo(ctx, request_id, side=side)
    write_atomically(output, out.data, field="output", mode=0o600)
    if as_json:
        print_json({"path": str(output), "content_type": out.content_type, "bytes": len(out.data)})
    else:
        info(f"wrote the {side} photo ({out.content_type}, {len(out.data)} bytes) to {output}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (keep the loopback behind a proxy).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="TCP port to listen on (1-65535).")] = 8080,
    as_json: JsonOpt = False,
) -> None:
    """Serve the patient portal and the providers' callbacks until SIGTERM or Ctrl-C (admin or a service account).

    Runs as the user who starts it, one transaction per request. Patients sign in at / with a
    code sent to their email or mobile (see docs/portal.md). Give the provider
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
    from hpms.services.portal import access

    with service_context() as ctx:  # who the server runs as, refused now rather than per request
        delivery.check_server(ctx)
        access.check_server(ctx)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Answers go out at once (no Nagle wait for the client's delayed ACK, ~40 ms a response):
    # the accepted connections inherit it. asyncio sets it on accepted connections only when the
    # listening socket was made with IPPROTO_TCP, and uvicorn does not set it on those it is given.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
        # Behind the TLS proxy (on this machine), the client's address is the one it forwards:
        # the portal's sign-in throttle counts per client.
        proxy_headers=cfg.portal_behind_tls,
    )
    uvicorn.Server(config).run(sockets=[sock])


# ---- online booking policies ---------------------------------------------------------------


def _emit_policies(out: dict[str, object], as_json: bool) -> None:
    if as_json:
        print_json(out)
        return
    rows = out["policies"]
    assert isinstance(rows, list)
    shown = [{**r, "provider": r["provider"] or "(every provider)"} for r in rows]
    emit_table(shown, POLICY_COLUMNS, as_json=False, title="Online booking policies")
    info(f"cancellation window: {out['cancel_window_hours']} h (no online cancel or move closer to the visit)")


@policies_app.command("show")
def policies_show(
    type_: Annotated[str | None, typer.Option("--type", help="Only this appointment type's policy.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The online booking policies and the cancellation window. A type without a policy is
    closed online; a provider's row overrides the type's (empty: as the type's).

    Example: hpms portal policies show --type "Follow-up" --json
    """
    from hpms.services.scheduling import online

    with service_context(readonly=True) as ctx:
        out = online.show_policies(ctx, type_ref=type_).as_dict()
    _emit_policies(out, as_json)


@policies_app.command("set")
def policies_set(
    type_: Annotated[str | None, typer.Option("--type", help="The appointment type (name or id).")] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="Override the type's policy for this provider only.")
    ] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Open or close the type (or provider) online.")
    ] = None,
    lead_minutes: Annotated[
        int | None, typer.Option("--lead-minutes", help="No online booking sooner than this before a visit (0-43200).")
    ] = None,
    horizon_days: Annotated[
        int | None, typer.Option("--horizon-days", help="No online booking further ahead than this (1-366 days).")
    ] = None,
    daily_cap: Annotated[
        int | None, typer.Option("--daily-cap", help="Online bookings per provider per day (0: no cap).")
    ] = None,
    new_patients_allowed: Annotated[
        bool | None,
        typer.Option("--new-patients/--no-new-patients", help="Whether patients never yet seen may book it online."),
    ] = None,
    cancel_window: Annotated[
        int | None,
        typer.Option("--cancel-window", help="Hours before a visit after which patients cannot cancel or move online."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a type's online booking policy, a provider's override of it, and/or the practice's
    cancellation window (admin). A type's new policy opens it with the defaults for what is
    not given (24 h lead, 60 days ahead, no cap, new patients welcome); a provider's override
    changes only what is given. Nothing is written unless every value is valid.

    Example: hpms portal policies set --type "Follow-up" --lead-minutes 1440 --horizon-days 60 --daily-cap 4
    """
    from hpms.services.scheduling import online

    with service_context() as ctx:
        out = online.set_policy(
            ctx,
            type_ref=type_,
            provider_ref=provider,
            enabled=enabled,
            lead_minutes=lead_minutes,
            horizon_days=horizon_days,
            daily_cap=daily_cap,
            new_patients_allowed=new_patients_allowed,
            cancel_window=cancel_window,
        ).as_dict()
    _emit_policies(out, as_json)


@policies_app.command("clear")
def policies_clear(
    type_: Annotated[str | None, typer.Option("--type", help="The appointment type (name or id).")] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Remove only this provider's override.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a type's online booking policy (the type is then closed online) or a provider's
    override of it (admin). Visits already booked stay.

    Example: hpms portal policies clear --type "Follow-up" --provider Okafor
    """
    from hpms.services.scheduling import online

    with service_context() as ctx:
        out = online.clear_policy(ctx, type_ref=type_, provider_ref=provider).as_dict()
    if as_json:
        print_json(out)
    else:
        whose = f" for {out['provider']}" if out["provider"] else ""
        info(f"removed the online booking policy of {out['type']}{whose}")
