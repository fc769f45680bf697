"""The Kinesis Data Firehose HTTP endpoint delivery protocol (request side).

AWS's specification: a JSON body `{"requestId", "timestamp", "records": [{"data":
base64}]}`, optionally gzip'd as a whole (`Content-Encoding: gzip`), with the
`X-Amz-Firehose-Request-Id`, `X-Amz-Firehose-Access-Key` and optional
`X-Amz-Firehose-Common-Attributes` headers. This module turns such a request into
events or an `IngestError` that says what is wrong; it does no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pybase64

from trailguard.errors import IngestError
from trailguard.events import Event, Scalar
from trailguard.ingest.documents import text_log_event
from trailguard.ingest.payloads import (
    InflateBudget,
    body_is_gzipped,
    events_from_record,
    gunzip_bounded,
    loads_exact,
)
from trailguard.ingest.timestamps import in_range
from trailguard.store.rows import PackedEvent

MAX_REQUEST_ID_CHARS = 256  # Firehose's ids are 36-character UUIDs


def printable_request_id(request_id: str) -> str:
    """`request_id` cut to MAX_REQUEST_ID_CHARS, for answers and logs (a refused id may be
    any length; echoing 100 KB of it back would amplify the request)."""
    if len(request_id) <= MAX_REQUEST_ID_CHARS:
        return request_id
    return request_id[:MAX_REQUEST_ID_CHARS] + "..."


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes a request may reach; Firehose's own maxima are the defaults."""

    max_body_bytes: int = 64 * 1024 * 1024        # Firehose buffers at most 64 MiB
    max_inflated_bytes: int = 128 * 1024 * 1024   # whole body or one record, after gunzip
    max_records: int = 100_000


@dataclass(slots=True)
class FirehoseBatch:
    """A decoded delivery: its id, its time, and the events it carries.

    `delivery_key` identifies this exact delivery: the requestId plus a digest of
    the records, so a retry (same id, same records) is recognised while a
    different body sent under a reused id is still stored.
    """

    request_id: str
    timestamp: int
    events: list[Event]
    delivery_key: str


@dataclass(slots=True)
class FirehoseRequest:
    """A delivery whose envelope is read and checked, its records not yet decoded."""

    request_id: str
    timestamp: int
    delivery_key: str
    records: list[str]  # base64 `data` of each record
    common: dict[str, Scalar]
    inflate_limit: int

    def events_by_record(self, packed: bool = False) -> Iterator[list[Event | PackedEvent]]:
        """The events of each record in turn (so a caller can turn them into rows as it
        goes, rather than holding every event of a big request as Python objects);
        `packed` as in `events_from_record`."""
        budget = InflateBudget(self.inflate_limit, self.inflate_limit)
        for index, data in enumerate(self.records):
            yield record_events(data, index, self.timestamp, self.common, self.inflate_limit,
                                budget, packed)


def decode_request(body: bytes, headers: Mapping[str, str], limits: Limits) -> FirehoseBatch:
    """Decode one Firehose delivery request or raise `IngestError` (nothing is stored)."""
    request = read_request(body, headers, limits)
    events = [event for found in request.events_by_record() for event in found]
    return FirehoseBatch(request.request_id, request.timestamp, events, request.delivery_key)


def read_request(body: bytes, headers: Mapping[str, str], limits: Limits) -> FirehoseRequest:
    """Check a delivery's envelope and key it, or raise `IngestError` (nothing is stored)."""
    if body_is_gzipped(headers):
        body = gunzip_bounded(body, limits.max_inflated_bytes, "request body")

    envelope = _parse_envelope(body)
    request_id = _request_id(envelope, headers)
    timestamp = envelope.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not in_range(timestamp):
        raise IngestError("field 'timestamp' must be the delivery time in epoch milliseconds")

    records = envelope.get("records")
    if not isinstance(records, list):
        raise IngestError("field 'records' must be a list of {\"data\": base64} objects")
    if len(records) > limits.max_records:
        raise IngestError(
            f"request has {len(records)} records; the limit is {limits.max_records}", 413)

    common = common_attributes(headers.get("x-amz-firehose-common-attributes"))
    digest = hashlib.sha256()
    texts: list[str] = []
    for index, record in enumerate(records):
        data = _record_text(record, index)
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data.encode())
        texts.append(data)
    delivery_key = f"{request_id}|{digest.hexdigest()[:32]}"
    return FirehoseRequest(request_id, timestamp, delivery_key, texts, common,
                           limits.max_inflated_bytes)


def common_attributes(header: str | None) -> dict[str, Scalar]:
    """Attributes from `X-Amz-Firehose-Common-Attributes`, added to every event."""
    if not header:
        return {}
    try:
        parsed = loads_exact(header)
    except IngestError as exc:
        raise IngestError(f"header X-Amz-Firehose-Common-Attributes is not JSON ({exc})") from exc
    attributes = parsed.get("commonAttributes") if isinstance(parsed, dict) else None
    if not isinstance(attributes, dict):
        raise IngestError(
            "header X-Amz-Firehose-Common-Attributes must be {\"commonAttributes\": {...}}")
    return {str(key): value for key, value in attributes.items()
            if isinstance(value, str | int | float | bool)}


def _parse_envelope(body: bytes) -> dict[str, Any]:
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise IngestError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise IngestError("request body must be a JSON object with requestId, timestamp, records")
    return envelope


def _request_id(envelope: dict[str, Any], headers: Mapping[str, str]) -> str:
    body_id = envelope.get("requestId")
    header_id = headers.get("x-amz-firehose-request-id")
    if not isinstance(body_id, str) or not body_id:
        raise IngestError("field 'requestId' must be a non-empty string")
    if header_id and header_id != body_id:
        raise IngestError(
            f"header X-Amz-Firehose-Request-Id ({printable_request_id(header_id)!r}) differs "
            "from body requestId")
    if len(body_id) > MAX_REQUEST_ID_CHARS:
        raise IngestError(f"field 'requestId' is longer than {MAX_REQUEST_ID_CHARS} characters")
    return body_id


def record_events(data: str, index: int, timestamp: int, common: dict[str, Scalar],
                  inflate_limit: int, budget: InflateBudget | None = None,
                  packed: bool = False) -> list[Event | PackedEvent]:
    """The events of `records[index]` whose base64 `data` is given.

    Data that is not base64 (cut off, or never encoded) is a bad record, not a bad
    request: it is kept as a `Log` whose `message` is the text as received and whose
    `trailguard.parseError` says why, and the rest of the request is stored as usual.
    """
    try:
        # pybase64 validates as strictly as binascii's strict_mode (alphabet, padding,
        # nothing after it) with SIMD: ~0.5 us for a 2 KB record, against ~2.5 us.
        raw = pybase64.b64decode(data, validate=True)
    except ValueError as exc:  # binascii.Error, or a str that is not ASCII
        reason = f"records[{index}].data is not valid base64: {exc}"
        return [text_log_event(data, timestamp, common, reason)]
    try:
        return events_from_record(raw, timestamp, common, inflate_limit, budget, packed)
    except IngestError as exc:
        raise IngestError(f"records[{index}]: {exc}", exc.status) from exc


def _record_text(record: Any, index: int) -> str:
    if not isinstance(record, dict) or not isinstance(record.get("data"), str):
        raise IngestError(f"records[{index}] must be an object with a base64 'data' string")
    return record["data"]
