"""Wrap generated events the way they travel: Firehose requests and CloudTrail files."""

from __future__ import annotations

import base64
import gzip
import time
import uuid
from collections.abc import Iterable
from typing import Any

import orjson


def firehose_request(events: Iterable[dict[str, Any]], request_id: str | None = None,
                     gzip_records: bool = False, timestamp_ms: int | None = None
                     ) -> dict[str, Any]:
    """A Kinesis Data Firehose HTTP endpoint request body carrying `events`, one per record.

    Each record's `data` is base64 of the event's JSON (gzip'd first when
    `gzip_records`). Serialise the result with `orjson.dumps` to POST it.
    `request_id` and `timestamp_ms` default to a fresh UUID and now.
    """
    records = []
    for event in events:
        data = orjson.dumps(event)
        if gzip_records:
            data = gzip.compress(data, mtime=0)
        records.append({"data": base64.b64encode(data).decode("ascii")})
    return {
        "requestId": request_id or str(uuid.uuid4()),
        "timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
        "records": records,
    }


def cloudtrail_file(records: Iterable[dict[str, Any]], gzip_file: bool = False) -> bytes:
    """The bytes of a CloudTrail log file, `{"Records": [...]}`, gzip'd as S3 holds it
    when `gzip_file`."""
    body = orjson.dumps({"Records": list(records)})
    return gzip.compress(body, mtime=0) if gzip_file else body
