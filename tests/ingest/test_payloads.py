"""Record decoding: compression is sniffed, every shape a record can carry is read."""

import gzip
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailguard.errors import IngestError
from trailguard.ingest.payloads import (
    _decoder,
    _lenient_decoder,
    events_from_record,
    gunzip_bounded,
    split_json_documents,
)

LIMIT = 10 * 1024 * 1024
NOW = 1_700_000_000_000


def finding(finding_id: str, updated_at: str = "2023-11-14T22:13:20.000Z") -> dict:
    return {
        "version": "0", "id": f"env-{finding_id}", "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty", "account": "111122223333", "time": "2023-11-14T22:13:20Z",
        "region": "us-east-1", "resources": [],
        "detail": {"schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1",
                   "id": finding_id, "type": "Recon:EC2/PortProbeUnprotectedPort",
                   "severity": 5.0, "title": "example", "createdAt": "2023-11-14T22:00:00.000Z",
                   "updatedAt": updated_at,
                   "service": {"serviceName": "guardduty", "count": 1, "archived": False}},
    }


def decode(data: bytes) -> list:
    return events_from_record(data, NOW, {}, LIMIT)


def test_bl01_plain_json_record_is_not_assumed_to_be_gzip():
    events = decode(json.dumps(finding("f-01")).encode())

    assert len(events) == 1
    attributes = events[0].attributes
    assert attributes["source"] == "aws.guardduty"
    assert attributes["detail.id"] == "f-01"
    assert events[0].timestamp == 1_700_000_000_000  # the EventBridge `time`


def test_gzip_record_is_sniffed_and_inflated():
    events = decode(gzip.compress(json.dumps(finding("f-gz")).encode()))
    assert [event.attributes["detail.id"] for event in events] == ["f-gz"]


@pytest.mark.parametrize("separator", ["\n", "", "  \r\n"])
def test_several_json_documents_in_one_record(separator):
    text = separator.join(json.dumps(finding(f"f-{index}")) for index in range(3))
    assert [e.attributes["detail.id"] for e in decode(text.encode())] == ["f-0", "f-1", "f-2"]


def test_plain_text_becomes_message():
    events = decode(b"Accepted publickey for ec2-user from 198.51.100.7 port 22\n")
    assert len(events) == 1
    assert events[0].attributes == {
        "message": "Accepted publickey for ec2-user from 198.51.100.7 port 22"}
    assert events[0].timestamp == NOW


def test_bl02_cloudwatch_logs_control_message_dropped_data_expanded():
    cloudtrail = {"eventVersion": "1.08", "eventTime": "2023-11-14T22:00:00Z",
                  "eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
                  "awsRegion": "us-east-1", "eventID": "e-1",
                  "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"}}
    control = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logEvents": [
        {"id": "", "timestamp": 1700000000000,
         "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}
    data = {"messageType": "DATA_MESSAGE", "owner": "111122223333",
            "logGroup": "aws-cloudtrail-logs-example",
            "logStream": "111122223333_CloudTrail_us-east-1",
            "logEvents": [
                {"id": "1", "timestamp": 1700000000000, "message": json.dumps(cloudtrail)},
                {"id": "2", "timestamp": 1700000001000,
                 "message": json.dumps({**cloudtrail, "eventID": "e-2"})}]}

    assert decode(gzip.compress(json.dumps(control).encode())) == []
    events = decode(gzip.compress(json.dumps(data).encode()))

    assert [event.timestamp for event in events] == [1700000000000, 1700000001000]
    assert [event.attributes["eventID"] for event in events] == ["e-1", "e-2"]
    assert events[0].attributes["userIdentity.type"] == "Root"
    assert events[0].attributes["aws.logGroup"] == "aws-cloudtrail-logs-example"
    assert events[0].event_type == "Log"


def test_damaged_gzip_record_is_kept_and_flagged_not_dropped():
    damaged = gzip.compress(b'{"a": 1}' * 100)[:-12]
    events = decode(damaged)
    assert len(events) == 1
    assert "truncated gzip" in events[0].attributes["trailguard.parseError"]
    assert events[0].attributes["message"].startswith("hex:1f8b")


def test_gzip_bomb_is_refused_with_413():
    bomb = gzip.compress(b"\0" * (LIMIT + 1))
    with pytest.raises(IngestError) as caught:
        gunzip_bounded(bomb, LIMIT, "record")
    assert caught.value.status == 413
    assert "decompressed size limit" in str(caught.value)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a":1}{"b":2}', [{"a": 1}, {"b": 2}]),
    ('[1, 2]', [[1, 2]]),
    ('{"a":1} trailing words', None),
    ('plain', None),
    ('', None),
])
def test_split_json_documents(text, expected):
    assert split_json_documents(text) == expected


