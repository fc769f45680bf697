"""A real `trailguard serve` polls AWS on its own (no `poll --once`): LookupEvents and
GuardDuty from the local fake, trail files from moto's S3, all over HTTP on 127.0.0.1,
while the Log API takes deliveries. A restart resumes from the checkpoints and stores
nothing twice."""

from __future__ import annotations

import gzip
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from live_server import Server, start_server
from sources.fake_aws import FakeAws
from sources.support import sample_records

pytestmark = pytest.mark.e2e

ACCOUNT = "111122223333"
REGION = "us-east-1"
LOOKUP = f"cloudtrail {ACCOUNT} {REGION}"
FINDINGS = f"guardduty {ACCOUNT} {REGION}"
OVERLAP_MS = 15 * 60_000


def seconds_ago(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() - seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def records(samples: Path, offset: int, ages_s: list[int]) -> list[dict[str, Any]]:
    chosen = sample_records(samples)[offset:offset + len(ages_s)]
    return [{**record, "recipientAccountId": ACCOUNT, "awsRegion": REGION,
             "eventTime": seconds_ago(age)} for record, age in zip(chosen, ages_s, strict=True)]


class Running:
    """A server whose output is read as it comes, so its pipe never fills up."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.server.process.stdout:
            self.lines.append(line)

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        headers = {"X-Api-Key": key or self.server.api_key}
        return httpx.get(f"{self.server.base_url}{path}", headers=headers, timeout=10)

    def status(self) -> dict[str, Any]:
        response = self.get("/api/v1/sources")
        assert response.status_code == 200, response.text
        return response.json()

    def sources(self) -> dict[str, dict[str, Any]]:
        return {entry["source"]: entry for entry in self.status()["sources"]}

    def stop(self) -> tuple[int, float]:
        """SIGTERM; the exit status and how long the server took to exit."""
        started = time.monotonic()
        self.server.process.send_signal(signal.SIGTERM)
        code = self.server.process.wait(timeout=30)
        took = time.monotonic() - started
        self._reader.join(timeout=10)
        return code, took


def wait_until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


@pytest.fixture
def trail_bucket(aws_env: dict[str, str], samples: Path) -> str:
    """A moto bucket holding one CloudTrail file of 3 records."""
    name = f"trail-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    day = datetime.now(UTC).strftime("%Y/%m/%d")
    body = gzip.compress(json.dumps({"Records": records(samples, 20, [2400, 2300, 2200])})
                         .encode())
    s3.put_object(Bucket=name, Body=body, Key=f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{day}/"
                  f"{ACCOUNT}_CloudTrail_{REGION}_{day.replace('/', '')}T1200Z_e2e.json.gz")
    return name


@pytest.fixture
def serve(tmp_path: Path, trail_bucket: str) -> Iterator[Callable[[], Running]]:
    """Start `trailguard serve` on one data directory, polling every second."""
    sources = {"accounts": [{"name": "a", "profile": "account-a", "account_id": ACCOUNT,
                             "regions": [REGION]}],
               "cloudtrail_api": {"backfill": "2h", "overlap": "15m"},
               "guardduty": {"backfill": "1d"},
               "cloudtrail_buckets": [{"bucket": trail_bucket, "account": "a"}],
               "interval": "1s"}
    started: list[Running] = []

    def start() -> Running:
        server = start_server(tmp_path / "data", extra_env={
            "TRAILGUARD_SOURCES": json.dumps(sources), "TRAILGUARD_LOG_LEVEL": "info"})
        started.append(Running(server))
        return started[-1]

    yield start
    for running in started:
        if running.server.process.poll() is None:
            running.server.process.kill()
            running.server.process.wait()


def test_serve_polls_on_its_own_shows_status_and_resumes_after_restart(
        serve: Callable[[], Running], fake_aws: FakeAws, samples: Path,
        tmp_path: Path) -> None:
    fake_aws.state.add_records(ACCOUNT, REGION, records(samples, 0, [3000, 2900, 2800, 120, 90]))
    fake_aws.state.put_finding(ACCOUNT, REGION, "detector-1", {
        "id": "finding-e2e-1", "type": "Recon:EC2/PortProbeUnprotectedPort", "severity": 2.0,
        "accountId": ACCOUNT, "region": REGION, "schemaVersion": "2.0",
        "createdAt": seconds_ago(900), "updatedAt": seconds_ago(900),
        "service": {"serviceName": "guardduty", "count": 1, "archived": False}})
    first = serve()
    cloudtrail = "FROM InfrastructureEvent SELECT count(*) WHERE provider = 'CloudTrail' " \
                 "SINCE 1 day ago"
    findings = "FROM Log SELECT count(*) WHERE source = 'aws.guardduty' SINCE 1 day ago"
    wait_until(lambda: first.server.count(cloudtrail) == 8)

    # New events appear without anyone running `poll`, beside Log API deliveries.
    fake_aws.state.add_records(ACCOUNT, REGION, records(samples, 5, [30, 20]))
    for batch in range(5):
        answer = httpx.post(f"{first.server.base_url}/log/v1",
                            headers={"Api-Key": first.server.firehose_key},
                            json=[{"logs": [{"message": f"e2e-{batch}-{n}", "origin": "e2e"}
                                            for n in range(20)]}], timeout=30)
        assert answer.status_code == 202
    wait_until(lambda: first.server.count(cloudtrail) == 10)
    wait_until(lambda: first.status()["polls_completed"] >= 3)
    status = first.status()
    sources = {entry["source"]: entry for entry in status["sources"]}
    refused = first.get("/api/v1/sources", key="not-the-api-key")
    logs_counted = first.server.count("FROM Log SELECT count(*) WHERE origin = 'e2e'")
    findings_counted = first.server.count(findings)
    code, took = first.stop()

    assert refused.status_code == 403
    assert logs_counted == 100 and findings_counted == 1
    assert list(sources) == ["credentials a", LOOKUP, FINDINGS, f"s3://{_bucket(sources)}/"]
    assert sources[LOOKUP]["totals"]["stored"] == 7
    assert sources[FINDINGS]["totals"]["stored"] == 1
    trail_files = sources[f"s3://{_bucket(sources)}/"]["totals"]
    assert (trail_files["stored"], trail_files["duplicates"], trail_files["failures"]) == (
        3, 0, 0)  # a file read once is never fetched again, so never a duplicate
    assert trail_files["runs"] >= 2
    assert all(entry["last_error"] is None for entry in sources.values())
    assert 15 <= sources[LOOKUP]["lag_seconds"] < 90
    assert status["interval_seconds"] == 1.0
    assert took < 10
    assert code in (0, 128 + signal.SIGTERM)
    output = "".join(first.lines)
    assert "msg=\"source run\" source=\"cloudtrail 111122223333 us-east-1\" stored=5" in output
    assert "source polling stopped" in output and "server stopped" in output
    assert "AWS sources:            1 account(s), 1 trail bucket(s), polled every 1 s; " \
           f"status at {first.server.base_url}/api/v1/sources" in output

    checkpoints = json.loads((tmp_path / "data" / "source-checkpoints.json").read_text())
    done_until = checkpoints[f"lookup-events|{ACCOUNT}|{REGION}"]["done_until"]
    calls_before = len(fake_aws.state.lookup_calls)
    second = serve()
    wait_until(lambda: second.status()["polls_completed"] >= 1)
    after = second.sources()
    counted_after = (second.server.count(cloudtrail), second.server.count(findings))
    second.stop()

    resumed = fake_aws.state.lookup_calls[calls_before]
    assert resumed.start_ms == done_until - OVERLAP_MS  # from the checkpoint, not the backfill
    assert counted_after == (10, 1)
    assert after[LOOKUP]["totals"]["stored"] == 0
    assert after[LOOKUP]["last_run"]["duplicates"] == 4  # the events inside the overlap
    assert after[FINDINGS]["last_run"] == {"stored": 0, "duplicates": 1, "skipped": 0}
    assert after[f"s3://{_bucket(after)}/"]["last_run"] == {"stored": 0, "duplicates": 0,
                                                            "skipped": 0}


def _bucket(sources: dict[str, Any]) -> str:
    return next(label for label in sources if label.startswith("s3://"))[5:-1]
