"""The patient portal's pages: server-rendered HTML forms that work without JavaScript.

    GET  /          sign-in form (email address or mobile number, date of birth)
    POST /          ask for a sign-in code; the same answer whether or not anyone matched
    GET  /code      the form for the code
    POST /code      sign in with the code
    GET  /home      signed in: who, the visits to come, whom one may act for
    POST /switch    act for another patient one may act for (or oneself)
    POST /signout   end the session
    GET  /book      the booking form (type, location, provider or first available, a start day)
    POST /book/search  the times open online, in the location's zone, each a form to book it
    POST /book      book one of those times, then back to /home
    POST /visit/cancel, /visit/cancel/confirm        cancel a visit to come (asked first)
    POST /visit/reschedule, /visit/reschedule/confirm  the open times for a visit, then move it

Every POST carries the CSRF token (else 403, nothing written); no patient data goes in a URL.
One transaction per request, as the user who runs the server; the services act as the patient."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpms.portal import security
from hpms.portal.kit import HERE, JUST_TAKEN, PENDING, SESSION, Kit, say, sentence

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from hpms.config import Settings

THROTTLED = "Too many attempts from this network. Wait 15 minutes, then try again."
PENDING_SECONDS = 15 * 60
# The services' fields, as the forms name them
FIELDS = {"contact": "contact", "dob": "dob", "code": "code", "patient": "patient"}
BOOK_FIELDS = ("type", "location", "provider", "start_date")
NOTICES = {
    "booked": "Your visit is booked.",
    "cancelled": "Your visit is cancelled.",
    "moved": "Your visit has been moved.",
}


def routes(kit: Kit) -> list[BaseRoute]:
    """The sign-in, home and booking pages."""
    from starlette.responses import Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from hpms.errors import ConflictError, HpmsError, NotFoundError, SlotTaken, ValidationError

    current, call, page, redirect, failed = kit.current, kit.call, kit.page, kit.redirect, kit.failed
    posted, client, patient_call, refused = kit.posted, kit.client, kit.patient_call, kit.refused

    def moving(request: Request, cfg: Settings, attempt: Any, times: dict[str, Any] | None = None) -> Any:
        def gone() -> Response:
            return not_found(request, cfg)

        def refuse(exc: HpmsError, title: str) -> Response:
            return refused(request, cfg, exc, title)

        return kit.moving(request, cfg, attempt, gone=gone, refuse=refuse, times=times)

    async def sign_in_form(request: Request) -> Response:
        from hpms.services.portal import access

        cfg = current()
        token = security.cookie(request, cfg, SESSION)
        try:
            if token and await call(cfg, access.signed_in, token=token):
                return redirect("/home")
        except HpmsError as exc:
            return failed(request, cfg, exc)
        return page(request, cfg, "signin.html", values={}, errors={})

    @posted
    async def sign_in(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.portal import access

        values = {"contact": fields.get("contact", ""), "dob": fields.get("dob", "")}
        try:
            out = await call(
                cfg, access.start_sign_in, contact=values["contact"], dob=values["dob"], client=client(request)
            )
        except ValidationError as exc:
            return page(
                request, cfg, "signin.html", 400, values=values, errors={FIELDS.get(exc.field or "", ""): say(exc)}
            )
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out.throttled:
            return page(request, cfg, "signin.html", 429, values=values, errors={}, notice=THROTTLED)
        response = redirect("/code")
        security.set_cookie(response, cfg, PENDING, out.challenge, max_age=PENDING_SECONDS)
        return response

    async def code_form(request: Request) -> Response:
        cfg = current()
        if not security.cookie(request, cfg, PENDING):
            return redirect("/")
        return page(request, cfg, "code.html", errors={})

    @posted
    async def code(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.portal import access

        challenge = security.cookie(request, cfg, PENDING)
        try:
            out = await call(
                cfg, access.check_code, challenge=challenge, code=fields.get("code", ""), client=client(request)
            )
        except ValidationError as exc:
            return page(request, cfg, "code.html", 400, errors={"code": say(exc)})
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out.throttled:
            return page(request, cfg, "code.html", 429, errors={}, notice=THROTTLED)
        if out.token is None:
            return page(request, cfg, "code.html", 400, errors={"code": sentence(out.message or "")})
        response = redirect("/home")
        security.clear_cookie(response, cfg, PENDING)
        security.set_cookie(response, cfg, SESSION, out.token)
        return response

    async def home(request: Request) -> Response:
        from hpms.services.portal import access

        cfg = current()
        try:
            out = await call(cfg, access.home, token=security.cookie(request, cfg, SESSION))
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out is None:
            response = redirect("/")
            security.clear_cookie(response, cfg, SESSION)
            return response
        return page(request, cfg, "home.html", home=out, notice=NOTICES.get(request.query_params.get("done", "")))

    @posted
    async def switch(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.portal import access

        token = security.cookie(request, cfg, SESSION)
        try:
            ok = await call(cfg, access.switch, token=token, patient_id=fields.get("patient"))
        except ValidationError as exc:
            return page(request, cfg, "error.html", 400, title="Choose someone", message=say(exc))
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if ok is None:
            return redirect("/")
        if not ok:
            text = "There is no such person among those you act for."
            return page(request, cfg, "message.html", 404, title="Not found", message=text)
        return redirect("/home")

    @posted
    async def sign_out(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.portal import access

        try:
            await call(cfg, access.sign_out, token=security.cookie(request, cfg, SESSION))
        except HpmsError as exc:
            return failed(request, cfg, exc)
        response = redirect("/")
        security.clear_cookie(response, cfg, SESSION)
        return response

    def not_found(request: Request, cfg: Settings) -> Response:
        return page(
            request, cfg, "message.html", 404, title="Visit not found", message="There is no such visit to come."
        )

    def book_form(
        request: Request, cfg: Settings, choices: Any, values: dict[str, str], errors: dict[str, str]
    ) -> Response:
        status = 400 if errors else 200
        return page(request, cfg, "book.html", status, choices=choices, values=values, errors=errors)

    async def choices_of(cfg: Settings) -> Any:
        from hpms.services.portal import access

        return await call(cfg, access.booking_choices)

    async def book_start(request: Request) -> Response:
        from hpms.services.portal import access

        cfg = current()
        try:
            if not await call(cfg, access.signed_in, token=security.cookie(request, cfg, SESSION)):
                return redirect("/")
            choices = await choices_of(cfg)
        except HpmsError as exc:
            return failed(request, cfg, exc)
        return book_form(request, cfg, choices, {}, {})

    @posted
    async def book_search(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.scheduling import online

        values = {k: fields.get(k, "").strip() for k in BOOK_FIELDS}
        missing = {k: "Is required." for k in ("type", "location", "start_date") if not values[k]}
        try:
            if missing:
                return book_form(request, cfg, await choices_of(cfg), values, missing)
            out = await patient_call(
                request,
                cfg,
                online.open_slots,
                type=values["type"],
                location=values["location"],
                provider=values["provider"] or None,
                start_date=values["start_date"],
            )
        except (ValidationError, NotFoundError) as exc:
            field = exc.field if exc.field in BOOK_FIELDS else "type"
            return book_form(request, cfg, await choices_of(cfg), values, {field: say(exc)})
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out is kit.NOT_IN:
            return redirect("/")
        return page(request, cfg, "times.html", slots=out, action="/book", hidden=values, notice=None)

    @posted
    async def book(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.scheduling import online

        values = {k: fields.get(k, "").strip() for k in BOOK_FIELDS}
        try:
            out = await patient_call(
                request,
                cfg,
                online.book_online,
                type=values["type"],
                location=values["location"],
                provider=fields.get("slot_provider", ""),
                start=fields.get("start", ""),
            )
        except SlotTaken as exc:
            return page(
                request,
                cfg,
                "times.html",
                409,
                slots=exc.alternatives,
                action="/book",
                hidden=values,
                notice=JUST_TAKEN,
            )
        except (ValidationError, NotFoundError) as exc:
            field = exc.field if exc.field in BOOK_FIELDS else "type"
            return book_form(request, cfg, await choices_of(cfg), values, {field: say(exc)})
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out is kit.NOT_IN:
            return redirect("/")
        return redirect("/home?done=booked")

    def own_visit(ctx: Any, *, appointment: str) -> Any:
        from hpms.services.scheduling import online

        return next((v for v in online.my_visits(ctx) if str(v.id) == appointment.strip()), None)

    def visit_and_times(ctx: Any, *, appointment: str) -> Any:
        from hpms.services.scheduling import online

        visit = own_visit(ctx, appointment=appointment)
        if visit is None:
            return None
        slots = online.open_slots(ctx, type=visit.type_id, location=visit.location_id, provider=visit.provider_id)
        return visit, [s for s in slots if s.start != visit.start]

    @posted
    async def cancel_ask(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        try:
            out = await patient_call(request, cfg, own_visit, appointment=fields.get("appointment", ""))
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out is kit.NOT_IN:
            return redirect("/")
        if out is None:
            return not_found(request, cfg)
        return page(request, cfg, "cancel.html", visit=out)

    @posted
    async def cancel(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.scheduling import online

        try:
            out = await patient_call(request, cfg, online.cancel_online, appointment_id=fields.get("appointment", ""))
        except NotFoundError:
            return not_found(request, cfg)
        except ConflictError as exc:
            return refused(request, cfg, exc, "This visit cannot be cancelled online")
        except HpmsError as exc:
            return failed(request, cfg, exc)
        if out is kit.NOT_IN:
            return redirect("/")
        return redirect("/home?done=cancelled")

    @posted
    async def reschedule_times(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        appointment = fields.get("appointment", "")
        out = await moving(request, cfg, patient_call(request, cfg, visit_and_times, appointment=appointment))
        if isinstance(out, Response):
            return out
        if out is kit.NOT_IN:
            return redirect("/")
        if out is None:
            return not_found(request, cfg)
        visit, slots = out
        return page(
            request,
            cfg,
            "times.html",
            slots=slots,
            action="/visit/reschedule/confirm",
            hidden={"appointment": str(visit.id)},
            notice=None,
            visit=visit,
        )

    @posted
    async def reschedule(request: Request, cfg: Settings, fields: dict[str, str]) -> Response:
        from hpms.services.scheduling import online

        appointment = fields.get("appointment", "")
        attempt = patient_call(
            request,
            cfg,
            online.reschedule_online,
            appointment_id=appointment,
            start=fields.get("start", ""),
            provider=fields.get("slot_provider") or None,
        )
        times = {"action": "/visit/reschedule/confirm", "hidden": {"appointment": appointment.strip()}}
        out = await moving(request, cfg, attempt, times=times)
        if isinstance(out, Response):
            return out
        if out is kit.NOT_IN:
            return redirect("/")
        return redirect("/home?done=moved")

    return [
        Route("/", sign_in_form, methods=["GET"]),
        Route("/", sign_in, methods=["POST"]),
        Route("/code", code_form, methods=["GET"]),
        Route("/code", code, methods=["POST"]),
        Route("/home", home, methods=["GET"]),
        Route("/switch", switch, methods=["POST"]),
        Route("/signout", sign_out, methods=["POST"]),
        Route("/book", book_start, methods=["GET"]),
        Route("/book/search", book_search, methods=["POST"]),
        Route("/book", book, methods=["POST"]),
        Route("/visit/cancel", cancel_ask, methods=["POST"]),
        Route("/visit/cancel/confirm", cancel, methods=["POST"]),
        Route("/visit/reschedule", reschedule_times, methods=["POST"]),
        Route("/visit/reschedule/confirm", reschedule, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
