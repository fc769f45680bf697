"""Limits on one event's shape: refused with a message naming the limit, never truncated."""

import pytest

from trailguard.errors import IngestError
from trailguard.ingest.flatten import MAX_ATTRIBUTES, MAX_DEPTH, MAX_NAME_CHARS, flatten
from trailguard.ingest.payloads import events_from_record
from trailguard.ingest.timestamps import coerce_epoch_ms


def nested(depth: int) -> dict:
    document: dict = {"leaf": 1}
    for _ in range(depth - 1):
        document = {"a": document}
    return document


def test_flatten_keeps_order_arrays_and_their_json():
    document = {"z": 1, "resources": [{"ARN": "x"}, 2], "a": {"b": None, "c": True}}

    assert list(flatten(document).items()) == [
        ("z", 1), ("resources", '[{"ARN":"x"},2]'), ("resources.0.ARN", "x"),
        ("resources.1", 2), ("a.c", True)]


def test_depth_up_to_the_limit_is_kept():
    assert flatten(nested(MAX_DEPTH)) == {"a." * (MAX_DEPTH - 1) + "leaf": 1}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 10_000, 200_000])
def test_deeper_is_refused_without_recursion(depth):
    with pytest.raises(IngestError) as refused:
        flatten(nested(depth))

    assert str(refused.value) == (f"attribute {'.'.join(['a'] * MAX_DEPTH)!r} nests deeper "
                                  f"than the limit of {MAX_DEPTH} levels")


def test_attribute_count_limit():
    assert len(flatten({f"k{n}": n for n in range(MAX_ATTRIBUTES)})) == MAX_ATTRIBUTES
    with pytest.raises(IngestError, match="more than 10000 attributes"):
        flatten({f"k{n}": n for n in range(MAX_ATTRIBUTES + 1)})


def test_name_length_limit():
    assert flatten({"x" * MAX_NAME_CHARS: 1}) == {"x" * MAX_NAME_CHARS: 1}
    with pytest.raises(IngestError, match="is 1025 characters; the limit is 1024"):
        flatten({"x" * (MAX_NAME_CHARS + 1): 1})


def test_lone_surrogates_are_refused_by_name():
    with pytest.raises(IngestError, match=r"attribute 'a\.b' holds '\\ud800', a lone UTF-16"):
        flatten({"a": {"b": "\ud800"}})


@pytest.mark.parametrize(("value", "expected"), [
    (1_700_000_000, 1_700_000_000_000), (1_700_000_000_000, 1_700_000_000_000),
    (1_700_000_000_000_000, 1_700_000_000_000), (1e300, None), (float("nan"), None),
    (float("inf"), None), (10**30, None), (9e17, None), ("\u00b2", None), ("12", 12_000)])
def test_epoch_coercion_stays_in_range(value, expected):
    assert coerce_epoch_ms(value) == expected


@pytest.mark.parametrize("record", [
    b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e400}', b'{"a": -9223372036854775809}',
    b'{"a": 18446744073709551616}', b'{"a": 1' + b"0" * 5_000 + b"}"])
def test_json_no_column_can_hold_is_kept_whole_as_text(record):
    [event] = events_from_record(record, 1_700_000_000_000, {}, 1 << 20)

    assert (event.timestamp, event.attributes["message"], event.dedup_key) == (
        1_700_000_000_000, record.decode(), None)
    assert "a number no column can keep exactly" in event.attributes["trailguard.parseError"]


def test_a_record_kept_as_text_keeps_its_time_and_identity():
    # The same CloudTrail record twice must be recognised even when kept as text.
    record = (b'{"eventVersion": "1.08", "eventTime": "2023-11-14T22:13:20Z", '
              b'"eventSource": "ec2.amazonaws.com", "eventID": "kept-1", '
              b'"requestParameters": {"n": 123456789012345678901234}}')
    first, = events_from_record(record, 1_700_000_900_000, {}, 1 << 20)
    again, = events_from_record(record, 1_700_000_999_000, {}, 1 << 20)

    assert first.timestamp == again.timestamp == 1_700_000_000_000
    assert first.dedup_key == again.dedup_key and first.dedup_key.startswith("ct:kept-1|")
    assert first.attributes["message"] == record.decode()


@pytest.mark.parametrize("moment", ['"9999-12-31T23:59:59-23:59"', '"0001-01-01T00:00:00+14:00"',
                                    "-99999999999999"])
def test_a_time_no_query_can_reach_gives_way_to_the_delivery_time(moment):
    [event] = events_from_record(b'{"time": ' + moment.encode() + b', "x": 1}',
                                 1_700_000_000_000, {}, 1 << 20)
    assert event.timestamp == 1_700_000_000_000


def test_a_byte_order_mark_before_a_record_is_not_part_of_it():
    [event] = events_from_record(b'\xef\xbb\xbf{"x": 1}', 1_700_000_000_000, {}, 1 << 20)
    assert (event.attributes["x"], event.attributes["message"]) == (1, '{"x": 1}')


def test_64_bit_integers_are_kept_as_json():
    [event] = events_from_record(b'{"a": 18446744073709551615, "b": -9223372036854775808}',
                                 1_700_000_000_000, {}, 1 << 20)

    assert event.attributes == {"a": "18446744073709551615", "b": "-9223372036854775808",
                                "message": '{"a": 18446744073709551615, "b": -9223372036854775808}'}


@pytest.mark.parametrize(("document", "expected"), [
    ({"": 1, "b": {"": 2}, "c": ""}, {"b.": 2, "c": ""}), ({"": {"a": 1}}, {"a": 1}),
    ({"": "x"}, {}), ({"a": "é", "ü": [None]}, {"a": "é", "ü": "[null]"})])
def test_empty_and_non_ascii_names(document, expected):
    assert flatten(document) == expected
