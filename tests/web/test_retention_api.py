"""`GET /api/v1/retention`: the settings and what the last pass removed, behind the API key."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.testclient import TestClient

from trailguard.config import Config
from trailguard.events import LOG, Event
from trailguard.store import DuckDBStore
from trailguard.store.retention import DAY_MS
from trailguard.web.app import create_app

API_KEY = "retention-api-key-0123"


def test_retention_settings_and_last_pass_are_shown(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path)
    now = int(time.time() * 1000)
    store.write([Event(LOG, now - 40 * DAY_MS, {"message": "old"}, "k:old"),
                 Event(LOG, now - DAY_MS, {"message": "new"}, "k:new")])
    config = Config(data_dir=tmp_path, firehose_access_key="f" * 16, api_key=API_KEY,
                    retention_days={LOG: 30.0}, ingest_decode_workers=0)
    try:
        with TestClient(create_app(config, store)) as client:  # runs the first pass
            assert client.get("/api/v1/retention").status_code == 401
            assert client.get("/api/v1/retention",
                              headers={"X-Api-Key": "wrong-key-0123456"}).status_code == 403
            for _ in range(100):
                answer = client.get("/api/v1/retention", headers={"X-Api-Key": API_KEY}).json()
                if answer["lastPass"]:
                    break
                time.sleep(0.05)
    finally:
        store.close()

    assert answer["retentionDays"] == {"Log": 30.0}
    assert answer["otherEventTypes"] == "kept forever"
    assert answer["intervalSeconds"] == 3600.0
    assert answer["lastPass"]["removed"] == {"Log": 1, "(delivery keys)": 0}
    assert abs(answer["lastPass"]["atMs"] - now) < 60_000
