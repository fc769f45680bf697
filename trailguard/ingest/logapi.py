"""The New Relic Log API payload shapes (`POST /log/v1`).

Accepted: one log object, an array of log objects, or the detailed form
`[{"common": {"attributes": {...}}, "logs": [{...}]}]`. A log's `attributes`
object and its other keys become attributes; a `message` that is itself a JSON
object is expanded into attributes too, as New Relic Logs does.
"""

from __future__ import annotations

from typing import Any

from trailguard.errors import IngestError
from trailguard.events import Event, Scalar
from trailguard.ingest.documents import log_event
from trailguard.ingest.flatten import flatten
from trailguard.ingest.payloads import loads_exact, split_json_documents
from trailguard.ingest.timestamps import coerce_epoch_ms, event_time


def decode_log_payload(body: bytes, received_ms: int) -> list[Event]:
    """Events of one Log API request body (already un-gzip'd)."""
    try:
        payload = loads_exact(body)
    except IngestError as exc:
        raise IngestError(f"request body is {exc}") from exc
    except UnicodeDecodeError as exc:
        raise IngestError(f"request body is not UTF-8: {exc}") from exc

    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise IngestError("request body must be a log object or an array")

    events: list[Event] = []
    for index, item in enumerate(payload):
        if not isinstance(item, dict):
            raise IngestError(f"item [{index}] must be a JSON object")
        if "logs" in item:
            events.extend(_detailed_block(item, index, received_ms))
        else:
            events.append(_one_log(item, {}, received_ms))
    return events


def _detailed_block(block: dict[str, Any], index: int, received_ms: int) -> list[Event]:
    logs = block.get("logs")
    if not isinstance(logs, list):
        raise IngestError(f"item [{index}].logs must be an array of log objects")
    common = block.get("common") or {}
    if not isinstance(common, dict):
        raise IngestError(f"item [{index}].common must be an object")
    common_attributes = flatten(common.get("attributes") or {})
    common_ms = event_time(coerce_epoch_ms(common.get("timestamp")))
    events = []
    for position, log in enumerate(logs):
        if not isinstance(log, dict):
            raise IngestError(f"item [{index}].logs[{position}] must be a JSON object")
        events.append(_one_log(log, common_attributes, common_ms or received_ms))
    return events


def _one_log(log: dict[str, Any], common: dict[str, Scalar], fallback_ms: int) -> Event:
    # A time no query could reach (before 1970, after 9999) gives way to the request's.
    explicit_ms = event_time(coerce_epoch_ms(log.get("timestamp")))
    nested = log.get("attributes") if isinstance(log.get("attributes"), dict) else {}
    top_level = {key: value for key, value in log.items()
                 if key not in ("attributes", "timestamp")}
    context: dict[str, Scalar] = {**common, **flatten(nested)}

    message = top_level.get("message")
    documents = split_json_documents(message) if isinstance(message, str) else None
    if documents and len(documents) == 1 and isinstance(documents[0], dict):
        # strict: the Log API answers synchronously, so a sender hears which limit broke.
        event = log_event(documents[0], explicit_ms or fallback_ms, context, raw_text=message,
                          strict=True)
        for key, value in flatten(top_level).items():
            event.attributes.setdefault(key, value)
    else:
        event = log_event(top_level, explicit_ms or fallback_ms, context, strict=True)
        if "message" not in top_level:
            event.attributes.pop("message", None)
    if explicit_ms is not None:
        event.timestamp = explicit_ms
    return event
