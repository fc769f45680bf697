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
    Hostile("10k-deep object record", envelope(deep_object(10_000)), 400,
            "records[0]: a JSON document nests deeper than the limit of 100 levels"),
    Hostile("10k-deep array record", envelope(b"{}", deep_array(10_000)), 400,
            "records[1]: a JSON document nests deeper than the limit of 100 levels"),
    Hostile("101-deep object record", envelope(deep_object(101)), 400,
            "nests deeper than the limit of 100 levels"),
    Hostile("300-deep record (past orjson's 255)", envelope(deep_object(300)), 400,
            "nests deeper than the limit of 100 levels"),
    Hostile("10k-deep envelope", deep_array(10_000), 400, "request body is not valid JSON"),
    Hostile("10,001 attributes", envelope(WIDE), 400,
            "records[0]: event has more than 10000 attributes"),
    Hostile("1,025-character name", envelope(LONG_NAME), 400, "characters; the limit is 1024"),
    Hostile("lone surrogate value", envelope(b'{"a": "\\ud800"}'), 400,
            "lone UTF-16 surrogate"),
    Hostile("lone surrogate key", envelope(b'{"\\udfff": null}'), 400, "lone UTF-16 surrogate"),
    Hostile("lone surrogate in array", envelope(b'{"a": ["\\ud800"]}'), 400,
            "cannot be kept as JSON"),
    Hostile("timestamp past int64", envelope(b"{}", timestamp=10**30), 400, "'timestamp'"),
    Hostile("timestamp float", envelope(b"{}", timestamp=1.5), 400, "'timestamp'"),
    Hostile("gzip bomb record", envelope(BOMB), 413, "decompressed size limit"),
    Hostile("gzip bomb body", BOMB, 413, "decompressed size limit",
            headers={"Content-Encoding": "gzip"}),
    Hostile("truncated gzip body", gzip.compress(envelope(b"{}"))[:-6], 400, "truncated gzip",
            headers={"Content-Encoding": "gzip"}),
    Hostile("not gzip", b"{}", 400, "not valid gzip", headers={"Content-Encoding": "gzip"}),
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
