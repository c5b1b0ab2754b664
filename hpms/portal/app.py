"""The Starlette application: one transaction (and one service context, as the user who started
the server) per request.

    POST /hooks/sms/status   the provider's delivery report of a message (Twilio's StatusCallback)
    POST /hooks/sms/inbound  a patient's SMS (Twilio's inbound message webhook); empty TwiML back
    POST /hooks/email/inbound  a patient's email (a mail provider's inbound-parse webhook): the
                             raw message as the body (message/rfc822) or in the form field `email`
    GET  /healthz            "ok": the server is up (for the reverse proxy and systemd)
    GET  /fhir/...           the FHIR read API for other systems (hpms/portal/fhir_api.py)
    /, /code, /home, ...     the patient portal (hpms/portal/pages.py)
    /account, /v/..., /s/... account pages, links in messages, survey (account_pages.py)

The SMS hooks must carry a valid X-Twilio-Signature, made with the account's auth token over
the public URL (the settings' `public_url`, as the provider calls it through the reverse proxy)
and the form's fields. The email hook must carry the settings' `inbound_email_secret` as the
password of HTTP basic auth (any user name), compared in constant time. Anything else is
answered 403 and writes nothing. Every hook takes the same path (`_hook`): check who sent it,
call the service in a transaction of its own, answer its error as an HTTP status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from hpms.config import Settings
    from hpms.errors import HpmsError

log = logging.getLogger("hpms.portal")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
EMAIL_INBOUND_PATH = "/hooks/email/inbound"
MAX_EMAIL_BYTES = 25 * 1024 * 1024  # what the big mail providers take in one message

# What a hook's check gives: the request's payload, or the answer that refuses it.
Verify = Callable[["Request", "Settings"], Awaitable[Any]]
Work = Callable[["Settings", "Mapping[str, str] | None", Any], Any]


async def _hook(
    request: Request,
    cfg: Settings,
    env: Mapping[str, str] | None,
    verify: Verify,
    work: Work,
    answer: Callable[[Any], Response],
) -> Response:
    """The shape of every hook: `verify` reads the request and checks who sent it (a Response
    refuses it), `work` calls the service in a transaction of its own (off the event loop), an
    error of the service becomes its HTTP status, `answer` turns the service's result into the
    response."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response

    from hpms.errors import HpmsError

    payload = await verify(request, cfg)
    if isinstance(payload, Response):
        return payload
    try:
        out = await run_in_threadpool(work, cfg, env, payload)
    except HpmsError as exc:
        return _error(exc)
    return answer(out)


def _replied(text: str, media_type: str) -> Callable[[Any], Response]:
    """The answer to a patient's message: logged by its outcome, `text` back to the provider."""

    def answer(out: Any) -> Response:
        from starlette.responses import Response

        log.info("reply %s: %s%s", out.id, out.outcome, " (a second delivery)" if out.duplicate else "")
        return Response(text, media_type=media_type)

    return answer


