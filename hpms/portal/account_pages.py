"""The portal's account pages and the pages that signed links in messages open.

    GET  /account            signed in: balance, statements, past visits (of the patient acted for)
    POST /statements/open    one of those statements, as the file that was sent (id in the form)
    GET  /v/{token}          one visit to come, from a reminder's link: cancel or choose another time
    POST /v/cancel           cancel that visit (the online booking's window and rules)
    POST /v/reschedule, /v/reschedule/confirm  the open times for it, then move it
    GET  /s/{token}          a completed visit's satisfaction survey (score 1-5, comment)
    POST /s                  record the answer (once per visit)

A link's token is its only key: a bad, altered or expired one gets the same 404 page. Every
POST carries the CSRF token and the link's token in the form."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpms.portal.kit import Kit, refusal, say

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from hpms.config import Settings

EXPIRED = ("This link has expired", "The link is no longer valid. Please call the practice, or sign in to the portal.")
STATUSES = {"completed": "Seen", "no_show": "Missed", "cancelled": "Cancelled", "arrived": "Checked in"}
LINK_NOTICES = {"cancelled": "Your visit is cancelled.", "moved": "Your visit has been moved."}


def routes(kit: Kit) -> list[BaseRoute]:
    """The account, statement, visit-link and survey pages."""
    from starlette.responses import Response
    from starlette.routing import Route

    from hpms.errors import ConflictError, HpmsError, NotFoundError, ValidationError

    current, call, page, redirect, failed = kit.current, kit.call, kit.page, kit.redirect, kit.failed
    posted, patient_call = kit.posted, kit.patient_call

    def public(request: Request, cfg: Settings, status: int, title: str, text: str) -> Response:
        return page(request, cfg, "message.html", status, title=title, message=text, public=True)

    def expired(request: Request, cfg: Settings) -> Response:
        return public(request, cfg, 404, *EXPIRED)

    # ---- the account -------------------------------------------------------------------------

    async def account_page(request: Request) -> Response:
        from hpms.services.portal import account

        cfg = current()
        try:
            out = await patient_call(request, cfg, account.account)
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out is kit.NOT_IN:
            return redirect("/")
        return page(request, cfg, "account.html", account=out, statuses=STATUSES)

    @posted
    async def open_statement(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from starlette.responses import Response

        from hpms.services.portal import account

        try:
            out = await patient_call(request, cfg, account.statement, statement_id=fields.get("statement", ""))
        except NotFoundError:
            return kit.message(request, cfg, 404, "Statement not found", "There is no such statement.")
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out is kit.NOT_IN:
            return redirect("/")
        disposition = f'inline; filename="statement-{out.number}.{out.filename.rsplit(".", 1)[-1]}"'
        return Response(out.content, media_type=out.content_type, headers={"Content-Disposition": disposition})

    # ---- a visit's link ------------------------------------------------------------------------

    async def opened(request: Request, service: Any) -> tuple[Settings, str, Any] | Response:
        """What the link in the address opens (`service`), or the page that says why not."""
        cfg = current()
        token = request.path_params["token"]
        try:
            found = await call(cfg, service, token=token)
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if found is None:
            return expired(request, cfg)
        return cfg, token, found

    async def visit_page(request: Request) -> Response:
        from hpms.services.portal import linked

        got = await opened(request, linked.manage)
        if not isinstance(got, tuple):
            return got
        cfg, token, found = got
        return page(request, cfg, "visit.html", visit=found.visit, token=token)

    async def by_link(cfg: Settings, fields: dict[str, str], service: Any, **kw: Any) -> Any:
        from hpms.services.portal import linked

        return await call(cfg, linked.manage_call, token=fields.get("token", ""), service=service, **kw)

    @posted
    async def link_cancel(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.scheduling import online

        try:
            out = await by_link(cfg, fields, online.cancel_online)
        except NotFoundError:
            return expired(request, cfg)
        except ConflictError as exc:
            return refused_public(request, cfg, exc, "This visit cannot be cancelled online")
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out is None:
            return expired(request, cfg)
        return public(request, cfg, 200, "Visit cancelled", LINK_NOTICES["cancelled"])

    def refused_public(request: Request, cfg: Settings, exc: HpmsError, title: str) -> Response:
        """The service's refusal and its hint, as Kit.refused says it, on a page without a sign-in."""
        return public(request, cfg, 409, title, refusal(exc))

    def moving(request: Request, cfg: Settings, attempt: Any, times: dict[str, Any] | None = None) -> Any:
        def gone() -> Response:
            return expired(request, cfg)

        def refuse(exc: HpmsError, title: str) -> Response:
            return refused_public(request, cfg, exc, title)

        return kit.moving(request, cfg, attempt, gone=gone, refuse=refuse, times=times)

    @posted
    async def link_times(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.portal import linked

        token = fields.get("token", "")
        out = await moving(request, cfg, by_link(cfg, fields, linked.times))
        if isinstance(out, Response):
            return out
        if out is None:
            return expired(request, cfg)
        return page(
            request,
            cfg,
            "times.html",
            slots=out,
            action="/v/reschedule/confirm",
            hidden={"token": token},
            notice=None,
            link=f"/v/{token}",
        )

    @posted
    async def link_move(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.scheduling import online

        token = fields.get("token", "")
        attempt = by_link(
            cfg,
            fields,
            online.reschedule_online,
            start=fields.get("start", ""),
            provider=fields.get("slot_provider") or None,
        )
        times = {"action": "/v/reschedule/confirm", "hidden": {"token": token}, "link": f"/v/{token}"}
        out = await moving(request, cfg, attempt, times=times)
        if isinstance(out, Response):
            return out
        if out is None:
            return expired(request, cfg)
        return public(request, cfg, 200, "Visit moved", LINK_NOTICES["moved"])

    # ---- the survey --------------------------------------------------------------------------

    def answered(request: Request, cfg: Settings) -> Response:
        return public(
            request, cfg, 409, "Already answered", "Thank you: this visit's survey has been answered already."
        )

    def survey_form(
        request: Request, cfg: Settings, found: Any, token: str, values: dict[str, str], errors: dict[str, str]
    ) -> Response:
        status = 400 if errors else 200
        return page(request, cfg, "survey.html", status, visit=found.visit, token=token, values=values, errors=errors)

    async def survey_page(request: Request) -> Response:
        from hpms.services.portal import linked

        got = await opened(request, linked.survey)
        if not isinstance(got, tuple):
            return got
        cfg, token, found = got
        if found.answered:
            return answered(request, cfg)
        return survey_form(request, cfg, found, token, {}, {})

    @posted
    async def survey_answer(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.portal import linked

        token = fields.get("token", "")
        values = {"score": fields.get("score", "").strip(), "comment": fields.get("comment", "")}
        try:
            out = await call(cfg, linked.answer, token=token, score=values["score"], comment=values["comment"])
        except ValidationError as exc:
            found = await call(cfg, linked.survey, token=token)
            if found is None:
                return expired(request, cfg)
            field = exc.field if exc.field in ("score", "comment") else "score"
            return survey_form(request, cfg, found, token, values, {field: say(exc)})
        except ConflictError:
            return answered(request, cfg)
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out is None:
            return expired(request, cfg)
        return public(request, cfg, 200, "Thank you", "Your answer has been recorded. Thank you for telling us.")

    return [
        Route("/account", account_page, methods=["GET"]),
        Route("/statements/open", open_statement, methods=["POST"]),
        Route("/v/cancel", link_cancel, methods=["POST"]),
        Route("/v/reschedule", link_times, methods=["POST"]),
        Route("/v/reschedule/confirm", link_move, methods=["POST"]),
        Route("/v/{token}", visit_page, methods=["GET"]),
        Route("/s", survey_answer, methods=["POST"]),
        Route("/s/{token}", survey_page, methods=["GET"]),
    ]
