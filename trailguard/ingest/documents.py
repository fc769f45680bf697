"""Recognise what a JSON document is (CloudTrail record, EventBridge event,
GuardDuty finding, anything else) and turn it into an event."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from trailguard.errors import IngestError
from trailguard.events import INFRASTRUCTURE_EVENT, LOG, Event, Scalar, content_key
from trailguard.ingest.actors import cloudtrail_actor
from trailguard.ingest.flatten import MAX_ATTRIBUTES, MAX_DEPTH, MAX_NAME_CHARS, flatten
from trailguard.ingest.timestamps import coerce_epoch_ms, event_time, parse_iso_ms
from trailguard.store.rows import NATIVE_ROWS, PackedEvent, document_row


def is_cloudtrail_record(document: dict[str, Any]) -> bool:
    """True for a CloudTrail record (management, data or Insights event)."""
    # Runs for every record: plain `in` tests cost a fraction of all() over a generator.
    return "eventTime" in document and "eventID" in document and (
        "eventSource" in document or "insightDetails" in document
    )


def is_guardduty_finding(document: dict[str, Any]) -> bool:
    """True for a bare GuardDuty finding (camelCase, as in S3 exports)."""
    if not ("id" in document and "type" in document and "severity" in document):
        return False
    service = document.get("service")
    from_guardduty = isinstance(service, dict) and service.get("serviceName") == "guardduty"
    return from_guardduty or "schemaVersion" in document


def is_eventbridge_event(document: dict[str, Any]) -> bool:
    """True for an EventBridge envelope (`source`, `detail-type`, `detail`)."""
    return "detail-type" in document and "source" in document


def cloudtrail_event(record: dict[str, Any], event_type: str = INFRASTRUCTURE_EVENT,
                     fallback_ms: int | None = None) -> Event:
    """One CloudTrail record as an event; `InfrastructureEvent` unless told otherwise.

    A record past a per-event limit (see `flatten`) is kept as text (`kept_as_text`), so
    one odd record in a trail file or an API page never stops the others.
    """
    own_time = event_time(parse_iso_ms(str(record.get("eventTime", ""))))
    try:
        attributes = flatten(record)
    except IngestError as exc:
        attributes = kept_as_text(record, exc)
    else:
        _add_actor(attributes, record)
        attributes["message"] = _json_text(record)
    if event_type == INFRASTRUCTURE_EVENT:
        attributes["provider"] = "CloudTrail"
    # Without a readable eventTime the caller's fallback (or 0) stands in; 0 is the same
    # for every copy, a fallback time is not.
    key = content_key(_cloudtrail_key(record), bool(own_time) or not fallback_ms)
    return Event(event_type, own_time or fallback_ms or 0, attributes, key)


def kept_as_text(document: dict[str, Any], error: IngestError) -> dict[str, Scalar]:
    """The attributes of a document that cannot become attributes: its JSON as `message`,
    and `trailguard.parseError` saying which limit it broke."""
    return {"message": _json_text(document),
            "trailguard.parseError": f"record kept as text: {error}"}


def wrap_finding(finding: dict[str, Any]) -> dict[str, Any]:
    """A bare GuardDuty finding inside the EventBridge envelope GuardDuty sends.

    Files of bare findings (S3 exports, GetFindings output) then store exactly
    like findings delivered through EventBridge and Firehose.
    """
    # The same finding state always gets the same envelope id; two findings that share an
    # id but not their content (no updatedAt to tell them apart) get two.
    identity = f"{finding.get('id')}|{finding.get('updatedAt')}|".encode("utf-8", "surrogatepass")
    envelope_id = hashlib.sha256(identity + _json_bytes(finding, sort_keys=True)).hexdigest()
    return {
        "version": "0",
        "id": f"{envelope_id[:8]}-{envelope_id[8:12]}-{envelope_id[12:16]}-"
              f"{envelope_id[16:20]}-{envelope_id[20:32]}",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": finding.get("accountId"),
        "time": finding.get("updatedAt") or finding.get("createdAt"),
        "region": finding.get("region"),
        "resources": [],
        "detail": finding,
    }


def log_event(document: dict[str, Any], fallback_ms: int,
              extra: dict[str, Scalar] | None = None, raw_text: str | None = None,
              strict: bool = False) -> Event:
    """Any JSON document as a `Log` event, with the identity and time it carries.

    `message` keeps the document's original JSON text (`raw_text` when the
    caller has it) unless the document has a `message` of its own. A document past a
    per-event limit is kept as text (`kept_as_text`), or, when `strict`, raises
    `IngestError` so the caller can keep its raw bytes instead.
    """
    document = _as_sent_by_eventbridge(document)
    try:
        attributes = flatten(document)
    except IngestError as exc:
        if strict:
            raise
        attributes = kept_as_text(document, exc)
    else:
        if is_cloudtrail_record(document):
            _add_actor(attributes, document)
        # A document's own `message` is the message; when it has none (or a null, or an
        # object, which became `message.*` attributes) the document's text is.
        if "message" not in attributes:
            attributes["message"] = raw_text if raw_text is not None else _json_text(document)
    if extra:
        attributes = {**extra, **attributes}
    own_time, key = _time_and_key(document)
    return Event(LOG, own_time or fallback_ms, attributes, key)


def packed_log_event(document: dict[str, Any], fallback_ms: int,
                     extra: dict[str, Scalar] | None = None,
                     raw_text: str | None = None) -> PackedEvent | None:
    """`log_event(document, fallback_ms, extra, raw_text, strict=True)` already as a row of
    the events table, written in C without building the flat attributes (`document_row`);
    None when the C module is not built or the document needs the Python walk (odd keys
    or values, or a limit reached), so the caller calls `log_event`."""
    if not NATIVE_ROWS:
        return None
    document = _as_sent_by_eventbridge(document)
    cloudtrail = is_cloudtrail_record(document)
    # The attributes log_event adds after the document's own, in its order: each only
    # where the document has none of that name.
    tail: list[tuple[str, Scalar]] = []
    if cloudtrail and "actor" not in document:
        actor = cloudtrail_actor(document.get("userIdentity"))
        if actor is not None:
            tail.append(("actor", actor))
    tail.append(("message", raw_text if raw_text is not None else _json_text(document)))
    row = document_row(document, (MAX_DEPTH, MAX_ATTRIBUTES, MAX_NAME_CHARS), tuple(tail),
                       tuple(extra.items()) if extra else ())
    if row is None:
        return None
    own_time, key = _time_and_key(document, cloudtrail)
    return PackedEvent(LOG, own_time or fallback_ms, key, *row)


def document_identity(document: dict[str, Any]) -> tuple[int | None, str | None]:
    """The time of its own and the content key `log_event` gives `document`: for a record
    kept as text, so that its copies are still recognised and it still sorts by its time."""
    document = _as_sent_by_eventbridge(document)
    return _time_and_key(document)


def _time_and_key(document: dict[str, Any],
                  cloudtrail: bool | None = None) -> tuple[int | None, str | None]:
    """The time of its own and the content key of a document as sent by EventBridge
    (`cloudtrail`: whether it is a CloudTrail record, when the caller knows)."""
    own_time = _document_time(document, cloudtrail)
    return own_time, content_key(_dedup_key(document, cloudtrail), bool(own_time))


def _as_sent_by_eventbridge(document: dict[str, Any]) -> dict[str, Any]:
    """A bare GuardDuty finding (or one under `detail` without an envelope) inside the
    EventBridge envelope GuardDuty sends; any other document as it is."""
    if "detail" in document and "source" not in document and isinstance(
            document["detail"], dict) and is_guardduty_finding(document["detail"]):
        return {**wrap_finding(document["detail"]), **document}
    if is_guardduty_finding(document) and not is_eventbridge_event(document):
        return wrap_finding(document)
    return document


def text_log_event(text: str, timestamp: int, extra: dict[str, Scalar] | None = None,
                   parse_error: str | None = None) -> Event:
    """A line of plain text as a `Log` event whose `message` is that text."""
    attributes: dict[str, Scalar] = dict(extra or {})
    attributes["message"] = text
    if parse_error:
        attributes["trailguard.parseError"] = parse_error
    return Event(LOG, timestamp, attributes, None)


def _add_actor(attributes: dict[str, Scalar], record: dict[str, Any]) -> None:
    actor = cloudtrail_actor(record.get("userIdentity"))
    if actor is not None and "actor" not in record:
        attributes["actor"] = actor


def _document_time(document: dict[str, Any], cloudtrail: bool | None = None) -> int | None:
    if is_cloudtrail_record(document) if cloudtrail is None else cloudtrail:
        return event_time(parse_iso_ms(str(document["eventTime"])))
    if is_eventbridge_event(document) and isinstance(document.get("time"), str):
        return event_time(parse_iso_ms(document["time"]))
    for key in ("timestamp", "time", "@timestamp"):
        if key in document:
            moment = event_time(coerce_epoch_ms(document[key]))
            if moment is not None:
                return moment
    return None


def _dedup_key(document: dict[str, Any], cloudtrail: bool | None = None) -> str | None:
    """The identity that makes a retried delivery of the same event a duplicate.
    (`cloudtrail`: whether `is_cloudtrail_record(document)`, when the caller knows.)"""
    detail = document.get("detail")
    if (document.get("source") == "aws.guardduty" and isinstance(detail, dict)
            and detail.get("id") and detail.get("updatedAt")):
        # GuardDuty republishes a finding under the same id with a new updatedAt;
        # the digest keeps distinct states apart even if updatedAt were reused.
        digest = hashlib.sha256(_json_bytes(detail, sort_keys=True))
        return f"gd:{detail['id']}|{detail['updatedAt']}|{digest.hexdigest()[:16]}"
    if is_cloudtrail_record(document) if cloudtrail is None else cloudtrail:
        return _cloudtrail_key(document)
    if is_eventbridge_event(document) and isinstance(document.get("id"), str):
        # The id alone would drop a different event sent under a reused id; an archive
        # replay adds `replay-name` to the envelope but keeps what the digest covers.
        what = [document.get("source"), document.get("detail-type"), document.get("detail")]
        digest = hashlib.sha256(_json_bytes(what, sort_keys=True)).hexdigest()
        return f"eb:{document['id']}|{digest[:16]}"
    return None


def _cloudtrail_key(record: dict[str, Any]) -> str | None:
    """eventID plus a digest of the whole record.

    eventID alone is not enough: hand-made and test trails reuse ids across
    different events, and dropping a different event is worse than keeping a
    copy. A true re-delivery (re-imported file, overlapping poll) is identical.
    """
    event_id = record.get("eventID")
    if not isinstance(event_id, str) or not event_id:
        return None
    digest = hashlib.sha256(_json_bytes(record, sort_keys=True)).hexdigest()
    return f"ct:{event_id}|{digest[:24]}"


def _json_text(document: Any) -> str:
    return _json_bytes(document).decode()


def _json_bytes(document: Any, sort_keys: bool = False) -> bytes:
    """`document` as JSON. orjson refuses lone surrogates and nesting past 255 levels;
    the standard library writes those (escaped), so odd documents still have a text."""
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except orjson.JSONEncodeError:
        return json.dumps(document, sort_keys=sort_keys).encode()


def camel_case_keys(value: Any) -> Any:
    """GuardDuty API output (PascalCase keys) in the camelCase EventBridge uses."""
    if isinstance(value, dict):
        return {(key[:1].lower() + key[1:]): camel_case_keys(child)
                for key, child in value.items()}
    if isinstance(value, list):
        return [camel_case_keys(child) for child in value]
    return value
