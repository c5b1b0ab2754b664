"""The portal's registration and pre-visit forms: what patients send is staged for the front desk
(hpms/services/portal/intake.py), never written straight into the chart.

    GET  /register  a new patient's registration form (no sign-in)
    POST /register  stage it (multipart: the form and the insurance card photos), or the form
                    again with the field's message (400); too many from one address: 429
    GET  /intake    signed in: the pre-visit form for one of the visits to come
    POST /intake    stage it; a visit that is not the patient's: 404

A body larger than two photos at the cap is refused before it is read (413); a photo over the
cap or of another type brings the form back with the message under it. Every post carries the
CSRF token; no patient data goes in a URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpms.portal.kit import Kit, say

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from hpms.config import Settings

THROTTLED = "Too many forms from this network. Wait 15 minutes, then try again."
SLACK = 256 * 1024  # what a body may hold besides the two photos: the fields and the multipart framing


def routes(kit: Kit) -> list[BaseRoute]:
    """The registration and pre-visit form pages."""
    from starlette.datastructures import UploadFile
    from starlette.routing import Route

    from hpms.errors import HpmsError, NotFoundError, ValidationError
    from hpms.services.portal.intake import FORM_FIELDS

    current, page, failed, redirect, client = kit.current, kit.page, kit.failed, kit.redirect, kit.client

    def too_large(request: Request, cfg: Settings) -> Response | None:
        """The 413 page when the body is larger than two photos at the cap, before it is read."""
        try:
            size = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            size = 0
        if size <= 2 * cfg.portal_upload_mb * 1024 * 1024 + SLACK:
            return None
        text = f"Each photo may be at most {cfg.portal_upload_mb} MB. Nothing was sent."
        return page(request, cfg, "register_message.html", 413, title="The photos are too large", message=text)

    async def uploads(request: Request) -> list[Any]:
        from hpms.services.portal import intake

        form = await request.form()  # parsed once already by the CSRF check: this is the same one
        out = []
        for side in intake.SIDES:
            f = form.get(f"card_{side}")
            if isinstance(f, UploadFile):
                out.append(intake.Upload(side, await f.read()))
        return out

    def values_of(fields: dict[str, str]) -> dict[str, str]:
        return {k: fields.get(k, "") for k in FORM_FIELDS}

    def error_of(exc: ValidationError) -> dict[str, str]:
        return {exc.field if exc.field in FORM_FIELDS else "first_name": say(exc)}

    def register_form(request: Request, cfg: Settings, values: dict[str, str], errors: dict[str, str]) -> Response:
        status = 400 if errors else 200
        return page(request, cfg, "register.html", status, values=values, errors=errors, cap=cfg.portal_upload_mb)

    async def register_start(request: Request) -> Response:
        return register_form(request, current(), {}, {})

    @kit.posted
    async def register_checked(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.portal import intake

        values = values_of(fields)
        try:
            out = await kit.call(
                cfg, intake.register_online, form=dict(values), uploads=await uploads(request), client=client(request)
            )
        except ValidationError as exc:
            return register_form(request, cfg, values, error_of(exc))
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out.throttled:
            return page(
                request, cfg, "register.html", 429, values=values, errors={}, cap=cfg.portal_upload_mb, notice=THROTTLED
            )
        return page(
            request,
            cfg,
            "register_message.html",
            title="Thank you",
            message="The practice has your details and will contact you to confirm them before your first visit.",
        )

    async def register(request: Request) -> Response:
        return too_large(request, current()) or await register_checked(request)

    async def visits_of(request: Request, cfg: Settings) -> Any:
        from hpms.services.scheduling import online

        return await kit.patient_call(request, cfg, online.my_visits)

    def intake_form(
        request: Request, cfg: Settings, visits: Any, values: dict[str, str], errors: dict[str, str]
    ) -> Response:
        status = 400 if errors else 200
        return page(
            request,
            cfg,
            "intake_form.html",
            status,
            visits=visits,
            values=values,
            errors=errors,
            cap=cfg.portal_upload_mb,
        )

    async def intake_start(request: Request) -> Response:
        cfg = current()
        try:
            visits = await visits_of(request, cfg)
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if visits is kit.NOT_IN:
            return redirect("/")
        return intake_form(request, cfg, visits, {}, {})

    @kit.posted
    async def intake_checked(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.portal import intake

        values = {**values_of(fields), "appointment": fields.get("appointment", "")}
        try:
            out = await kit.patient_call(
                request,
                cfg,
                intake.submit_intake,
                appointment=values["appointment"],
                form=values_of(fields),
                uploads=await uploads(request),
            )
        except NotFoundError:
            return page(
                request, cfg, "message.html", 404, title="Visit not found", message="There is no such visit to come."
            )
        except ValidationError as exc:
            try:
                visits = await visits_of(request, cfg)
            except HpmsError as again:
                return failed(request, cfg, again)
            return intake_form(request, cfg, visits, values, error_of(exc))
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out is kit.NOT_IN:
            return redirect("/")
        return page(
            request,
            cfg,
            "message.html",
            title="Thank you",
            message="The practice will check your answers before your visit.",
        )

    async def intake_post(request: Request) -> Response:
        return too_large(request, current()) or await intake_checked(request)

    return [
        Route("/register", register_start, methods=["GET"]),
        Route("/register", register, methods=["POST"]),
        Route("/intake", intake_start, methods=["GET"]),
        Route("/intake", intake_post, methods=["POST"]),
    ]
