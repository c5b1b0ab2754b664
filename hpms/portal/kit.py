"""What every page module of the portal shares: running a service in one transaction, rendering
a template with the CSRF token, the CSRF check of every form (`posted`), acting as the signed-in
patient (`patient_call`), and the pages for refusals and failures.

A page module defines `routes(kit) -> list[BaseRoute]` and is listed in hpms/portal/app.py."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpms.portal import security

if TYPE_CHECKING:
    import jinja2
    from starlette.requests import Request
    from starlette.responses import Response

    from hpms.config import Settings
    from hpms.errors import HpmsError

log = logging.getLogger("hpms.portal")
HERE = Path(__file__).parent
SESSION, PENDING = "hpms_session", "hpms_signin"
NOT_IN = object()  # what patient_call answers when nobody is signed in
JUST_TAKEN = "That time was just taken. Here are other times open online."
CANNOT_MOVE = "This visit cannot be moved online"

Handler = Callable[["Request", "Settings", dict[str, str]], Awaitable["Response"]]


@functools.cache
def templates() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        auto_reload=False,  # the templates ship with the code: compiled once, not checked on disk per page
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class Kit:
    """The portal's shared request plumbing; `current` gives the settings of each request."""

    NOT_IN = NOT_IN

    def __init__(self, current: Callable[[], Settings], env: Mapping[str, str] | None) -> None:
        self.current = current
        self.env = env

    def run(self, cfg: Settings, fn: Callable[..., Any], **kw: Any) -> Any:
        """`fn(ctx, **kw)` in one transaction, as the user who runs the server."""
        from hpms.services.platform.context import open_context

        with open_context(cfg, env=self.env) as ctx:
            return fn(ctx, **kw)

    async def call(self, cfg: Settings, fn: Callable[..., Any], **kw: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(self.run, cfg, fn, **kw)

    def page(self, request: Request, cfg: Settings, name: str, status: int = 200, **values: Any) -> Response:
        from starlette.responses import HTMLResponse

        token, new = security.csrf_token(request, cfg)
        html = templates().get_template(name).render(csrf=token, csrf_field=security.CSRF_FIELD, **values)
        response = HTMLResponse(html, status_code=status)
        if new:
            security.set_cookie(response, cfg, "hpms_csrf", token)
        return response

    @staticmethod
    def redirect(to: str) -> Response:
        from starlette.responses import RedirectResponse

        return RedirectResponse(to, status_code=303)

    def message(self, request: Request, cfg: Settings, status: int, title: str, text: str) -> Response:
        return self.page(request, cfg, "message.html", status, title=title, message=text)

    def failed(self, request: Request, cfg: Settings, exc: HpmsError) -> Response:
        from hpms.errors import ErrorKind

        status = 403 if exc.kind == ErrorKind.PERMISSION else 500
        log.error("portal request failed: %s", exc)
        return self.page(request, cfg, "error.html", status, title="Something went wrong", message=plain(status))

    def refused(self, request: Request, cfg: Settings, exc: HpmsError, title: str) -> Response:
        """A conflict the patient can read: the service's message and its hint, as 409."""
        return self.message(request, cfg, 409, title, refusal(exc))

    async def moving(
        self,
        request: Request,
        cfg: Settings,
        attempt: Awaitable[Any],
        *,
        gone: Callable[[], Response],
        refuse: Callable[[HpmsError, str], Response],
        times: Mapping[str, Any] | None = None,
    ) -> Any:
        """The answer of a patient's step in moving a visit (its open times, or the move), or the
        Response that says why not, mapped once for every page that moves a visit: a time just
        taken lists the other open times (the times page with `times`' action and hidden
        fields, 409), a visit not found is `gone()`, a move the practice's rules refuse is
        `refuse(exc, title)`, anything else the failure page."""
        from hpms.errors import ConflictError, HpmsError, NotFoundError, SlotTaken, ValidationError

        try:
            return await attempt
        except SlotTaken as exc:
            return self.page(
                request, cfg, "times.html", 409, slots=exc.alternatives, notice=JUST_TAKEN, **dict(times or {})
            )
        except NotFoundError as exc:
            return gone() if exc.field == "appointment" else refuse(exc, CANNOT_MOVE)
        except (ConflictError, ValidationError) as exc:
            return refuse(exc, CANNOT_MOVE)
        except HpmsError as exc:
            return self.failed(request, cfg, exc)

    async def form(self, request: Request, cfg: Settings) -> dict[str, str] | Response:
        """The form's fields when it carries the browser's CSRF token, else the 403 page."""
        data = await request.form()
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
        if not security.csrf_ok(request, cfg, fields.get(security.CSRF_FIELD)):
            log.warning("refused a form post to %s: missing or wrong CSRF token", request.url.path)
            return self.page(
                request,
                cfg,
                "error.html",
                403,
                title="This form has expired",
                message="The page was open too long, or came from elsewhere. Nothing was changed.",
            )
        return fields

    def posted(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A form's endpoint: `handler` gets the settings and the fields once the CSRF token is
        right; a post without it gets the 403 page and reaches no service."""

        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            cfg = self.current()
            fields = await self.form(request, cfg)
            if not isinstance(fields, dict):
                return fields
            return await handler(request, cfg, fields)

        return endpoint

    @staticmethod
    def client(request: Request) -> str:
        return request.client.host if request.client else "-"

    @staticmethod
    def session_token(request: Request, cfg: Settings) -> str | None:
        return security.cookie(request, cfg, SESSION)

    async def signed_in(self, request: Request, cfg: Settings) -> bool:
        from hpms.services.portal import access

        return bool(await self.call(cfg, access.signed_in, token=self.session_token(request, cfg)))

    async def patient_call(self, request: Request, cfg: Settings, fn: Callable[..., Any], **kw: Any) -> Any:
        """`fn` run as the patient the session acts for (NOT_IN when not signed in)."""
        return await self.call(cfg, _as_signed_in, token=self.session_token(request, cfg), service=fn, kw=kw)


def _as_signed_in(ctx: Any, *, token: str | None, service: Callable[..., Any], kw: dict[str, Any]) -> Any:
    from hpms.services.portal import access

    pctx = access.with_patient(ctx, token=token)
    if pctx is None:
        return NOT_IN
    return service(pctx, **kw)


def sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else text


def refusal(exc: HpmsError) -> str:
    """A refusal as the patient reads it: the service's message, then its hint."""
    hint = getattr(exc, "hint", None) or ""
    return say(exc) + (f" {sentence(hint)}" if hint else "")


def say(exc: HpmsError) -> str:
    """A service's validation message as the form says it, under its field."""
    return sentence(exc.message)


def plain(status: int) -> str:
    if status == 403:
        return "The portal is not set up to sign patients in. Please call the practice."
    return "The portal could not answer. Please try again later, or call the practice."
