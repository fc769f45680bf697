"""`/api/v1/sources` in-process: the real app runs the real pollers (AWS on 127.0.0.1)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sources.conftest import aws_env, fake_aws, moto_url  # noqa: F401 - fixtures
from sources.fake_aws import FakeAws
from starlette.testclient import TestClient

from trailguard.config import Config
from trailguard.sources.service import SourceService
from trailguard.sources.settings import parse_sources
from trailguard.store import DuckDBStore
from trailguard.web.app import create_app

API_KEY = "sources-api-key-0123456789"
ACCOUNT = "111122223333"
SOURCES = {"accounts": [{"name": "a", "profile": "account-a", "account_id": ACCOUNT,
                         "regions": ["us-east-1"]}],
           "cloudtrail_api": {"backfill": "1h"}, "guardduty": {"enabled": False},
           "interval": "1h"}


def wait_until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def record(event_id: str, seconds_ago: int) -> dict[str, object]:
    moment = datetime.fromtimestamp(time.time() - seconds_ago, tz=UTC)
    return {"eventID": event_id, "eventName": "ListBuckets", "eventSource": "s3.amazonaws.com",
            "awsRegion": "us-east-1", "recipientAccountId": ACCOUNT,
            "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}


def polls(client: TestClient) -> int:
    return client.get("/api/v1/sources", headers={"X-Api-Key": API_KEY}).json()[
        "polls_completed"]


def test_status_needs_the_api_key_and_shows_each_run(
        aws_env: dict[str, str], fake_aws: FakeAws, tmp_path: Path) -> None:  # noqa: F811
    fake_aws.state.add_records(ACCOUNT, "us-east-1", [record("e-1", 600), record("e-2", 300)])
    config = Config(data_dir=tmp_path, api_key=API_KEY, firehose_access_key="f" * 20,
                    sources=parse_sources(SOURCES))
    store = DuckDBStore(tmp_path)
    service = SourceService(config.sources, tmp_path)
    try:
        with TestClient(create_app(config, store, sources=service)) as client:
            wait_until(lambda: polls(client) == 1)
            missing = client.get("/api/v1/sources")
            wrong = client.get("/api/v1/sources", headers={"X-Api-Key": "wrong-key"})
            poll_refused = client.post("/api/v1/sources/poll")
            fake_aws.state.add_records(ACCOUNT, "us-east-1", [record("e-3", 60)])
            poll = client.post("/api/v1/sources/poll", headers={"Api-Key": API_KEY})
            wait_until(lambda: polls(client) == 2)
            body = client.get("/api/v1/sources", headers={"X-Api-Key": API_KEY}).json()
        stopped = service.status()["state"]
    finally:
        store.close()

    assert (missing.status_code, missing.json()) == (401, {"error": "missing X-Api-Key header"})
    assert (wrong.status_code, wrong.json()) == (403, {"error": "X-Api-Key rejected"})
    assert poll_refused.status_code == 401
    assert (poll.status_code, poll.json()["status"]) == (202, "poll requested")
    lookup = {entry["source"]: entry for entry in body["sources"]}[
        f"cloudtrail {ACCOUNT} us-east-1"]
    assert lookup["totals"] == {"stored": 3, "duplicates": 2, "skipped": 0, "runs": 2,
                                "failures": 0}
    # the 15 min overlap is read again
    assert lookup["last_run"] == {"stored": 1, "duplicates": 2, "skipped": 0}
    assert 55 <= lookup["lag_seconds"] < 120
    assert [entry["source"] for entry in body["sources"]] == [
        "credentials a", f"cloudtrail {ACCOUNT} us-east-1"]
    assert (body["enabled"], body["polls_completed"], body["interval_seconds"]) == (
        True, 2, 3600.0)
    assert stopped == "stopped"  # the app stopped the pollers on shutdown


def test_without_sources_the_api_says_how_to_configure_them(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path, api_key=API_KEY, firehose_access_key="f" * 20)
    store = DuckDBStore(tmp_path)
    try:
        with TestClient(create_app(config, store)) as client:
            status = client.get("/api/v1/sources", headers={"X-Api-Key": API_KEY})
            poll = client.post("/api/v1/sources/poll", headers={"X-Api-Key": API_KEY})
    finally:
        store.close()
    assert status.status_code == 200
    assert (status.json()["enabled"], status.json()["sources"]) == (False, [])
    assert "docs/aws-sources.md" in status.json()["hint"]
    assert poll.status_code == 409
