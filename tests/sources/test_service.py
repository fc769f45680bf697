"""The poll loop inside the server: real runner, real group-commit writer, real DuckDB,
AWS on 127.0.0.1 (the LookupEvents/GuardDuty fake and moto's S3), real threads."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from sources.fake_aws import FakeAws
from sources.support import count, sample_records

from trailguard.events import Event
from trailguard.ingest.documents import cloudtrail_event
from trailguard.ingest.flatten import flatten
from trailguard.sources import trail_files
from trailguard.sources.checkpoints import Checkpoints
from trailguard.sources.service import SourceService
from trailguard.sources.settings import parse_sources
from trailguard.sources.status import iso
from trailguard.store import DuckDBStore
from trailguard.store.base import Delivery
from trailguard.store.writer import GroupCommitWriter

ACCOUNT = "111122223333"
REGION = "us-east-1"
LOOKUP = f"cloudtrail {ACCOUNT} {REGION}"
FINDINGS = f"guardduty {ACCOUNT} {REGION}"


def settings(interval: str = "1h", **extra: Any) -> Any:
    return parse_sources({
        "accounts": [{"name": "a", "profile": "account-a", "account_id": ACCOUNT,
                      "regions": [REGION]}],
        "cloudtrail_api": {"backfill": "2h", "overlap": "15m"},
        "guardduty": {"backfill": "1d"}, "interval": interval, **extra})


def seconds_ago(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() - seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recent_records(samples: Path, ages_s: list[int], offset: int = 0) -> list[dict[str, Any]]:
    """Real sample records re-timed to `ages_s` seconds ago, for account a in us-east-1."""
    records = sample_records(samples)[offset:offset + len(ages_s)]
    return [{**record, "recipientAccountId": ACCOUNT, "awsRegion": REGION,
             "eventTime": seconds_ago(age)} for record, age in zip(records, ages_s, strict=True)]


def wait_until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def by_source(service: SourceService) -> dict[str, dict[str, Any]]:
    return {entry["source"]: entry for entry in service.status()["sources"]}


@pytest.fixture
def writer(store: DuckDBStore) -> Iterator[GroupCommitWriter]:
    opened = GroupCommitWriter(store)
    yield opened
    opened.close()


@pytest.fixture
def running(aws_env: dict[str, str], tmp_path: Path,
            writer: GroupCommitWriter) -> Iterator[Callable[..., SourceService]]:
    """Start a service with given settings; every started one is stopped afterwards."""
    started: list[SourceService] = []

    def start(config: Any) -> SourceService:
        service = SourceService(config, tmp_path / "data")
        service.start(writer)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def test_polls_store_each_event_once_and_status_counts_them(
        running: Callable[..., SourceService], fake_aws: FakeAws, samples: Path,
        store: DuckDBStore) -> None:
    # 4 events outside the 15-minute overlap, 3 inside it (read again by every poll)
    fake_aws.state.add_records(ACCOUNT, REGION, recent_records(
        samples, [1800, 1700, 1600, 1500, 300, 200, 100]))
    service = running(settings())
    wait_until(lambda: service.status()["polls_completed"] == 1)
    first = by_source(service)

    late = recent_records(samples, [60, 30], offset=7)
    fake_aws.state.add_records(ACCOUNT, REGION, late)
    service.poll_now()
    wait_until(lambda: service.status()["polls_completed"] == 2)
    second = by_source(service)
    status = service.status()

    assert list(second) == ["credentials a", LOOKUP, FINDINGS]
    assert first[LOOKUP]["last_run"] == {"stored": 7, "duplicates": 0, "skipped": 0}
    assert second[LOOKUP]["last_run"] == {"stored": 2, "duplicates": 3, "skipped": 0}
    assert second[LOOKUP]["totals"] == {"stored": 9, "duplicates": 3, "skipped": 0, "runs": 2,
                                        "failures": 0}
    assert (second[LOOKUP]["state"], second[LOOKUP]["last_error"]) == ("ok", None)
    assert second[LOOKUP]["newest_event_at"] == late[1]["eventTime"].replace("Z", ".000Z")
    assert 29 <= second[LOOKUP]["lag_seconds"] < 60
    assert second[FINDINGS]["totals"] == {"stored": 0, "duplicates": 0, "skipped": 0, "runs": 2,
                                          "failures": 0}
    assert second[FINDINGS]["newest_event_at"] is None
    assert (status["state"], status["interval_seconds"]) == ("waiting", 3600.0)
    assert status["last_poll"] == {**status["last_poll"], "stored": 2, "duplicates": 3,
                                   "failed": 0, "error": None}
    assert count(store, "a_provider = 'CloudTrail'") == 9


def test_interval_runs_polls_without_being_asked(
        running: Callable[..., SourceService], fake_aws: FakeAws, samples: Path,
        store: DuckDBStore) -> None:
    service = running(settings(interval="1s"))
    wait_until(lambda: service.status()["polls_completed"] >= 1)
    fake_aws.state.add_records(ACCOUNT, REGION, recent_records(samples, [120, 60]))
    started = time.monotonic()
    wait_until(lambda: count(store, "a_provider = 'CloudTrail'") == 2, timeout_s=10)
    arrived_after = time.monotonic() - started

    polls_before = service.status()["polls_completed"]
    started = time.monotonic()
    wait_until(lambda: service.status()["polls_completed"] >= polls_before + 3, timeout_s=10)
    three_polls = time.monotonic() - started

    assert arrived_after < 2.5  # at most one interval plus a poll
    assert 1.5 <= three_polls < 4.5  # start to start every second (poll times vary)
    assert by_source(service)[LOOKUP]["totals"]["stored"] == 2


def test_stop_is_prompt_even_in_a_throttling_backoff(
        running: Callable[..., SourceService], fake_aws: FakeAws, samples: Path,
        store: DuckDBStore, tmp_path: Path) -> None:
    fake_aws.state.add_records(ACCOUNT, REGION, recent_records(samples, [600]))
    fake_aws.state.throttle_page(ACCOUNT, REGION, page=1, times=8)  # backoff 1+2+4+... s
    service = running(settings())
    wait_until(lambda: any(call.throttled for call in fake_aws.state.lookup_calls))

    started = time.monotonic()
    stopped = service.stop()
    took = time.monotonic() - started
    status = service.status()

    assert stopped and took < 1.0
    assert status["state"] == "stopped"
    assert status["last_poll"]["error"] == "stopped before the poll finished"
    # the interrupted source is not left "running", nor counted as failed
    assert (by_source(service)[LOOKUP]["state"], by_source(service)[LOOKUP]["totals"]) == (
        "stopped", {"stored": 0, "duplicates": 0, "skipped": 0, "runs": 0, "failures": 0})
    assert status["last_poll"]["failed"] == 0
    assert count(store) == 0
    assert Checkpoints(tmp_path / "data").get(f"lookup-events|{ACCOUNT}|{REGION}") is None


def test_a_failing_source_is_reported_and_the_others_still_run(
        running: Callable[..., SourceService], fake_aws: FakeAws, samples: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    fake_aws.state.add_records(ACCOUNT, REGION, recent_records(samples, [600, 500]))
    config = settings(cloudtrail_buckets=[{"bucket": "no-such-trail-bucket", "account": "a"}])
    with caplog.at_level(logging.INFO, logger="trailguard"):
        service = running(config)
        wait_until(lambda: service.status()["polls_completed"] == 1)

    sources = by_source(service)
    bucket = sources["s3://no-such-trail-bucket/"]
    assert (bucket["state"], bucket["totals"]["failures"], bucket["last_success_at"]) == (
        "failed", 1, None)
    assert "NoSuchBucket" in bucket["last_error"]
    assert bucket["last_error_at"] == bucket["last_run_finished_at"]
    assert sources[LOOKUP]["last_run"] == {"stored": 2, "duplicates": 0, "skipped": 0}
    assert service.status()["last_poll"]["failed"] == 1
    runs = {record.fields["source"]: record for record in caplog.records  # type: ignore
            if record.getMessage() == "source run"}
    assert runs[LOOKUP].levelname == "INFO"
    assert (runs[LOOKUP].fields["stored"], runs[LOOKUP].fields["error"]) == (2, None)
    assert 499 <= runs[LOOKUP].fields["lag_s"] < 560
    assert runs["s3://no-such-trail-bucket/"].levelname == "WARNING"


def test_polls_share_the_writer_with_concurrent_ingest(
        running: Callable[..., SourceService], fake_aws: FakeAws, samples: Path,
        store: DuckDBStore, writer: GroupCommitWriter) -> None:
    """A 6-page backfill committed while another thread delivers like the receivers do."""
    records = sample_records(samples)
    fake_aws.state.add_records(ACCOUNT, REGION, [
        {**records[index % len(records)], "eventID": f"00000000-0000-4000-8000-{index:012d}",
         "recipientAccountId": ACCOUNT, "awsRegion": REGION,
         "eventTime": seconds_ago(3000 + index)} for index in range(290)])
    delivered: list[int] = []

    def ingest() -> None:
        for request in range(40):
            events = [Event("Log", int(time.time() * 1000), {"message": f"r{request}-{n}"})
                      for n in range(25)]
            delivered.append(writer.write(Delivery(events, f"request-{request}")).stored)

    service = running(settings())
    sender = threading.Thread(target=ingest)
    sender.start()
    wait_until(lambda: service.status()["polls_completed"] == 1)
    sender.join()

    assert sum(delivered) == 1000
    assert count(store, "event_type = 'Log'") == 1000
    assert count(store, "a_provider = 'CloudTrail'") == 290
    assert by_source(service)[LOOKUP]["last_run"] == {"stored": 290, "duplicates": 0, "skipped": 0}


def test_iso_times_keep_milliseconds() -> None:
    assert iso(1_699_999_200_007) == "2023-11-14T22:00:00.007Z"
    assert iso(None) is None


def test_a_crashing_source_is_finished_truthfully_in_status_and_log(
        running: Callable[..., SourceService], fake_aws: FakeAws, samples: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Anything a source raises (here: the strict record conversion meeting a 300-level
    record) fails that source; the next source runs and the status says so."""
    fake_aws.state.add_records(ACCOUNT, REGION, recent_records(samples, [600, 500]))
    records = sample_records(samples)
    poisoned = boto3.client("s3", region_name=REGION)
    bucket = f"poison-{uuid.uuid4().hex[:12]}"
    poisoned.create_bucket(Bucket=bucket)
    deep: dict[str, Any] = {}
    for _ in range(300):
        deep = {"a": deep}
    poisoned.put_object(Bucket=bucket, Key=f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2023/11/14/"
                        "x.json.gz", Body=gzip.compress(json.dumps(
                            {"Records": [{**records[0], "requestParameters": deep}]}).encode()))
    monkeypatch.setattr(trail_files, "cloudtrail_event", strict_ingest)
    config = settings(cloudtrail_buckets=[{"bucket": bucket, "account": "a"},
                                          {"bucket": "no-such-trail-bucket", "account": "a"}])
    with caplog.at_level(logging.INFO, logger="trailguard"):
        service = running(config)
        wait_until(lambda: service.status()["polls_completed"] == 1)

    sources, status = by_source(service), service.status()
    crashed = sources[f"s3://{bucket}/"]
    assert (crashed["state"], crashed["progress"], crashed["totals"]["failures"]) == (
        "failed", None, 1)
    assert crashed["last_error"].startswith("IngestError: attribute 'requestParameters.a.a")
    assert sources["s3://no-such-trail-bucket/"]["state"] == "failed"  # ran after it
    assert sources[LOOKUP]["last_run"] == {"stored": 2, "duplicates": 0, "skipped": 0}
    assert (status["last_poll"]["failed"], status["last_poll"]["error"]) == (2, None)
    logged = {(r.getMessage(), r.fields.get("source")): r for r in caplog.records  # type: ignore
              if r.getMessage() in ("source run", "source failed", "sources polled")}
    run = logged[("source run", f"s3://{bucket}/")]
    assert run.levelname == "WARNING"
    assert run.fields["error"] == crashed["last_error"]  # type: ignore
    failure = logged[("source failed", f"s3://{bucket}/")]
    assert "nests deeper than the limit" in failure.fields["traceback"]  # type: ignore
    assert logged[("sources polled", None)].fields["failed"] == 2  # type: ignore


def strict_ingest(record: dict[str, Any], **options: Any) -> Any:
    """The record conversion before ingest kept over-limit records as text: `flatten`'s
    IngestError escapes. It stands for any exception nobody foresaw."""
    flatten(record)
    return cloudtrail_event(record, **options)
