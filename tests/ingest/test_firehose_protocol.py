"""The Firehose request decoder: every malformed request says what is wrong and where."""

import base64
import gzip
import json

import pytest

from trailguard.errors import IngestError
from trailguard.ingest.firehose import Limits, decode_request

HEADERS = {"x-amz-firehose-request-id": "req-1"}


def body(record_list: list, **overrides) -> bytes:
    envelope = {"requestId": "req-1", "timestamp": 1_700_000_000_000, "records": record_list}
    envelope.update(overrides)
    return json.dumps(envelope).encode()


def record(data: bytes) -> dict:
    return {"data": base64.b64encode(data).decode()}


def test_valid_request_decodes_with_common_attributes():
    headers = {**HEADERS, "x-amz-firehose-common-attributes":
               json.dumps({"commonAttributes": {"logtype": "guardduty", "team": "sec"}})}
    batch = decode_request(body([record(b'{"x": 1}'), record(b"hello")]), headers, Limits())

    assert batch.request_id == "req-1"
    assert [event.attributes.get("x") for event in batch.events] == [1, None]
    assert all(event.attributes["logtype"] == "guardduty" for event in batch.events)
    assert batch.events[1].attributes["message"] == "hello"


def test_a_record_that_is_not_base64_is_kept_as_a_flagged_log():
    batch = decode_request(body([record(b'{"x": 1}'), {"data": "!!not base64!!"}]), HEADERS,
                           Limits())

    assert [event.attributes.get("x") for event in batch.events] == [1, None]
    kept = batch.events[1].attributes
    assert kept["message"] == "!!not base64!!"
    assert kept["trailguard.parseError"].startswith("records[1].data is not valid base64")


def test_whole_body_gzip():
    headers = {**HEADERS, "content-encoding": "gzip"}
    batch = decode_request(gzip.compress(body([record(b'{"x": 1}')])), headers, Limits())
    assert len(batch.events) == 1


@pytest.mark.parametrize(("raw", "headers", "message"), [
    (b"{not json", HEADERS, "request body is not valid JSON"),
    (b"[]", HEADERS, "must be a JSON object"),
    (body([record(b"ok"), {"data": 5}]), HEADERS, "records[1] must be an object"),
    (body([], timestamp="yesterday"), HEADERS, "'timestamp' must be"),
    (body([], requestId=""), HEADERS, "'requestId' must be a non-empty string"),
    (body([], records="x"), HEADERS, "'records' must be a list"),
    (body([]), {"x-amz-firehose-request-id": "other"}, "differs from body requestId"),
    (body([]), {**HEADERS, "x-amz-firehose-common-attributes": "{"}, "is not JSON"),
    (gzip.compress(body([]))[:-10], {**HEADERS, "content-encoding": "gzip"}, "truncated gzip"),
    (b"plain", {**HEADERS, "content-encoding": "gzip"}, "not valid gzip"),
])
def test_malformed_requests_are_refused_with_a_reason(raw, headers, message):
    with pytest.raises(IngestError) as caught:
        decode_request(raw, headers, Limits())
    assert caught.value.status == 400
    assert message in str(caught.value)


def test_too_many_records_is_413():
    with pytest.raises(IngestError) as caught:
        decode_request(body([record(b"x")] * 3), HEADERS, Limits(max_records=2))
    assert caught.value.status == 413
