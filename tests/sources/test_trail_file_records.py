"""One trail file's records: odd ones are kept on their own, the others stored as usual."""

from __future__ import annotations

import gzip

from trailguard.sources.trail_files import read_trail_file

GOOD = ('{"eventTime": "2026-12-01T00:00:01Z", "eventID": "good-1", '
        '"eventSource": "iam.amazonaws.com", "eventName": "ListUsers"}')


def test_a_lone_surrogate_and_a_huge_integer_do_not_cost_the_file() -> None:
    odd = ('{"eventTime": "2026-12-01T00:00:02Z", "eventID": "odd-1", '
           '"eventSource": "iam.amazonaws.com", "userAgent": "\\ud800"}')
    big = ('{"eventTime": "2026-12-01T00:00:03Z", "eventID": "big-1", '
           '"eventSource": "s3.amazonaws.com", "bytes": 1000000000000000000000000000000}')
    raw = gzip.compress(f'{{"Records": [{GOOD}, {odd}, {big}]}}'.encode())

    trail = read_trail_file(raw, "AWSLogs/111122223333/CloudTrail/us-east-1/f.json.gz", 7)

    assert trail.problem is None
    names = [event.attributes.get("eventName") for event in trail.events]
    assert names == ["ListUsers", None, None]
    assert "lone UTF-16 surrogate" in trail.events[1].attributes["trailguard.parseError"]
    assert trail.events[2].attributes["bytes"] == "1000000000000000000000000000000"


def test_a_file_that_is_not_json_is_a_problem_not_an_error() -> None:
    trail = read_trail_file(b"{not json", "AWSLogs/x.json", 7)
    assert trail.events == [] and trail.problem == "not JSON (not one JSON document)"
