"""Hand-made hostile requests for the receivers, with the answer each must get.

Shared by the in-process fuzz tests and the real-server test, so both hold the same line.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass, field

T0 = 1_700_000_000_000
FIREHOSE_KEY = "test-firehose-key-0123456789"


@dataclass(frozen=True)
class Hostile:
    """One request and the status and message fragment it must be answered with."""

    name: str
    body: bytes
    status: int
    says: str
    path: str = "/firehose/v1"
    headers: dict[str, str] = field(default_factory=dict)


def envelope(*records: bytes, request_id: str = "hostile", timestamp: object = T0) -> bytes:
    return json.dumps({"requestId": request_id, "timestamp": timestamp, "records": [
        {"data": base64.b64encode(data).decode()} for data in records]}).encode()


def firehose_headers(request_id: str = "hostile", **extra: str) -> dict[str, str]:
    return {"X-Amz-Firehose-Request-Id": request_id,
            "X-Amz-Firehose-Access-Key": FIREHOSE_KEY, **extra}


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


WIDE = json.dumps({f"k{n}": n for n in range(10_001)}).encode()
LONG_NAME = json.dumps({"x" * 1_025: 1}).encode()
BOMB = gzip.compress(b"{" + b" " * (129 * 1024 * 1024) + b"}")

CASES = [
    Hostile("10k-deep envelope", deep_array(10_000), 400, "request body is not valid JSON"),
    Hostile("timestamp past int64", envelope(b"{}", timestamp=10**30), 400, "'timestamp'"),
    Hostile("timestamp float", envelope(b"{}", timestamp=1.5), 400, "'timestamp'"),
    Hostile("gzip bomb record", envelope(BOMB), 413, "decompressed size limit"),
    Hostile("gzip bomb body", BOMB, 413, "decompressed size limit",
            headers={"Content-Encoding": "gzip"}),
    Hostile("truncated gzip body", gzip.compress(envelope(b"{}"))[:-6], 400, "truncated gzip",
            headers={"Content-Encoding": "gzip"}),
    Hostile("not gzip", b"{}", 400, "not valid gzip", headers={"Content-Encoding": "gzip"}),
    Hostile("brotli body", envelope(b"{}"), 415, "Content-Encoding 'br' is not supported",
            headers={"Content-Encoding": "br"}),
    Hostile("log api brotli body", b'{"message": "m"}', 415,
            "Content-Encoding 'br' is not supported", path="/log/v1",
            headers={"Content-Encoding": "br"}),
    Hostile("binary body", bytes(range(256)), 400, "request body is not valid JSON"),
    Hostile("empty body", b"", 400, "request body is not valid JSON"),
    Hostile("records not a list", b'{"requestId": "hostile", "timestamp": 1, "records": {}}',
            400, "'records' must be a list"),
    Hostile("record not an object", b'{"requestId": "hostile", "timestamp": 1, "records": [7]}',
            400, "records[0] must be an object"),
    Hostile("common attributes not JSON", envelope(b"{}"), 400,
            "X-Amz-Firehose-Common-Attributes is not JSON",
            headers={"X-Amz-Firehose-Common-Attributes": "{nope"}),
    Hostile("log api 10k-deep attributes", b'{"attributes": ' + deep_object(10_000) + b"}",
            400, "request body is not valid JSON", path="/log/v1"),
    Hostile("log api 200-deep attributes", b'{"attributes": ' + deep_object(200) + b"}",
            400, "nests deeper than the limit of 100 levels", path="/log/v1"),
    Hostile("log api 10k-deep message", json.dumps(
        {"message": deep_array(10_000).decode()}).encode(), 400,
        "nests deeper than the limit of 100 levels", path="/log/v1"),
    Hostile("log api lone surrogate", b'{"message": "\\ud800"}', 400, "no low surrogate",
            path="/log/v1"),
]

# Records past a per-event limit: the request is stored, and each such record is kept
# whole as a `Log` whose message is its text and whose trailguard.parseError says why.
KEPT_AS_TEXT = [
    ("10k-deep object record", deep_object(10_000),
     "a JSON document nests deeper than the limit of 100 levels"),
    ("10k-deep array record", deep_array(10_000),
     "a JSON document nests deeper than the limit of 100 levels"),
    ("101-deep object record", deep_object(101), "nests deeper than the limit of 100 levels"),
    ("300-deep record (past orjson's 255)", deep_object(300),
     "nests deeper than the limit of 100 levels"),
    ("10,001 attributes", WIDE, "event has more than 10000 attributes"),
    ("1,025-character name", LONG_NAME, "characters; the limit is 1024"),
    ("lone surrogate value", b'{"a": "\\ud800"}', "lone UTF-16 surrogate"),
    ("lone surrogate key", b'{"\\udfff": null}', "lone UTF-16 surrogate"),
    ("lone surrogate in array", b'{"a": ["\\ud800"]}', "cannot be kept as JSON"),
    ("empty JSON array", b"[]", "record holds no event"),
    ("blank record", b" \n ", "record is empty"),
]

# Odd but valid: stored, with nothing lost (kept as text when not JSON).
ACCEPTED = [
    ("NaN record", envelope(b'{"a": NaN}')),
    ("1e400 record", envelope(b'{"a": 1e400}')),
    ("5,000-digit integer", envelope(b'{"a": 1' + b"0" * 5_000 + b"}")),
    ("huge record timestamp", envelope(b'{"timestamp": 1e300, "a": 1}')),
    ("infinite CloudWatch time", envelope(json.dumps({
        "messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s",
        "logEvents": [{"id": "1", "timestamp": 1e300, "message": "m"}]}).encode())),
    ("superscript digit time", envelope(b'{"timestamp": "\\u00b2", "a": 1}')),
    ("100-deep record", envelope(deep_object(99))),
    ("65-bit negative integer", envelope(b'{"a": -9223372036854775809}')),
]
