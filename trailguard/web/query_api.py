"""`POST /api/v1/nrql`: NRQL in, New Relic's result JSON out."""

from __future__ import annotations

import logging

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trailguard.errors import NrqlError, QueryTooLargeError, StoreError
from trailguard.logs import log_fields
from trailguard.nrql import run_nrql
from trailguard.web.auth import api_key_refusal
from trailguard.web.state import AppState

log = logging.getLogger("trailguard.query")

# A query is at most 10,000 tokens (the longest quickstart query is ~10 KiB of text), so
# 1 MiB leaves room for any real query while bounding what one request makes us hold.
MAX_QUERY_BODY = 1024 * 1024
TOO_LARGE = (f"request body too large: /api/v1/nrql accepts at most 1 MiB "
             f"({MAX_QUERY_BODY:,} bytes) of JSON")


class ORJSONResponse(JSONResponse):
    def render(self, content: object) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


async def nrql_endpoint(request: Request) -> Response:
    state: AppState = request.app.state.trailguard
    refused = api_key_refusal(request, state.config.api_key)
    if refused:
        return refused

    body = await _bounded_body(request)
    if body is None:
        return JSONResponse({"error": TOO_LARGE, "limit_bytes": MAX_QUERY_BODY},
                            status_code=413)
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
    except QueryTooLargeError as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    except StoreError as exc:
        log_fields(log, logging.ERROR, "query failed", reason=str(exc))
        return JSONResponse({"error": "store unavailable"}, status_code=503)
    return ORJSONResponse(result)


async def _bounded_body(request: Request) -> bytes | None:
    """The request body, None once it is over MAX_QUERY_BODY: read in pieces and given up
    early, so an oversized upload is never held whole in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_QUERY_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_QUERY_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
