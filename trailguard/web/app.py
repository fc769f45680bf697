"""The HTTP application: receivers, query API, health."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trailguard import __version__
from trailguard.config import Config
from trailguard.ingest.decode_pool import DecodePool, default_workers
from trailguard.ingest.firehose import Limits
from trailguard.ingest.handoff import HANDOFF_FOLDER
from trailguard.store.base import EventStore
from trailguard.store.retention import RetentionJob
from trailguard.store.spool import Spool
from trailguard.store.writer import GroupCommitWriter
from trailguard.web import alerts_api, retention_api, sources_api
from trailguard.web.query_api import nrql_endpoint
from trailguard.web.receivers import firehose_endpoint, log_api_endpoint, spool_replay
from trailguard.web.state import AppState

if TYPE_CHECKING:
    from trailguard.alerts.service import AlertService
    from trailguard.sources.service import SourceService


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


def create_app(config: Config, store: EventStore,
               alerts: AlertService | None = None,
               sources: SourceService | None = None) -> Starlette:
    """The ASGI app serving `store` with the keys and limits in `config`.

    `alerts` is the running alert service, if any, that the alerts API manages.
    `sources` (the AWS pollers) run while the app does, writing through its writer.
    """
    limits = Limits(max_body_bytes=config.max_body_bytes,
                    max_inflated_bytes=config.max_inflated_bytes)
    # Receivers acknowledge once a request is in the spool, beside the store file; rows
    # are committed in big batches (see trailguard.store.spool). A store without a
    # spool folder commits every group before its senders hear back.
    spool_dir = getattr(store, "spool_dir", None)
    writer = GroupCommitWriter(store, max_queued_events=config.ingest_queue_events,
                               max_queued_bytes=config.ingest_queue_mib * 2**20,
                               spool=Spool(spool_dir) if spool_dir is not None else None,
                               replay=spool_replay(limits))

    retention = RetentionJob(store, config.retention_days)
    workers = (default_workers() if config.ingest_decode_workers < 0
               else config.ingest_decode_workers)
    # Workers hand big results over in files beside the spool (see ingest.handoff).
    handoff_dir = spool_dir.parent / HANDOFF_FOLDER if spool_dir is not None else None
    # The processes start on first use.
    decode_pool = DecodePool(workers, handoff_dir) if workers else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        retention.start()
        if sources is not None:
            sources.start(writer)
        yield
        if sources is not None:
            await run_in_threadpool(sources.stop)  # before the writer it commits through
        await run_in_threadpool(retention.stop)
        await run_in_threadpool(writer.close)  # commit what is queued before the store closes
        if decode_pool is not None:
            await run_in_threadpool(decode_pool.close)

    app = Starlette(lifespan=lifespan, routes=[
        Route("/firehose/v1", firehose_endpoint, methods=["POST"]),
        Route("/log/v1", log_api_endpoint, methods=["POST"]),
        Route("/api/v1/nrql", nrql_endpoint, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        *alerts_api.routes(),
        *sources_api.routes(),
        *retention_api.routes(),
    ])
    app.state.trailguard = AppState(config, store, limits, writer, alerts=alerts, sources=sources,
                                      decode_pool=decode_pool, retention=retention)
    return app
