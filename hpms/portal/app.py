"""The Starlette application: one transaction (and one service context, as the user who started
the server) per request.

    POST /hooks/sms/status   the provider's delivery report of a message (Twilio's StatusCallback)
    POST /hooks/sms/inbound  a patient's SMS (Twilio's inbound message webhook); empty TwiML back
    GET  /healthz            "ok": the server is up (for the reverse proxy and systemd)
    /, /code, /home, ...     the patient portal (hpms/portal/pages.py)

Both hooks must carry a valid X-Twilio-Signature, made with the account's auth token over the
public URL (the settings' `public_url`, as the provider calls it through the reverse proxy)
and the form's fields; anything else is answered 403 and writes nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from hpms.config import Settings
    from hpms.errors import HpmsError

log = logging.getLogger("hpms.portal")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def create_app(settings: Settings | Callable[[], Settings], *, env: Mapping[str, str] | None = None) -> Starlette:
    """The application. `settings` is the settings, or a function giving them for each request
    (what a long-running test server serving several databases needs). `env` names the acting
    user as the CLI's environment does (default: the process's)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from hpms.errors import HpmsError
    from hpms.services.messages import sms

    def current() -> Settings:
        return settings() if callable(settings) else settings

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def status(request: Request) -> Response:
        cfg = current()
        form = await _signed_form(request, cfg)
        if isinstance(form, Response):
            return form
        fields = dict(form)
        try:
            out = await run_in_threadpool(_record_status, cfg, env, fields)
        except HpmsError as exc:
            return _error(exc)
        log.info(
            "delivery report: message %s is %s%s", out.message_id, out.state, "" if out.changed else " (no change)"
        )
        return Response(status_code=204)

    async def inbound(request: Request) -> Response:
        cfg = current()
        form = await _signed_form(request, cfg)
        if isinstance(form, Response):
            return form
        fields = dict(form)
        try:
            out = await run_in_threadpool(_receive, cfg, env, fields)
        except HpmsError as exc:
            return _error(exc)
        log.info("reply %s: %s%s", out.id, out.outcome, " (a second delivery)" if out.duplicate else "")
        return Response(EMPTY_TWIML, media_type="text/xml")

    from starlette.middleware import Middleware

    from hpms.portal import pages
    from hpms.portal.security import SecurityHeaders

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route(sms.STATUS_CALLBACK_PATH, status, methods=["POST"]),
        Route(sms.INBOUND_PATH, inbound, methods=["POST"]),
        *pages.routes(current, env),  # the patient portal (hpms/portal/pages.py)
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])


async def _signed_form(request: Request, cfg: Settings) -> list[tuple[str, str]] | Response:
    """The form's fields when the request carries the provider's valid signature, else the 403
    answer."""
    from starlette.responses import PlainTextResponse

    from hpms.errors import ValidationError
    from hpms.services.messages.sms import parse_sms_url, signature_ok

    try:
        provider = parse_sms_url(cfg.sms_url)
    except ValidationError as exc:
        log.warning("refused a callback: the signature cannot be checked (%s: %s)", exc.field, exc.message)
        return PlainTextResponse("the SMS provider is not set up: the signature cannot be checked", status_code=403)
    form = await request.form()
    fields = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    if not signature_ok(provider, _public_url(request, cfg), fields, request.headers.get("X-Twilio-Signature")):
        log.warning("refused a callback to %s: missing or wrong X-Twilio-Signature", request.url.path)
        return PlainTextResponse("bad or missing X-Twilio-Signature", status_code=403)
    return fields


def _public_url(request: Request, cfg: Settings) -> str:
    """The URL the provider called (and signed): `public_url` and the path, else the URL as
    this server received it."""
    base = cfg.public_url or f"{request.url.scheme}://{request.url.netloc}"
    query = request.url.query
    return base.rstrip("/") + request.url.path + (f"?{query}" if query else "")


def _record_status(cfg: Settings, env: Mapping[str, str] | None, fields: dict[str, str]) -> Any:
    from hpms.services.messages import delivery
    from hpms.services.platform.context import open_context

    sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
    with open_context(cfg, env=env) as ctx:
        return delivery.record_status(
            ctx,
            sid,
            fields.get("MessageStatus") or fields.get("SmsStatus") or "",
            error_code=fields.get("ErrorCode") or None,
            error_text=fields.get("ErrorMessage") or None,
        )


def _receive(cfg: Settings, env: Mapping[str, str] | None, fields: dict[str, str]) -> Any:
    from hpms.services.messages import inbound
    from hpms.services.platform.context import open_context

    incoming = inbound.sms_from_fields(fields, field="form")
    with open_context(cfg, env=env) as ctx:
        return inbound.receive(ctx, incoming)


# The fields the services name, as the provider's form calls them.
FORM_FIELDS = {"provider_id": "MessageSid", "status": "MessageStatus"}


def _error(exc: HpmsError) -> Response:
    """A service's error as an HTTP status and one plain line."""
    from starlette.responses import PlainTextResponse

    from hpms.errors import ErrorKind

    status = {
        ErrorKind.VALIDATION: 400,
        ErrorKind.NOT_FOUND: 404,
        ErrorKind.CONFLICT: 409,
        ErrorKind.PERMISSION: 403,
        ErrorKind.LOCKED: 503,
    }.get(exc.kind, 500)
    field = FORM_FIELDS.get(exc.field or "", exc.field)
    text = f"{field}: {exc.message}" if field else exc.message
    if status >= 500 or status == 403:
        log.error("callback failed: %s", text)
    return PlainTextResponse(text, status_code=status)
