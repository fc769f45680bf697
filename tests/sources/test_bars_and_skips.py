"""What a poll reports: progress bars end at the summary's numbers, malformed trail
files are counted (with the last reason) in the status, and only real event times
count for the lag. Real runner, StatusBoard, rich bars and DuckDB; S3/SQS in moto."""

from __future__ import annotations

import gzip
import io
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console
from rich.progress import Progress
from sources.fake_aws import FakeAws
from sources.support import count, sample_records

from trailguard.sources.aws import Pacer
from trailguard.sources.command import BAR_COLUMNS, PollBars
from trailguard.sources.runner import SourceRunner
from trailguard.sources.settings import parse_sources
from trailguard.sources.status import StatusBoard
from trailguard.store import DuckDBStore

ACCOUNT, REGION = "111122223333", "us-east-1"
FOLDER = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2023/11/14/"


def bucket_with(files: dict[str, bytes]) -> str:
    name = f"trail-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    for file_name, body in files.items():
        s3.put_object(Bucket=name, Key=f"{FOLDER}{file_name}", Body=body)
    return name


def trail_file(records: list[Any]) -> bytes:
    return gzip.compress(json.dumps({"Records": records}).encode())


def runner(store: DuckDBStore, tmp_path: Path, pacer: Pacer, lookup: bool,
           buckets: list[dict[str, Any]]) -> SourceRunner:
    settings = parse_sources({
        "accounts": [{"name": "a", "profile": "account-a", "account_id": ACCOUNT,
                      "regions": [REGION]}],
        "cloudtrail_api": {"enabled": lookup, "backfill": "2h"}, "guardduty": {"enabled": False},
        "cloudtrail_buckets": [{"account": "a", **bucket} for bucket in buckets]})
    return SourceRunner(settings, store, tmp_path / "data", pacer=pacer)


def test_bars_end_with_the_summarys_counts_queue_and_failures_included(
        aws_env: dict[str, str], fake_aws: FakeAws, samples: Path, store: DuckDBStore,
        tmp_path: Path, pacer: Pacer) -> None:
    records = sample_records(samples)
    bucket = bucket_with({"a.json.gz": trail_file(records[0:3]),
                          "b.json.gz": trail_file(records[3:5])})
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=f"q-{bucket}")["QueueUrl"]
    for name in ("a", "b"):
        created = {"name": bucket}, {"key": f"{FOLDER}{name}.json.gz"}
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [{
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": created[0], "object": created[1]}}]}))
    # malformed: used to raise KeyError out of the bucket's run
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(
        {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {}}}]}))
    polling = runner(store, tmp_path, pacer, lookup=False, buckets=[
        {"bucket": bucket, "queue_url": queue_url}, {"bucket": "no-such-trail-bucket"}])

    with Progress(*BAR_COLUMNS, console=Console(file=io.StringIO(), width=200)) as progress:
        bars = PollBars(progress)
        summary = polling.poll_once(bars.start, bars.finished)
    tasks = {task.description: task for task in progress.tasks}

    assert [(run.label, run.stored, bool(run.error)) for run in summary.runs] == [
        ("credentials a", 0, False), (f"s3://{bucket}/", 5, False),
        ("s3://no-such-trail-bucket/", 0, True)]
    assert (tasks["credentials a"].percentage, tasks["credentials a"].fields["events"]) == (
        100.0, 0)
    assert (tasks[f"s3://{bucket}/"].percentage, tasks[f"s3://{bucket}/"].fields["events"]) == (
        100.0, 5)
    assert tasks["s3://no-such-trail-bucket/ (failed)"].fields["events"] == 0
    assert sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_skipped_files_and_records_are_in_the_status_and_lag_uses_real_times(
        aws_env: dict[str, str], samples: Path, store: DuckDBStore, tmp_path: Path,
        pacer: Pacer) -> None:
    records = sample_records(samples)
    bucket = bucket_with({
        "a_good.json.gz": trail_file([{**records[0], "eventTime": "2023-11-14T22:00:00Z"}]),
        "b_bad_time.json.gz": trail_file([{**records[1], "eventTime": "garbage"}]),
        "c_not_json.json.gz": gzip.compress(b"this is not json"),
        "d_no_records.json.gz": gzip.compress(b'{"foo": 1}'),
        "e_mixed.json.gz": trail_file([1, "x", {**records[2],
                                                "eventTime": "2023-11-14T21:00:00Z"}]),
    })
    board = StatusBoard(60_000)
    summary = runner(store, tmp_path, pacer, lookup=False, buckets=[{"bucket": bucket}]) \
        .poll_once(board.source_started, board.source_finished)
    status = {entry["source"]: entry for entry in board.snapshot(0)["sources"]}[
        f"s3://{bucket}/"]

    assert (status["state"], status["last_run"]) == (
        "ok", {"stored": 3, "duplicates": 0, "skipped": 4})
    assert status["totals"]["skipped"] == 4
    assert status["last_skip"]["reason"] == (
        f"s3://{bucket}/{FOLDER}e_mixed.json.gz: 2 record(s) not a JSON object")
    # b_bad_time is stored at its arrival time, which is not an event time
    assert status["newest_event_at"] == "2023-11-14T22:00:00.000Z"
    assert count(store) == 3
    assert f"s3://{bucket}/: 3 new, 4 skipped (last: s3://{bucket}/{FOLDER}e_mixed" \
        in summary.describe()
    board.poll_finished(0, 0, summary)
    assert board.snapshot(0)["last_poll"]["skipped"] == 4
