"""Decode the bytes of one delivered record into events.

A record may be plain JSON, several JSON documents (newline-delimited or simply
back to back), plain text, or gzip of any of those; CloudWatch Logs subscription
deliveries are gzip'd envelopes holding many log events. Compression is sniffed
from the bytes, never assumed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from isal import isal_zlib

from trailguard.errors import IngestError
from trailguard.events import Event, Scalar
from trailguard.ingest.documents import (
    document_identity,
    log_event,
    packed_log_event,
    text_log_event,
)
from trailguard.ingest.flatten import MAX_DEPTH
from trailguard.ingest.timestamps import coerce_epoch_ms
from trailguard.store.rows import PackedEvent

try:
    from trailguard.ingest._cflatten import has_digit_run as _has_digit_run
except ImportError:  # no C compiler where it was installed
    _has_digit_run = None

GZIP_MAGIC = b"\x1f\x8b"


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400 would become inf
        raise ValueError(f"{text} is beyond the range of a 64-bit float")
    return number


def _json_int(text: str) -> int:
    number = int(text)
    if not -2**63 <= number < 2**64:  # what orjson, which writes `message`, can serialise
        raise ValueError(f"integer {text[:40]} is beyond 64 bits")
    return number


# A record with a value JSON allows but no later step can hold (NaN, 1e400, a 70-bit
# integer) is not refused: it is kept whole, as text, like any other non-JSON record.
_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float,
                            parse_int=_json_int)


def _int_or_digits(text: str) -> int | str:
    if len(text) > 20:  # past 64 bits whatever the digits (and int() refuses 4,300+)
        return text
    number = int(text)
    return number if -2**63 <= number < 2**64 else text


def _float_or_text(text: str) -> float | str:
    number = float(text)
    return number if math.isfinite(number) else text


# Files hold many records in one document, so there a value no column can hold keeps its
# JSON spelling as a string (NaN -> "NaN") rather than turning the whole file into text.
_lenient_decoder = json.JSONDecoder(parse_constant=str, parse_float=_float_or_text,
                                    parse_int=_int_or_digits)


def gunzip_bounded(data: bytes, limit: int, what: str) -> bytes:
    """Inflate gzip `data`, refusing more than `limit` bytes of output (gzip bombs).

    Several gzip members back to back (what `cat a.gz b.gz` makes, and what gzip itself
    reads as one stream) inflate to their texts joined; bytes after the last member that
    are not one are refused, rather than silently ignored.
    """
    parts: list[bytes] = []
    total = 0
    rest = data
    while True:
        # ISA-L inflates ~1.6x as fast as zlib (the same bytes out). wbits 32 + 15:
        # accept gzip or zlib headers.
        inflater = isal_zlib.decompressobj(wbits=47)
        try:
            output = inflater.decompress(rest, limit - total + 1)
        except isal_zlib.error as exc:
            raise IngestError(f"{what} is not valid gzip: {exc}") from exc
        total += len(output)
        if total > limit:
            raise IngestError(
                f"{what} inflates to more than {limit} bytes, the decompressed size limit", 413)
        if not inflater.eof:
            raise IngestError(f"{what} is truncated gzip (the stream ends before its trailer)")
        parts.append(output)
        rest = inflater.unused_data
        if not rest.strip(b"\0"):  # gzip also ignores zero padding after the last member
            return b"".join(parts)
        if not rest.startswith(GZIP_MAGIC):
            raise IngestError(f"{what} has {len(rest)} bytes after its gzip data that are "
                              "not gzip")


@dataclass(slots=True)
class InflateBudget:
    """Bytes the records of one request may inflate to, all together.

    Each record is bounded on its own too; without a total, a small request of many
    small gzip bombs (each just under the per-record bound) could take gigabytes.
    """

    remaining: int
    limit: int

    def take(self, size: int) -> None:
        self.remaining -= size
        if self.remaining < 0:
            raise IngestError(f"the records of this request inflate to more than {self.limit} "
                              "bytes in all, the decompressed size limit per request", 413)


def body_is_gzipped(headers: Mapping[str, str]) -> bool:
    """Whether `Content-Encoding` says gzip; an encoding trailguard cannot read is a 415."""
    coding = headers.get("content-encoding", "").strip().lower()
    if coding in ("gzip", "x-gzip"):
        return True
    if coding in ("", "identity"):
        return False
    raise IngestError(f"Content-Encoding {coding[:40]!r} is not supported; send the body "
                      "as it is or gzip'd (Content-Encoding: gzip)", 415)


def events_from_record(data: bytes, fallback_ms: int, extra: dict[str, Scalar],
                       inflate_limit: int, budget: InflateBudget | None = None,
                       packed: bool = False) -> list[Event | PackedEvent]:
    """Every event carried by one record; a damaged record becomes one flagged event.

    `packed`: JSON documents may come back already as rows (`PackedEvent`), for a caller
    that only turns them into a table.

    A record that cannot be read is kept as a `Log` whose `message` is its raw
    text (or its hex when it is not text) and whose `trailguard.parseError` says
    why, so nothing a sender delivered is silently dropped.
    """
    if data.startswith(GZIP_MAGIC):
        limit = min(inflate_limit, budget.remaining) if budget else inflate_limit
        try:
            data = gunzip_bounded(data, limit, "record")
        except IngestError as exc:
            if exc.status == 413 and budget and budget.remaining < inflate_limit:
                budget.take(limit + 1)  # says which limit: the request's total
            if exc.status == 413:
                raise
            return [text_log_event(_readable(data), fallback_ms, extra, str(exc))]
        if budget:
            budget.take(len(data))

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [text_log_event(_readable(data), fallback_ms, extra, f"record is not UTF-8: {exc}")]
    text = text.removeprefix("\ufeff")  # a byte order mark some Windows tools write

    try:
        return _events_from_text(text, fallback_ms, extra, packed)
    except IngestError as exc:
        if exc.status == 413:
            raise
        # Past a per-event limit (depth, attribute count, a lone surrogate escape): the
        # record is kept whole, as text, so the rest of its request is stored as usual.
        return [_kept_as_text(text, fallback_ms, extra, f"record kept as text: {exc}")]


def _events_from_text(text: str, fallback_ms: int, extra: dict[str, Scalar],
                      packed: bool = False) -> list[Event | PackedEvent]:
    documents = split_json_documents(text)
    if documents is None:
        stripped = text.strip("\r\n")
        if not stripped.strip():
            return [text_log_event(text, fallback_ms, extra, "record is empty")]
        return [_kept_as_text(stripped, fallback_ms, extra, None)]

    # A record of one JSON object keeps its own text as `message` (as sent, and without
    # serialising the document again); documents sharing a record get their JSON each.
    raw_text = text.strip() if len(documents) == 1 else None
    events: list[Event | PackedEvent] = []
    for document in documents:
        found = _events_from_document(document, fallback_ms, extra, raw_text=raw_text,
                                      packed=packed)
        if not found and not _is_control_message(document):
            found = [text_log_event(text, fallback_ms, extra, "record holds no event (an empty "
                                    "JSON array or a CloudWatch Logs message without logEvents)")]
        events.extend(found)
    return events


# orjson reads an integer past 64 bits as an approximate float, where the decoders above
# keep it exact or refuse it. Such integers have at least 19 digits; a text holding a run
# of 19 digits anywhere goes to the careful decoders. (Mapping digits to "0" and the rest
# to " " with bytes.translate and searching for the run costs ~3 us for a 1.4 KB record,
# a regular expression ~15 us, the same scan in C ~0.3 us.)
_DIGITS_ONLY = bytes(ord("0") if ord("0") <= byte <= ord("9") else ord(" ")
                     for byte in range(256))
_WIDE_INTEGER_DIGITS = b"0" * 19


def split_json_documents(text: str, lenient: bool = False) -> list[Any] | None:
    """The JSON values in `text` (one, newline-delimited, or concatenated), else None.

    None means the text is not purely JSON and should be kept as plain text. `lenient`
    reads NaN, 1e400 and integers past 64 bits as strings of their JSON spelling.
    """
    single = _single_document(text)
    if single is not None:
        return [single]
    decoder = _lenient_decoder if lenient else _decoder
    documents: list[Any] = []
    position = 0
    length = len(text)
    while True:
        while position < length and text[position].isspace():
            position += 1
        if position == length:
            break
        if text[position] not in "{[":
            return None
        try:
            document, position = decoder.raw_decode(text, position)
        except RecursionError as exc:
            raise IngestError(f"a JSON document nests deeper than the limit of {MAX_DEPTH} "
                              "levels") from exc
        except ValueError:  # json.JSONDecodeError, or NaN/Infinity
            return None
        documents.append(document)
    return documents or None


def _may_hold_wide_integer(text: str) -> bool:
    if _has_digit_run is not None:
        return _has_digit_run(text, len(_WIDE_INTEGER_DIGITS))
    return _may_hold_wide_integer_in_python(text)


def _may_hold_wide_integer_in_python(text: str) -> bool:
    """`_may_hold_wide_integer` where the C module is not built."""
    digits = text.encode("utf-8", "surrogatepass").translate(_DIGITS_ONLY)
    return _WIDE_INTEGER_DIGITS in digits


def loads_exact(data: bytes | str) -> Any:
    """One JSON value, with integers past 64 bits, NaN and 1e400 kept as strings of their
    JSON spelling (orjson alone would turn a 24-digit integer into an approximate float).
    Raises `IngestError` when `data` is not JSON."""
    text = data.decode("utf-8", "surrogatepass") if isinstance(data, bytes) else data
    try:
        if not _may_hold_wide_integer(text):
            return orjson.loads(text)
        return _lenient_decoder.decode(text)
    except (ValueError, RecursionError) as exc:  # orjson's error is a ValueError too
        raise IngestError(f"not valid JSON: {exc}") from exc


def _single_document(text: str) -> Any:
    """`text` as one JSON object or array read by orjson (several times faster than the
    standard library's decoder), or None to leave it to the careful reading: several
    documents, values orjson reads differently (NaN, 1e400, wide integers), lone
    surrogates, anything that is not JSON."""
    if text.lstrip()[:1] not in ("{", "["):
        return None
    if _may_hold_wide_integer(text):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _kept_as_text(text: str, fallback_ms: int, extra: dict[str, Scalar],
                  reason: str | None) -> Event:
    """A record stored as its text. When the text is one JSON object after all (holding
    NaN, 1e400 or an integer past 64 bits, or past a per-event limit), the event keeps
    that object's time and content key, so a copy of it is still recognised."""
    try:
        documents = split_json_documents(text, lenient=True)
    except IngestError:  # nests too deep even to read
        documents = None
    if not documents or len(documents) != 1 or not isinstance(documents[0], dict):
        return text_log_event(text, fallback_ms, extra, reason)

    if reason is None:
        reason = ("record kept as text: it holds a number no column can keep exactly (NaN, "
                  "Infinity, 1e400 or an integer past 64 bits)")
    own_time, key = document_identity(documents[0])
    event = text_log_event(text, own_time or fallback_ms, extra, reason)
    event.dedup_key = key
    return event


def _is_control_message(document: Any) -> bool:
    """A CloudWatch Logs health check: carries no log, and is dropped on purpose."""
    return isinstance(document, dict) and document.get("messageType") == "CONTROL_MESSAGE"


def _events_from_document(document: Any, fallback_ms: int, extra: dict[str, Scalar],
                          top: bool = True, raw_text: str | None = None,
                          packed: bool = False) -> list[Event | PackedEvent]:
    if isinstance(document, list) and top:
        # A JSON array of events; only its own elements are events (an array inside it
        # is one value, kept as JSON text, not unpacked further).
        events: list[Event | PackedEvent] = []
        for item in document:
            events.extend(_events_from_document(item, fallback_ms, extra, top=False,
                                                packed=packed))
        return events
    if not isinstance(document, dict):
        return [text_log_event(json.dumps(document), fallback_ms, extra)]
    if "messageType" in document and "logEvents" in document:
        return _cloudwatch_logs_events(document, extra)
    if packed:
        row = packed_log_event(document, fallback_ms, extra, raw_text)
        if row is not None:
            return [row]
    # strict: past a limit the whole record is kept as its raw text (events_from_record).
    return [log_event(document, fallback_ms, extra, raw_text=raw_text, strict=True)]


def _cloudwatch_logs_events(envelope: dict[str, Any], extra: dict[str, Scalar]) -> list[Event]:
    """One event per CloudWatch Logs `logEvents` entry; control messages are health checks."""
    if envelope.get("messageType") != "DATA_MESSAGE":
        return []

    context: dict[str, Scalar] = dict(extra)
    for source_key, attribute in (("logGroup", "aws.logGroup"), ("logStream", "aws.logStream"),
                                  ("owner", "aws.owner")):
        if isinstance(envelope.get(source_key), str):
            context[attribute] = envelope[source_key]

    events: list[Event] = []
    for entry in envelope.get("logEvents") or []:
        if not isinstance(entry, dict):
            continue
        timestamp = coerce_epoch_ms(entry.get("timestamp")) or 0
        message = entry.get("message")
        message = message if isinstance(message, str) else json.dumps(message)
        documents = split_json_documents(message)
        if documents and len(documents) == 1 and isinstance(documents[0], dict):
            event = log_event(documents[0], timestamp, context, raw_text=message)
            event.timestamp = timestamp or event.timestamp
        else:
            event = text_log_event(message, timestamp, context)
        if event.dedup_key is None and entry.get("id"):
            # CloudWatch Logs gives every log event an id unique within its stream.
            event.dedup_key = (f"cwl:{envelope.get('owner')}|{envelope.get('logGroup')}|"
                               f"{envelope.get('logStream')}|{entry['id']}")
        events.append(event)
    return events


def _readable(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + data.hex()
