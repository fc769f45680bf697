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