@pytest.mark.parametrize(("text", "strict", "lenient"), [
    # Integers past 64 bits (orjson would read them as approximate floats): refused when
    # strict (the record is then kept as text), kept as their digits when lenient.
    ('{"a": 18446744073709551616}', None, [{"a": "18446744073709551616"}]),
    ('{"a": -9223372036854775809}', None, [{"a": "-9223372036854775809"}]),
    ('{"a": [1, 123456789012345678901234567890]}', None,
     [{"a": [1, "123456789012345678901234567890"]}]),
    # The widest integers that fit are read exactly either way.
    ('{"a": 18446744073709551615, "b": -9223372036854775808}',
     [{"a": 18446744073709551615, "b": -9223372036854775808}],
     [{"a": 18446744073709551615, "b": -9223372036854775808}]),
    # Long digit runs inside strings only send the text the careful way: same result.
    ('{"id": "12345678901234567890123"}', [{"id": "12345678901234567890123"}],
     [{"id": "12345678901234567890123"}]),
    ('{"a": 1e400}', None, [{"a": "1e400"}]),
    ('{"a": NaN}', None, [{"a": "NaN"}]),
    ('\n {"a": "\\ud800"} \n', [{"a": "\ud800"}], [{"a": "\ud800"}]),
])
def test_numbers_no_column_can_hold_are_never_approximated(text, strict, lenient):
    assert split_json_documents(text) == strict
    assert split_json_documents(text, lenient=True) == lenient


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20)


@given(document=st.dictionaries(st.text(max_size=6), _json_values, max_size=5),
       lenient=st.booleans())
def test_reading_one_document_matches_the_standard_decoders(document, lenient):
    # Records of one document take a faster parser; it must read exactly what the
    # standard library's decoders (used for everything else) read.
    text = json.dumps(document)
    decoder = _lenient_decoder if lenient else _decoder
    try:
        expected = [decoder.raw_decode(text)[0]]
    except ValueError:
        expected = None

    assert split_json_documents(text, lenient=lenient) == expected


@pytest.mark.parametrize(("record", "messages"), [
    (b'[{"message": "a"}, {"message": "b"}]', ["a", "b"]),  # an array of events
    (b"[[1]]", ["[1]"]),                                  # an inner array stays one value
    (b'[1, "x", [2, [3]]]', ["1", '"x"', "[2, [3]]"]),
])
def test_a_json_array_is_unpacked_one_level_only(record, messages):
    events = events_from_record(record, 5, {}, 10_000)

    assert [event.attributes["message"] for event in events] == messages
    assert all("trailguard.parseError" not in event.attributes for event in events)


def test_a_cloudwatch_control_message_is_still_dropped_without_a_flag():
    control = json.dumps({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs",
                          "logEvents": []}).encode()
    assert events_from_record(control, 5, {}, 10_000) == []


def test_a_record_of_one_object_keeps_its_own_text_as_message():
    sent = b'{ "eventName": "ConsoleLogin",  "n": 1.50 }\n'
    [alone] = events_from_record(sent, NOW, {}, LIMIT)
    first, second = events_from_record(sent + sent, NOW, {}, LIMIT)

    assert alone.attributes["message"] == '{ "eventName": "ConsoleLogin",  "n": 1.50 }'
    # Documents that share a record each get their own JSON.
    assert first.attributes["message"] == second.attributes["message"] \
        == '{"eventName":"ConsoleLogin","n":1.5}'


@pytest.mark.parametrize(("sent", "extra"), [
    (b'{"message": null, "x": 1}', {}),
    (b'{"message": {"a": 1}}', {"message.a": 1}),
])
def test_a_message_that_is_not_text_leaves_the_record_text_as_message(sent, extra):
    [event] = events_from_record(sent, NOW, {}, LIMIT)
    assert event.attributes["message"] == sent.decode()
    assert all(event.attributes[name] == value for name, value in extra.items())
