"""Build and send Kinesis Data Firehose HTTP endpoint requests, as AWS sends them."""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid

import httpx


def firehose_body(records: list[bytes], request_id: str | None = None,
                  timestamp: int | None = None) -> dict:
    """The JSON body Firehose POSTs: requestId, timestamp (ms) and base64 records."""
    return {
        "requestId": request_id or str(uuid.uuid4()),
        "timestamp": timestamp if timestamp is not None else int(time.time() * 1000),
        "records": [{"data": base64.b64encode(record).decode()} for record in records],
    }


def send(base_url: str, access_key: str, body: dict | bytes, gzip_body: bool = False,
         headers: dict | None = None, verify: object = True) -> httpx.Response:
    """POST a delivery with Firehose's headers (and its optional whole-body gzip)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request_id = body.get("requestId", "") if isinstance(body, dict) else ""
    all_headers = {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": request_id,
        "X-Amz-Firehose-Access-Key": access_key,
        "X-Amz-Firehose-Source-Arn":
            "arn:aws:firehose:us-east-1:111122223333:deliverystream/example",
    }
    if gzip_body:
        raw = gzip.compress(raw)
        all_headers["Content-Encoding"] = "gzip"
    all_headers.update(headers or {})
    return httpx.post(f"{base_url}/firehose/v1", content=raw, headers=all_headers,
                      verify=verify, timeout=60)


BIG_REQUEST_START_MS = 1_764_000_000_000
BIG_REQUEST_RECORDS = 600


def big_cloudtrail_request(number: int) -> tuple[str, bytes]:
    """Request id and gzip'd body of BIG_REQUEST_RECORDS generated CloudTrail records.

    Large enough (well over 64 KiB) for the server to decode it in a worker process;
    each `number` gives different records, all within the hour after BIG_REQUEST_START_MS.
    """
    from trailguard.generate import generate_cloudtrail

    records = generate_cloudtrail(number, BIG_REQUEST_START_MS,
                                  BIG_REQUEST_START_MS + 3_600_000, BIG_REQUEST_RECORDS)
    request_id = f"big-{number}"
    body = firehose_body([json.dumps(record).encode() for record in records], request_id,
                         BIG_REQUEST_START_MS)
    return request_id, gzip.compress(json.dumps(body).encode())
