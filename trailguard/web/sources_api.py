"""`/api/v1/sources`: the AWS sources and how their last runs went."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trailguard.web.auth import api_key_refusal
from trailguard.web.state import AppState

NOT_CONFIGURED = {"enabled": False, "state": "not configured", "sources": [],
                  "hint": "add a `sources:` section to the config file and restart "
                          "(see docs/aws-sources.md)"}


async def sources_status(request: Request) -> Response:
    """`GET /api/v1/sources`: per source last run, lag, last error and counts."""
    state: AppState = request.app.state.trailguard
    refused = api_key_refusal(request, state.config.api_key)
    if refused:
        return refused
    if state.sources is None:
        return JSONResponse(NOT_CONFIGURED)
    return JSONResponse(state.sources.status())


async def poll_now(request: Request) -> Response:
    """`POST /api/v1/sources/poll`: poll every source now (e.g. after fixing a policy)."""
    state: AppState = request.app.state.trailguard
    refused = api_key_refusal(request, state.config.api_key)
    if refused:
        return refused
    if state.sources is None:
        return JSONResponse({"error": NOT_CONFIGURED["hint"]}, status_code=409)
    state.sources.poll_now()
    return JSONResponse({"status": "poll requested", "status_url": "/api/v1/sources"},
                        status_code=202)


def routes() -> list[Route]:
    """The routes this module serves (mounted by `trailguard.web.app`)."""
    return [Route("/api/v1/sources", sources_status, methods=["GET"]),
            Route("/api/v1/sources/poll", poll_now, methods=["POST"])]
