"""`/api/v1/alerts/...`: conditions, policies and destinations; incidents.

Same key as the query API (`X-Api-Key` or `Api-Key`; 401 when missing, 403 when wrong,
compared in constant time). Errors are `{"error": message}`: 400 names the invalid
field, 404 an unknown id, 409 a change that cannot be made (an item from the alerts
file, a policy that still has conditions, an incident already closed).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trailguard.alerts.admin import AlertAdmin
from trailguard.errors import (
    AlertConflictError,
    AlertError,
    AlertNotFoundError,
    IngestError,
)
from trailguard.logs import log_fields
from trailguard.web.auth import api_key_refusal
from trailguard.web.bodies import read_limited
from trailguard.web.query_api import ORJSONResponse
from trailguard.web.state import AppState

log = logging.getLogger("trailguard.alerts.api")

PREFIX = "/api/v1/alerts"
MAX_BODY = 256 * 1024
# Ids are SQLite integers; a larger one cannot exist (and would overflow the query).
MAX_ID = 2**63 - 1
KINDS = {"policies": "policy", "conditions": "condition", "destinations": "destination",
         "incidents": "incident"}
Operation = Callable[[AlertAdmin, Request, Any], Any]


def routes() -> list[Route]:
    """The routes this module serves (mounted by `trailguard.web.app`)."""
    table: list[tuple[str, str, Operation, int]] = [
        ("/policies", "GET", lambda a, r, b: {"policies": a.policies()}, 200),
        ("/policies", "POST", lambda a, r, b: a.create_policy(b), 201),
        ("/policies/{id:int}", "GET", lambda a, r, b: a.policy(_id(r)), 200),
        ("/policies/{id:int}", "PUT", lambda a, r, b: a.update_policy(_id(r), b), 200),
        ("/policies/{id:int}", "DELETE", lambda a, r, b: a.delete_policy(_id(r)), 204),
        ("/conditions", "GET",
         lambda a, r, b: {"conditions": a.conditions(r.query_params.get("policy"))}, 200),
        ("/conditions", "POST", lambda a, r, b: a.create_condition(b), 201),
        ("/conditions/{id:int}", "GET", lambda a, r, b: a.condition(_id(r)), 200),
        ("/conditions/{id:int}", "PUT",
         lambda a, r, b: a.update_condition(_id(r), b, merge=False), 200),
        ("/conditions/{id:int}", "PATCH",
         lambda a, r, b: a.update_condition(_id(r), b, merge=True), 200),
        ("/conditions/{id:int}", "DELETE", lambda a, r, b: a.delete_condition(_id(r)), 204),
        ("/destinations", "GET", lambda a, r, b: {"destinations": a.destinations()}, 200),
        ("/destinations", "POST", lambda a, r, b: a.create_destination(b), 201),
        ("/destinations/{id:int}", "GET", lambda a, r, b: a.destination(_id(r)), 200),
        ("/destinations/{id:int}", "PUT",
         lambda a, r, b: a.update_destination(_id(r), b), 200),
        ("/destinations/{id:int}", "DELETE",
         lambda a, r, b: a.delete_destination(_id(r)), 204),
        ("/incidents", "GET", lambda a, r, b: {"incidents": a.incident_list(*_filters(r))},
         200),
        ("/incidents/{id:int}", "GET", lambda a, r, b: a.incident(_id(r)), 200),
        ("/incidents/{id:int}/acknowledge", "POST",
         lambda a, r, b: a.acknowledge(_id(r)), 200),
        ("/incidents/{id:int}/close", "POST", lambda a, r, b: a.close(_id(r)), 200),
    ]
    paths: dict[str, dict[str, tuple[Operation, int]]] = {}
    for path, method, operation, status in table:
        paths.setdefault(path, {})[method] = (operation, status)
    return [Route(PREFIX + path, _endpoint(methods), methods=list(methods))
            for path, methods in paths.items()]


def _endpoint(methods: dict[str, tuple[Operation, int]]
              ) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state: AppState = request.app.state.trailguard
        refused = _refused(request, state)
        if refused is not None:
            return refused
        operation, status = methods[request.method]
        try:
            body = await _body(request) if request.method in ("POST", "PUT", "PATCH") else None
            result = await run_in_threadpool(operation, AlertAdmin(state.alerts), request, body)
        except IngestError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except AlertError as exc:
            return JSONResponse({"error": str(exc)}, status_code=_status(exc))
        if request.method != "GET":
            _log_change(request, result)
        if status == 204:
            return Response(status_code=204)
        return ORJSONResponse(result, status_code=status)

    return endpoint


def _refused(request: Request, state: AppState) -> Response | None:
    """401/403 like the query API; 503 when this process runs no alert service."""
    refusal = api_key_refusal(request, state.config.api_key)
    if refusal is not None:
        return refusal
    if state.alerts is None:
        return JSONResponse({"error": "alerts are not running in this process"},
                            status_code=503)
    return None


async def _body(request: Request) -> Any:
    raw = await read_limited(request, MAX_BODY)
    if not raw.strip():
        return None  # acknowledge and close take no body
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise AlertError(f"request body is not JSON: {exc}") from None


def _status(exc: AlertError) -> int:
    if isinstance(exc, AlertNotFoundError):
        return 404
    return 409 if isinstance(exc, AlertConflictError) else 400


def _id(request: Request) -> int:
    """The `{id}` of the path; one no row can have is a 404 like any unknown id."""
    item_id = int(request.path_params["id"])
    if not 0 < item_id <= MAX_ID:
        kind = KINDS[request.url.path.removeprefix(PREFIX).split("/")[1]]
        raise AlertNotFoundError(f"no {kind} with id {item_id}")
    return item_id


def _filters(request: Request) -> tuple[tuple[str, ...], int]:
    """`?state=open,acknowledged` and `?limit=`; bad values are named by the admin."""
    states = tuple(s.strip() for s in request.query_params.get("state", "").split(",")
                   if s.strip())
    limit = request.query_params.get("limit", "100")
    if not (limit.isascii() and limit.isdigit()):
        raise AlertError(f"`limit` must be a whole number, not {limit!r}")
    return states, int(limit)


def _log_change(request: Request, result: Any) -> None:
    """One line per change: what and which id, never a destination's settings."""
    path = request.url.path.removeprefix(PREFIX)
    changed = result.get("id") if isinstance(result, dict) else request.path_params.get("id")
    name = result.get("name") if isinstance(result, dict) else None
    log_fields(log, logging.INFO, "alerts api change", method=request.method, path=path,
               id=changed, name=name)
