"""HTTP receivers: the Firehose HTTP endpoint and the New Relic Log API."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping

import anyio
import anyio.to_thread
import pyarrow as pa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trailguard.errors import IngestError, StoreError, StoreOverloadedError
from trailguard.ingest.decode_pool import (
    POOL_MIN_BODY_BYTES,
    DecodedDelivery,
    decode_headers,
    decode_in_process,
)
from trailguard.ingest.firehose import Limits, printable_request_id
from trailguard.ingest.logapi import decode_log_payload
from trailguard.ingest.payloads import body_is_gzipped, gunzip_bounded
from trailguard.logs import log_fields
from trailguard.store.arrow_rows import events_to_table
from trailguard.store.base import Delivery, WriteResult
from trailguard.store.spool import SpoolRecord
from trailguard.store.writer import Replay
from trailguard.web.auth import key_matches, presented_key
from trailguard.web.bodies import read_limited
from trailguard.web.state import AppState

log = logging.getLogger("trailguard.ingest")

LOG_API_KEY_HEADERS = ("api-key", "x-license-key", "x-insert-key")


FIREHOSE_RECORD = "firehose"
LOG_API_RECORD = "logapi"


async def firehose_endpoint(request: Request) -> Response:
    """`POST /firehose/v1`: answer 200 only once every record is on disk (committed, or
    kept in the spool until the next group commit)."""
    state: AppState = request.app.state.trailguard
    header_id = printable_request_id(request.headers.get("x-amz-firehose-request-id", ""))
    started = time.monotonic()

    presented = request.headers.get("x-amz-firehose-access-key")
    if not key_matches(presented, state.config.firehose_access_key):
        status = 401 if not presented else 403
        reason = "missing X-Amz-Firehose-Access-Key" if not presented else "access key rejected"
        log_fields(log, logging.WARNING, "firehose delivery refused", request_id=header_id,
                   status=status, reason=reason)
        return _firehose_error(header_id, status, reason)

    try:
        body = await read_limited(request, state.limits.max_body_bytes)
        state.admission.refuse_if_crowded()  # before the decoding it would spare
        decoded = await _decode_firehose(state, body, request.headers)
        received_ms = _now_ms()
        record = SpoolRecord(FIREHOSE_RECORD, {"headers": decode_headers(request.headers),
                                               "received_ms": received_ms}, body)
        result = await _commit(state, Delivery([], decoded.delivery_key, received_ms,
                                               table=decoded.table), record)
    except IngestError as exc:
        log_fields(log, logging.WARNING, "firehose delivery rejected", request_id=header_id,
                   status=exc.status, reason=str(exc))
        return _firehose_error(header_id, exc.status, str(exc))
    except StoreOverloadedError as exc:
        log_fields(log, logging.WARNING, "firehose delivery deferred", request_id=header_id,
                   status=503, reason=str(exc))
        return _firehose_error(header_id, 503, str(exc))
    except StoreError as exc:
        log_fields(log, logging.ERROR, "firehose delivery not stored", request_id=header_id,
                   reason=str(exc))
        return _firehose_error(header_id, 503, "store unavailable, retry later")

    log_fields(log, logging.INFO,
               "firehose delivery spooled" if result.pending else "firehose delivery committed",
               request_id=decoded.request_id,
               events=result.stored, duplicates=result.duplicates, replayed=result.replayed,
               ms=round((time.monotonic() - started) * 1000, 1))
    return JSONResponse({"requestId": decoded.request_id, "timestamp": _now_ms()})


async def log_api_endpoint(request: Request) -> Response:
    """`POST /log/v1`: the New Relic Log API shapes, gzip allowed."""
    state: AppState = request.app.state.trailguard
    presented = presented_key(request.headers, LOG_API_KEY_HEADERS) \
        or request.query_params.get("Api-Key")
    if not key_matches(presented, state.config.firehose_access_key):
        status = 401 if not presented else 403
        return JSONResponse({"error": "missing Api-Key header" if status == 401
                             else "Api-Key rejected"}, status_code=status)

    try:
        body = await read_limited(request, state.limits.max_body_bytes)
        state.admission.refuse_if_crowded()
        gzipped = body_is_gzipped(request.headers)
        received_ms = _now_ms()
        rows = await anyio.to_thread.run_sync(_decode_log_body, body, gzipped, state.limits,
                                              received_ms, limiter=state.decode_slots)
        # The request's own key: were it written twice (spooled, committed, then written
        # again after a crash that left the spool), the second is a replay.
        request_id = str(uuid.uuid4())
        record = SpoolRecord(LOG_API_RECORD, {"gzipped": gzipped, "received_ms": received_ms,
                                              "request_id": request_id}, body)
        result = await _commit(state, Delivery([], _log_api_key(request_id), received_ms,
                                               table=rows), record)
    except IngestError as exc:
        log_fields(log, logging.WARNING, "log api request rejected", status=exc.status,
                   reason=str(exc))
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    except StoreOverloadedError as exc:
        log_fields(log, logging.WARNING, "log api request deferred", status=503, reason=str(exc))
        return JSONResponse({"error": str(exc)}, status_code=503)
    except StoreError as exc:
        log_fields(log, logging.ERROR, "log api request not stored", reason=str(exc))
        return JSONResponse({"error": "store unavailable, retry later"}, status_code=503)

    log_fields(log, logging.INFO,
               "log api request spooled" if result.pending else "log api request committed",
               request_id=request_id,
               events=result.stored, duplicates=result.duplicates)
    return JSONResponse({"requestId": request_id}, status_code=202)


async def _decode_firehose(state: AppState, body: bytes,
                           headers: Mapping[str, str]) -> DecodedDelivery:
    """Rows of a Firehose request: big bodies in a decode worker, small ones in a thread."""
    async with state.decode_slots:  # bounds the request bodies held in memory at once
        if state.decode_pool is not None and len(body) >= POOL_MIN_BODY_BYTES:
            return await state.decode_pool.decode_firehose(body, headers, state.limits)
        return await anyio.to_thread.run_sync(decode_in_process, body, headers, state.limits)


def _decode_log_body(body: bytes, gzipped: bool, limits: Limits, received_ms: int) -> pa.Table:
    if gzipped:
        body = gunzip_bounded(body, limits.max_inflated_bytes, "request body")
    return events_to_table(decode_log_payload(body, received_ms))


def _log_api_key(request_id: str) -> str:
    return f"logapi:{request_id}"


def spool_replay(limits: Limits) -> Replay:
    """Decodes a spooled request again, as its receiver did, for the writer's recovery."""
    def replay(record: SpoolRecord) -> Delivery:
        meta = record.meta
        if record.kind == FIREHOSE_RECORD:
            decoded = decode_in_process(record.payload, meta["headers"], limits)
            return Delivery([], decoded.delivery_key, meta["received_ms"], table=decoded.table)
        if record.kind == LOG_API_RECORD:
            rows = _decode_log_body(record.payload, meta["gzipped"], limits, meta["received_ms"])
            return Delivery([], _log_api_key(meta["request_id"]), meta["received_ms"],
                            table=rows)
        raise IngestError(f"the spool holds a request of unknown kind {record.kind!r}")
    return replay


async def _commit(state: AppState, delivery: Delivery, record: SpoolRecord) -> WriteResult:
    """Queue `delivery` for the next group commit (waiting a little for room when the
    queue is full) and wait until it is on disk: in the spool (`record`), or committed
    when the server runs without one."""
    return await asyncio.wrap_future(await state.admission.submit(delivery, record))


def _firehose_error(request_id: str, status: int, message: str) -> JSONResponse:
    """The error body the Firehose specification asks for."""
    return JSONResponse({"requestId": request_id, "timestamp": _now_ms(),
                         "errorMessage": message}, status_code=status)


def _now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["Limits", "firehose_endpoint", "log_api_endpoint"]
