"""`/api/v1/alerts/...`: conditions, policies, destinations and incidents."""

from __future__ import annotations

from starlette.routing import Route


def routes() -> list[Route]:
    """The routes this module serves (mounted by `trailguard.web.app`)."""
    return []