def create_app(settings: Settings | Callable[[], Settings], *, env: Mapping[str, str] | None = None) -> Starlette:
    """The application. `settings` is the settings, or a function giving them for each request
    (what a long-running test server serving several databases needs). `env` names the acting
    user as the CLI's environment does (default: the process's)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from hpms.services.messages import sms

    def current() -> Settings:
        return settings() if callable(settings) else settings

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def status(request: Request) -> Response:
        def answer(out: Any) -> Response:
            changed = "" if out.changed else " (no change)"
            log.info("delivery report: message %s is %s%s", out.message_id, out.state, changed)
            return Response(status_code=204)

        return await _hook(request, current(), env, _signed_form, _record_status, answer)

    async def inbound(request: Request) -> Response:
        return await _hook(request, current(), env, _signed_form, _receive, _replied(EMPTY_TWIML, "text/xml"))

    async def inbound_email(request: Request) -> Response:
        return await _hook(request, current(), env, _raw_email, _receive_email, _replied("ok", "text/plain"))

    from starlette.middleware import Middleware

    from hpms.portal import account_pages, fhir_api, intake_pages, pages
    from hpms.portal.kit import Kit
    from hpms.portal.security import SecurityHeaders

    kit = Kit(current, env)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route(sms.STATUS_CALLBACK_PATH, status, methods=["POST"]),
        Route(sms.INBOUND_PATH, inbound, methods=["POST"]),
        Route(EMAIL_INBOUND_PATH, inbound_email, methods=["POST"]),
        *fhir_api.routes(current, env),  # the FHIR read API (hpms/portal/fhir_api.py)
        *pages.routes(kit),  # the patient portal (hpms/portal/pages.py)
        *intake_pages.routes(kit),  # registration and pre-visit forms (hpms/portal/intake_pages.py)
        *account_pages.routes(kit),  # account, statements, links in messages, survey
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])


async def _signed_form(request: Request, cfg: Settings) -> dict[str, str] | Response:
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
    return dict(fields)


async def _raw_email(request: Request, cfg: Settings) -> bytes | Response:
    """The raw email of an inbound-parse webhook when the request carries the shared secret
    (the password of HTTP basic auth), else the 403 answer; a request without an email, the
    400 answer. The body is the message (message/rfc822), or a form holds it in `email`."""
    import base64
    import binascii
    import hmac

    from starlette.datastructures import UploadFile
    from starlette.responses import PlainTextResponse

    if not cfg.inbound_email_secret:
        log.warning("refused an inbound email: inbound_email_secret is not set")
        return PlainTextResponse("inbound email is not set up: the secret cannot be checked", status_code=403)
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    password = ""
    if scheme.lower() == "basic":
        try:
            password = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            password = ""
    if not hmac.compare_digest(password.encode(), cfg.inbound_email_secret.encode()):
        log.warning("refused an inbound email: missing or wrong secret")
        return PlainTextResponse("bad or missing secret (HTTP basic auth)", status_code=403)
    kind = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if int(request.headers.get("Content-Length") or 0) > MAX_EMAIL_BYTES:
        return PlainTextResponse(f"email: larger than {MAX_EMAIL_BYTES // (1024 * 1024)} MB", status_code=413)
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form(max_part_size=MAX_EMAIL_BYTES)
        value = form.get("email")
        if isinstance(value, UploadFile):
            return await value.read()
        if not value:
            return PlainTextResponse("email: the form has no field email holding the message", status_code=400)
        return value.encode("utf-8", "surrogateescape")
    if kind not in ("message/rfc822", "text/plain", ""):
        said = f"the body is {kind}: send the message as message/rfc822 or in the form field email"
        return PlainTextResponse(said, status_code=415)
    return await request.body()


def _public_url(request: Request, cfg: Settings) -> str:
    """The URL the provider called (and signed): `public_url` and the path, else the URL as
    this server received it."""
    base = cfg.public_url or f"{request.url.scheme}://{request.url.netloc}"
    query = request.url.query
    return base.rstrip("/") + request.url.path + (f"?{query}" if query else "")


def _receive_email(cfg: Settings, env: Mapping[str, str] | None, raw: bytes) -> Any:
    from hpms.services.messages import inbound
    from hpms.services.platform.context import open_context

    incoming = inbound.email_from_bytes(raw, field="email")
    with open_context(cfg, env=env) as ctx:
        return inbound.receive(ctx, incoming)


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


def http_status(exc: HpmsError) -> int:
    """The HTTP status of a service's error (by its kind); 500 for the environment's."""
    from hpms.errors import ErrorKind

    return {
        ErrorKind.VALIDATION: 400,
        ErrorKind.NOT_FOUND: 404,
        ErrorKind.CONFLICT: 409,
        ErrorKind.PERMISSION: 403,
        ErrorKind.LOCKED: 503,
    }.get(exc.kind, 500)


def _error(exc: HpmsError) -> Response:
    """A service's error as an HTTP status and one plain line."""
    from starlette.responses import PlainTextResponse

    status = http_status(exc)
    field = FORM_FIELDS.get(exc.field or "", exc.field)
    text = f"{field}: {exc.message}" if field else exc.message
    if status >= 500 or status == 403:
        log.error("callback failed: %s", text)
    return PlainTextResponse(text, status_code=status)
