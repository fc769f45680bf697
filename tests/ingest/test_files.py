"""`trailguard import` file decoding: saved Firehose bodies keep every record."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from trailguard.ingest.files import read_file


def test_a_saved_firehose_body_with_a_bad_record_keeps_the_good_ones(tmp_path: Path) -> None:
    good = [{"message": f"line {n}", "timestamp": 1_700_000_000_000 + n} for n in range(3)]
    records = [{"data": base64.b64encode(json.dumps(doc).encode()).decode()} for doc in good]
    records.insert(1, {"data": "eyJjdXQgb2Zm"[:-3]})  # cut-off base64
    saved = tmp_path / "delivery.json"
    saved.write_text(json.dumps({"requestId": "saved-1", "timestamp": 1_700_000_000_000,
                                 "records": records}))

    events = read_file(saved).events

    assert [event.attributes["message"] for event in events] == [
        "line 0", "eyJjdXQgb", "line 1", "line 2"]
    assert events[1].attributes["trailguard.parseError"].startswith(
        "records[1].data is not valid base64")
    assert "trailguard.parseError" not in events[0].attributes


def deep(levels: int) -> dict:
    value: dict = {"a": 1}
    for _ in range(levels):
        value = {"n": value}
    return value


def test_a_record_past_a_limit_is_kept_as_text_and_the_file_imports(tmp_path: Path) -> None:
    good = {"eventTime": "2026-12-01T00:00:01Z", "eventID": "good-1", "eventSource":
            "iam.amazonaws.com", "eventName": "ListUsers"}
    odd = {"eventTime": "2026-12-01T00:00:02Z", "eventID": "deep-1", "eventSource":
           "iam.amazonaws.com", "eventName": "Deep", "requestParameters": deep(300)}
    surrogate = {**good, "eventID": "odd-2", "userAgent": "\ud800"}
    trail = tmp_path / "trail.json"
    trail.write_text(json.dumps({"Records": [good, odd, surrogate]}))

    events = read_file(trail).events

    assert [event.attributes.get("eventName") for event in events] == ["ListUsers", None, None]
    for kept, reason in ((events[1], "nests deeper than the limit of 100 levels"),
                         (events[2], "lone UTF-16 surrogate")):
        assert kept.event_type == "InfrastructureEvent"
        assert kept.attributes["provider"] == "CloudTrail"
        assert reason in kept.attributes["trailguard.parseError"]
        assert json.loads(kept.attributes["message"])["eventID"] in ("deep-1", "odd-2")
        assert kept.timestamp > 0 and kept.dedup_key.startswith("ct:")
    # The same odd record read again has the same identity, so polling twice stores it once.
    assert read_file(trail).events[1].dedup_key == events[1].dedup_key


def test_values_no_column_holds_keep_their_spelling_in_files(tmp_path: Path) -> None:
    trail = tmp_path / "trail.json"
    trail.write_text('{"Records": [{"eventTime": "2026-12-01T00:00:01Z", "eventID": "big-1", '
                     '"eventSource": "s3.amazonaws.com", "size": 1000000000000000000000000000000, '
                     '"ratio": NaN, "huge": 1e400}]}')

    [event] = read_file(trail).events

    assert (event.attributes["size"], event.attributes["ratio"], event.attributes["huge"]) == (
        "1000000000000000000000000000000", "NaN", "1e400")
    assert "trailguard.parseError" not in event.attributes
