"""`GET /api/v1/retention`: how long each event type is kept, and the last pass."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trailguard.web.auth import api_key_refusal
from trailguard.web.state import AppState


async def retention_status(request: Request) -> Response:
    state: AppState = request.app.state.trailguard
    refused = api_key_refusal(request, state.config.api_key)
    if refused:
        return refused
    job = state.retention
    last = None
    if job is not None and job.last_pass_ms is not None:
        last = {"atMs": job.last_pass_ms, "removed": job.last_removed}
    return JSONResponse({
        "retentionDays": dict(state.config.retention_days),
        "otherEventTypes": "kept forever",
        "intervalSeconds": job.interval_s if job is not None else None,
        "lastPass": last,
    })


def routes() -> list[Route]:
    """The routes this module serves (mounted by `trailguard.web.app`)."""
    return [Route("/api/v1/retention", retention_status, methods=["GET"])]
