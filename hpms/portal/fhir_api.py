"""The FHIR R4 read API, for systems such as an EHR:

    GET /fhir/metadata                             the CapabilityStatement (no token needed)
    GET /fhir/Patient/{id}                         one patient
    GET /fhir/Appointment?patient=ID&date=DAY      a patient's appointments (date: eq, ge, gt, le, lt)
    GET /fhir/Slot?schedule=ID&start=DAY           a schedule's free and busy slots on a day

Every request but metadata carries `Authorization: Bearer <token>` (`hpms tokens create`) and
runs as that token's service actor, in one transaction; the services check its role and audit
what it read. Answers are application/fhir+json; errors are OperationOutcomes: 401 (with
WWW-Authenticate) for a missing, unknown, expired or revoked token, 403 when its role may not,
404 for an unknown id, 400 for a bad parameter."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from hpms.config import Settings
    from hpms.errors import HpmsError

log = logging.getLogger("hpms.portal")
FHIR_JSON = "application/fhir+json"
PREFIX = "/fhir"
# The services' fields, as the API's search parameters name them
PARAMS = {"id": "id", "patient": "patient", "date": "date", "schedule": "schedule", "start": "start"}


def _answer(resource: dict[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    from starlette.responses import Response

    body = json.dumps(resource, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status_code=status, media_type=FHIR_JSON, headers=dict(headers or {}))


def _outcome(exc: HpmsError) -> Response:
    """A service's error as an OperationOutcome and its HTTP status."""
    from hpms.errors import AuthError
    from hpms.interop.fhir import writing
    from hpms.portal.app import http_status

    if isinstance(exc, AuthError):
        resource = writing.operation_outcome("login", exc.message)
        return _answer(resource, 401, {"WWW-Authenticate": 'Bearer realm="hpms", error="invalid_token"'})
    status = http_status(exc)
    field = PARAMS.get(exc.field or "", exc.field)
    text = f"{field}: {exc.message}" if field else exc.message
    if status >= 500:
        log.error("FHIR request failed: %s", text)
    return _answer(writing.operation_outcome(exc.kind.value, text, expression=field), status)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def routes(current: Callable[[], Settings], env: Mapping[str, str] | None) -> list[BaseRoute]:
    """The FHIR API's routes; `current` gives the settings of each request. The acting user of
    the server (`env`) plays no part: each request acts as its bearer token."""
    from starlette.concurrency import run_in_threadpool
    from starlette.routing import Route

    from hpms.errors import HpmsError
    from hpms.interop.fhir import writing

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/") + PREFIX

    def run(cfg: Settings, token: str | None, fn: Callable[..., Any], kw: dict[str, Any]) -> Any:
        from hpms.services.interop.api_tokens import open_token_context

        with open_token_context(cfg, token) as ctx:
            return fn(ctx, **kw)

    async def call(request: Request, fn: Callable[..., Any], **kw: Any) -> Any:
        return await run_in_threadpool(run, current(), _bearer(request), fn, kw)

    async def metadata(request: Request) -> Response:
        from hpms.services.interop import fhir_export

        return _answer(fhir_export.capability(base=base(request), today=dt.date.today()))

    async def patient(request: Request) -> Response:
        from hpms.services.interop import fhir_export

        try:
            resource = await call(request, fhir_export.read_patient, patient_id=request.path_params["id"])
        except HpmsError as exc:
            return _outcome(exc)
        return _answer(resource)

    async def appointments(request: Request) -> Response:
        from hpms.services.interop import fhir_export

        q = request.query_params
        try:
            found = await call(
                request, fhir_export.search_appointments, patient=q.get("patient"), date=q.getlist("date")
            )
        except HpmsError as exc:
            return _outcome(exc)
        return _answer(writing.searchset(found, base=base(request), self_url=str(request.url)))

    async def slots(request: Request) -> Response:
        from hpms.services.interop import fhir_export

        q = request.query_params
        try:
            found = await call(request, fhir_export.search_slots, schedule=q.get("schedule"), start=q.get("start"))
        except HpmsError as exc:
            return _outcome(exc)
        return _answer(writing.searchset(found, base=base(request), self_url=str(request.url)))

    return [
        Route(f"{PREFIX}/metadata", metadata, methods=["GET"]),
        Route(PREFIX + "/Patient/{id}", patient, methods=["GET"]),
        Route(f"{PREFIX}/Appointment", appointments, methods=["GET"]),
        Route(f"{PREFIX}/Slot", slots, methods=["GET"]),
    ]
