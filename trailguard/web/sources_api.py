"""`/api/v1/sources`: the AWS sources and how their last runs went."""

from __future__ import annotations

from starlette.routing import Route


def routes() -> list[Route]:
    """The routes this module serves (mounted by `trailguard.web.app`)."""
    return []
