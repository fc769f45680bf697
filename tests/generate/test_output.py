"""Firehose request bodies and CloudTrail files decode through the real ingest code."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import orjson
import pytest

from trailguard.generate import (
    cloudtrail_file,
    firehose_request,
    generate_cloudtrail,
    generate_findings,
)
from trailguard.ingest.files import read_file
from trailguard.ingest.firehose import Limits, decode_request

START_MS = 1_700_000_000_000
END_MS = START_MS + 3_600_000


@pytest.mark.parametrize("gzip_records", [False, True])
def test_firehose_request_decodes_to_the_same_findings(gzip_records: bool) -> None:
    events = generate_findings(31, START_MS, END_MS, 40)
    body = firehose_request(events, request_id="req-31", gzip_records=gzip_records,
                            timestamp_ms=END_MS)

    assert (body["requestId"], body["timestamp"], len(body["records"])) == (
        "req-31", END_MS, 40)
    first = base64.b64decode(body["records"][0]["data"])
    assert first.startswith(b"\x1f\x8b") == gzip_records

    batch = decode_request(orjson.dumps(body), {"x-amz-firehose-request-id": "req-31"},
                           Limits())
    assert batch.request_id == "req-31"
    assert [event.attributes["detail.id"] for event in batch.events] == [
        event["detail"]["id"] for event in events]
    assert [event.attributes["detail.severity"] for event in batch.events] == [
        event["detail"]["severity"] for event in events]
    assert {event.event_type for event in batch.events} == {"Log"}


def test_firehose_request_defaults_to_a_fresh_id() -> None:
    first = firehose_request([])
    assert first["records"] == [] and first["requestId"] != firehose_request([])["requestId"]


@pytest.mark.parametrize("gzip_file", [False, True])
def test_cloudtrail_file_reads_back_as_infrastructure_events(tmp_path: Path,
                                                             gzip_file: bool) -> None:
    records = generate_cloudtrail(32, START_MS, END_MS, 300)
    data = cloudtrail_file(records, gzip_file=gzip_file)
    path = tmp_path / ("trail.json.gz" if gzip_file else "trail.json")
    path.write_bytes(data)

    if gzip_file:
        assert orjson.loads(gzip.decompress(data)) == {"Records": records}
    events = read_file(path).events
    assert [event.attributes["eventID"] for event in events] == [
        record["eventID"] for record in records]
    assert {event.event_type for event in events} == {"InfrastructureEvent"}
    assert {event.attributes["provider"] for event in events} == {"CloudTrail"}
