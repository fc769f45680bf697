"""Values are kept exactly, whichever way they arrive, and records inflate within bounds."""

import base64
import gzip
import json

import pytest

from trailguard.errors import IngestError
from trailguard.ingest.decode_pool import decode_in_process
from trailguard.ingest.firehose import Limits, decode_request
from trailguard.ingest.logapi import decode_log_payload
from trailguard.ingest.payloads import events_from_record, gunzip_bounded
from trailguard.nrql import run_nrql

NOW = 1_700_000_000_000
EVER = "SINCE 30 years ago"


def firehose(*records: bytes, headers: dict | None = None) -> tuple[bytes, dict]:
    body = {"requestId": "req-exact", "timestamp": NOW - 60_000,
            "records": [{"data": base64.b64encode(record).decode()} for record in records]}
    return json.dumps(body).encode(), headers or {}


def test_an_integer_a_double_cannot_hold_stays_exact_beside_its_number_column(store):
    # detail.severity has a DOUBLE column; 2**53 + 1 would lose its last digit there.
    body, headers = firehose(b'{"id": "f-1", "detail": {"severity": 9007199254740993}}',
                             b'{"id": "f-2", "detail": {"severity": 8}}')
    decoded = decode_in_process(body, headers, Limits())
    store.write_deliveries([_delivery(decoded)])

    # The value sits in `attrs` (SELECT * shows it), the column stays empty for it.
    rows = run_nrql(store, f"SELECT * FROM Log {EVER} LIMIT 10", now_ms=NOW)["results"]
    assert sorted((row["id"], row["detail.severity"]) for row in rows) == [
        ("f-1", 9007199254740993), ("f-2", 8)]


def _delivery(decoded):
    from trailguard.store.base import Delivery

    return Delivery([], decoded.delivery_key, NOW, table=decoded.table)


def test_wide_integers_through_the_log_api_and_common_attributes_keep_their_digits():
    [event] = decode_log_payload(b'{"message": "m", "v": 123456789012345678901234}', NOW)
    assert event.attributes["v"] == "123456789012345678901234"

    common = '{"commonAttributes": {"batch": 123456789012345678901234}}'
    body, headers = firehose(b'{"x": 1}',
                             headers={"x-amz-firehose-common-attributes": common})
    [event] = decode_request(body, headers, Limits()).events
    assert event.attributes["batch"] == "123456789012345678901234"


def test_a_record_of_several_gzip_members_gives_every_member():
    record = gzip.compress(b'{"i": 1}\n') + gzip.compress(b'{"i": 2}\n')
    events = events_from_record(record, NOW, {}, 1 << 20)
    assert [event.attributes["i"] for event in events] == [1, 2]


@pytest.mark.parametrize(("data", "reason"), [
    (gzip.compress(b'{"i": 1}') + b"junk", "4 bytes after its gzip data that are not gzip"),
    (gzip.compress(b'{"i": 1}')[:-3], "truncated gzip"),
])
def test_gzip_with_something_wrong_after_or_inside_says_what(data, reason):
    with pytest.raises(IngestError, match=reason):
        gunzip_bounded(data, 1 << 20, "record")
    # Zero padding after the last member is what gzip itself accepts.
    assert gunzip_bounded(gzip.compress(b"ok") + b"\0" * 8, 1 << 20, "record") == b"ok"


def test_the_records_of_one_request_inflate_within_one_total():
    # Each record stays under the per-record bound; together they pass the request's.
    limits = Limits(max_inflated_bytes=1 << 20)
    bomb = gzip.compress(b'{"v": "' + b"a" * 400_000 + b'"}')
    body, headers = firehose(bomb, bomb, bomb)

    with pytest.raises(IngestError) as caught:
        decode_request(body, headers, limits)
    assert caught.value.status == 413
    assert "inflate to more than 1048576 bytes in all" in str(caught.value)
    assert len(decode_request(*firehose(bomb, bomb), limits).events) == 2


@pytest.mark.parametrize("moment", ["-99999999999999", "-1", '"9999-12-31T23:59:59-23:59"'])
def test_a_log_api_time_no_query_can_reach_gives_way_to_the_request_time(moment):
    [event] = decode_log_payload(b'{"message": "m", "timestamp": ' + moment.encode() + b"}", NOW)
    [block] = decode_log_payload(b'[{"common": {"timestamp": ' + moment.encode()
                                 + b'}, "logs": [{"message": "m"}]}]', NOW)
    assert event.timestamp == block.timestamp == NOW


@pytest.mark.parametrize("record", [
    b'{"eventName": "\\ud800"}',                                    # in a text column
    b'{"message": "\\udfff tail"}',
    b'{"id": "\\ud800", "type": "t", "severity": 5, "schemaVersion": "2.0"}',  # a finding id
    b'{"eventTime": "2023-11-14T20:00:00Z", "eventID": "\\ud800", "eventSource": "s3"}',
    b'{"version": "0", "id": "\\ud800", "detail-type": "x", "source": "y", "detail": {}}',
])
def test_a_lone_surrogate_anywhere_costs_only_its_record(store, record):
    # JSON may escape a lone UTF-16 surrogate, which no column can keep: the record is kept
    # as its text, flagged, and the request's other record is stored as usual.
    body, headers = firehose(record, b'{"eventName": "ok", "time": "2023-11-14T21:00:00Z"}')
    decoded = decode_in_process(body, headers, Limits())
    store.write_deliveries([_delivery(decoded)])

    rows = run_nrql(store, f"SELECT * FROM Log {EVER} LIMIT 10", now_ms=NOW)["results"]
    kept = [row for row in rows if "trailguard.parseError" in row]
    assert [row["eventName"] for row in rows if row not in kept] == ["ok"]
    assert len(kept) == 1 and "surrogate" in kept[0]["trailguard.parseError"]
    assert kept[0]["message"] == record.decode()
