"""`POST /api/v1/nrql`: NRQL in, New Relic's result JSON out."""

from __future__ import annotations

import logging

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trailguard.errors import NrqlError, StoreError
from trailguard.logs import log_fields
from trailguard.nrql import run_nrql
from trailguard.web.auth import api_key_refusal
from trailguard.web.state import AppState

log = logging.getLogger("trailguard.query")

MAX_QUERY_BODY = 1024 * 1024


class ORJSONResponse(JSONResponse):
    def render(self, content: object) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


async def nrql_endpoint(request: Request) -> Response:
    state: AppState = request.app.state.trailguard
    refused = api_key_refusal(request, state.config.api_key)
    if refused:
        return refused

    body = await request.body()
    if len(body) > MAX_QUERY_BODY:
        return JSONResponse({"error": "request body too large"}, status_code=413)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return JSONResponse({"error": f"request body is not JSON: {exc}"}, status_code=400)
    query = payload.get("query") if isinstance(payload, dict) else None
    if not isinstance(query, str) or not query.strip():
        return JSONResponse({"error": "body must be {\"query\": \"<NRQL>\"}"}, status_code=400)

    try:
        result = await run_in_threadpool(run_nrql, state.store, query)
    except NrqlError as exc:
        return JSONResponse({"error": str(exc), "position": exc.position}, status_code=400)
    except StoreError as exc:
        log_fields(log, logging.ERROR, "query failed", reason=str(exc))
        return JSONResponse({"error": "store unavailable"}, status_code=503)
    return ORJSONResponse(result)
