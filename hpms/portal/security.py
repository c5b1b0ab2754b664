"""What every answer of the web server carries (security headers) and what every form of the
portal must carry (a CSRF token, double-submitted: a cookie and the same value in the form)."""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from hpms.config import Settings

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
NO_STORE = (b"cache-control", b"no-store")
CSRF_FIELD = "csrf"


class SecurityHeaders:
    """ASGI middleware: the headers above on every answer, and `Cache-Control: no-store` on all
    but the static files (the pages may show patient data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control" or static]
                headers += HEADERS
                if not static:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def cookie_name(cfg: Settings, name: str) -> str:
    """Behind TLS, the `__Host-` prefix: the browser keeps the cookie only when it is Secure, for
    the whole site and this host alone (no sub-domain can plant one)."""
    return f"__Host-{name}" if cfg.portal_behind_tls else name


def set_cookie(response: Response, cfg: Settings, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(
        cookie_name(cfg, name),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=cfg.portal_behind_tls,
    )


def clear_cookie(response: Response, cfg: Settings, name: str) -> None:
    response.delete_cookie(
        cookie_name(cfg, name), path="/", httponly=True, samesite="lax", secure=cfg.portal_behind_tls
    )


def cookie(request: Request, cfg: Settings, name: str) -> str | None:
    return request.cookies.get(cookie_name(cfg, name)) or None


def csrf_token(request: Request, cfg: Settings) -> tuple[str, bool]:
    """The browser's CSRF token, and whether it is new (to be set as a cookie)."""
    have = cookie(request, cfg, "hpms_csrf")
    if have and len(have) >= 32:
        return have, False
    return secrets.token_urlsafe(32), True


def csrf_ok(request: Request, cfg: Settings, submitted: object) -> bool:
    """That the form carries the token of the browser's cookie (a page of another site can
    neither read the cookie nor guess it)."""
    have = cookie(request, cfg, "hpms_csrf")
    if not have or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(have.encode(), submitted.encode())
