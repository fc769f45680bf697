"""CloudTrail log files from S3 (moto server) and SQS notices: BL-09, BL-10, BL-22."""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from sources.support import count, sample_records

from trailguard.sources.aws import AccountSession
from trailguard.sources.checkpoints import Checkpoints
from trailguard.sources.settings import TrailBucketSource
from trailguard.sources.trail_files import TrailFileReader
from trailguard.store import DuckDBStore

ACCOUNT = "111122223333"
DAY = "AWSLogs/111122223333/CloudTrail/us-east-1/2023/11/14"
DIGEST = {"awsAccountId": "111122223333", "digestStartTime": "2023-11-14T21:00:00Z",
          "digestEndTime": "2023-11-14T22:00:00Z", "digestS3Bucket": "example", "logFiles": []}
INSIGHT = {"eventVersion": "1.08", "eventTime": "2023-11-14T22:00:00Z",
           "awsRegion": "us-east-1", "eventID": "11111111-aaaa-bbbb-cccc-000000000010",
           "eventType": "AwsCloudTrailInsight", "recipientAccountId": "111122223333",
           "sharedEventID": "22222222-aaaa-bbbb-cccc-000000000010",
           "insightDetails": {"state": "Start", "eventSource": "ec2.amazonaws.com",
                              "eventName": "RunInstances", "insightType": "ApiCallRateInsight",
                              "insightContext": {"statistics": {"baseline": {"average": 0.1},
                                                                "insight": {"average": 5.0}}}},
           "eventCategory": "Insight"}


@pytest.fixture
def bucket(aws_env: dict[str, str]) -> str:
    name = f"trail-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def account(aws_env: dict[str, str]) -> AccountSession:
    return AccountSession("a", ACCOUNT, boto3.Session(profile_name="account-a"), ["us-east-1"])


def put(bucket: str, key: str, document: Any) -> None:
    body = gzip.compress(json.dumps(document).encode())
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=bucket, Key=key, Body=body)


def reader(store: DuckDBStore, tmp_path: Path) -> TrailFileReader:
    return TrailFileReader(store, Checkpoints(tmp_path / "data"))


def test_bl09_digest_and_empty_files_are_skipped_quietly(
        bucket: str, account: AccountSession, samples: Path, store: DuckDBStore,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = sample_records(samples)[:2]
    put(bucket, f"{DAY}/111122223333_CloudTrail_us-east-1_20231114T2200Z_abc.json.gz",
        {"Records": records})
    put(bucket, "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2023/11/14/111122223333_"
        "CloudTrail-Digest_us-east-1_example_us-east-1_20231114T220000Z.json.gz", DIGEST)
    put(bucket, f"{DAY}/111122223333_CloudTrail_us-east-1_20231114T2205Z_empty.json.gz",
        {"Records": []})
    source = TrailBucketSource(bucket=bucket, account="a")

    trailguard_log = logging.getLogger("trailguard")
    trailguard_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="trailguard"):
            first = reader(store, tmp_path).poll(source, account)
            again = reader(store, tmp_path).poll(source, account)
    finally:
        trailguard_log.removeHandler(caplog.handler)

    assert (first.stored, first.pages, first.skipped) == (2, 2, 0)
    assert (again.stored, again.pages) == (0, 0)
    assert count(store, "a_provider = 'CloudTrail'") == 2
    assert Checkpoints(tmp_path / "data").get(
        f"trail-files|{bucket}|AWSLogs/111122223333/CloudTrail/us-east-1/") == {
        "days": {"2023/11/14": [
            "111122223333_CloudTrail_us-east-1_20231114T2200Z_abc.json.gz",
            "111122223333_CloudTrail_us-east-1_20231114T2205Z_empty.json.gz"]}}
    ours = {(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("trail")}
    assert ours == {("INFO", "trail files read")}


def test_bl10_insights_file_is_stored_without_user_identity(
        bucket: str, account: AccountSession, store: DuckDBStore, tmp_path: Path) -> None:
    put(bucket, "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2023/11/14/"
        "111122223333_CloudTrail-Insight_us-east-1_20231114T2200Z_x.json.gz",
        {"Records": [INSIGHT]})
    result = reader(store, tmp_path).poll(TrailBucketSource(bucket=bucket, account="a"), account)
    assert (result.stored, result.skipped) == (1, 0)
    rows = store.read("SELECT a_eventtype, a_useridentity__arn, a_provider, timestamp "
                      "FROM events", {}).rows
    assert rows == [("AwsCloudTrailInsight", None, "CloudTrail", 1699999200000)]


def test_bl22_progress_is_per_region_so_new_files_elsewhere_are_read(
        bucket: str, account: AccountSession, samples: Path, store: DuckDBStore,
        tmp_path: Path) -> None:
    records = sample_records(samples)
    base = "AWSLogs/111122223333/CloudTrail"
    put(bucket, f"{base}/us-east-2/2023/11/20/111122223333_CloudTrail_us-east-2_"
        "20231120T1000Z_a.json.gz", {"Records": records[0:3]})
    source = TrailBucketSource(bucket=bucket, account="a")
    assert reader(store, tmp_path).poll(source, account).stored == 3

    put(bucket, f"{base}/ap-east-1/2023/11/21/111122223333_CloudTrail_ap-east-1_"
        "20231121T1000Z_b.json.gz", {"Records": records[3:5]})
    put(bucket, f"{base}/us-east-1/2023/11/21/111122223333_CloudTrail_us-east-1_"
        "20231121T1000Z_c.json.gz", {"Records": records[5:9]})
    second = reader(store, tmp_path).poll(source, account)
    nothing_new = reader(store, tmp_path).poll(source, account)

    assert (second.stored, second.pages, second.duplicates) == (6, 2, 0)
    assert (nothing_new.stored, nothing_new.pages) == (0, 0)
    assert count(store) == 9
    assert Checkpoints(tmp_path / "data").keys() == [
        f"trail-files|{bucket}|{base}/ap-east-1/", f"trail-files|{bucket}|{base}/us-east-1/",
        f"trail-files|{bucket}|{base}/us-east-2/"]


def test_late_file_earlier_in_the_same_day_is_still_read(
        bucket: str, account: AccountSession, samples: Path, store: DuckDBStore,
        tmp_path: Path) -> None:
    records = sample_records(samples)
    put(bucket, f"{DAY}/111122223333_CloudTrail_us-east-1_20231114T2200Z_zzz.json.gz",
        {"Records": records[0:2]})
    source = TrailBucketSource(bucket=bucket, account="a")
    reader(store, tmp_path).poll(source, account)
    put(bucket, f"{DAY}/111122223333_CloudTrail_us-east-1_20231114T2200Z_aaa.json.gz",
        {"Records": records[2:5]})
    assert reader(store, tmp_path).poll(source, account).stored == 3
    assert count(store) == 5


def test_organization_trail_prefix_with_custom_prefix(
        bucket: str, account: AccountSession, samples: Path, store: DuckDBStore,
        tmp_path: Path) -> None:
    records = sample_records(samples)
    for member, part in (("111122223333", records[0:4]), ("444455556666", records[4:7])):
        put(bucket, f"org/AWSLogs/o-exampleorg1/{member}/CloudTrail/eu-west-1/2023/11/14/"
            f"{member}_CloudTrail_eu-west-1_20231114T2200Z_x.json.gz", {"Records": part})
    source = TrailBucketSource(bucket=bucket, account="a", prefix="org/")
    assert reader(store, tmp_path).poll(source, account).stored == 7
    assert Checkpoints(tmp_path / "data").keys() == [
        f"trail-files|{bucket}|org/AWSLogs/o-exampleorg1/111122223333/CloudTrail/eu-west-1/",
        f"trail-files|{bucket}|org/AWSLogs/o-exampleorg1/444455556666/CloudTrail/eu-west-1/"]


def test_sqs_notifications_drive_reading_and_are_deleted(
        bucket: str, account: AccountSession, samples: Path, store: DuckDBStore,
        tmp_path: Path) -> None:
    records = sample_records(samples)
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=f"q-{bucket}")["QueueUrl"]
    log_key = f"{DAY}/111122223333_CloudTrail_us-east-1_20231114T2200Z_n.json.gz"
    digest_key = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2023/11/14/d.json.gz"
    put(bucket, log_key, {"Records": records[0:4]})
    put(bucket, digest_key, DIGEST)
    for key in (log_key, digest_key):
        notice = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                               "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(notice))
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(
        {"Type": "Notification", "Message": json.dumps({"s3Bucket": bucket,
                                                        "s3ObjectKey": [log_key]})}))

    source = TrailBucketSource(bucket=bucket, account="a", queue_url=queue_url)
    result = reader(store, tmp_path).poll(source, account)

    assert (result.stored, result.duplicates, result.pages) == (4, 4, 2)
    assert count(store) == 4
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                            "ApproximateNumberOfMessagesNotVisible"])
    assert attributes["Attributes"] == {"ApproximateNumberOfMessages": "0",
                                        "ApproximateNumberOfMessagesNotVisible": "0"}


FOLDER = "AWSLogs/111122223333/CloudTrail/us-east-1/"


def trail_key(day: str, name: str) -> str:
    """A CloudTrail-style key in the us-east-1 folder, `day` like `2023/11/14`."""
    return f"{FOLDER}{day}/111122223333_CloudTrail_us-east-1_{day.replace('/', '')}_{name}.json.gz"


def test_file_arriving_late_into_the_previous_day_is_read_once(
        bucket: str, account: AccountSession, samples: Path, store: DuckDBStore,
        tmp_path: Path) -> None:
    records = sample_records(samples)
    source = TrailBucketSource(bucket=bucket, account="a", lookback_days=1)
    put(bucket, trail_key("2023/11/14", "T2350Z_a"), {"Records": records[0:2]})
    put(bucket, trail_key("2023/11/15", "T0005Z_b"), {"Records": records[2:4]})
    assert reader(store, tmp_path).poll(source, account).stored == 4

    # 23:55 of the 14th, delivered after the 15th's first file was read
    put(bucket, trail_key("2023/11/14", "T2355Z_late"), {"Records": records[4:7]})
    late = reader(store, tmp_path).poll(source, account)
    again = reader(store, tmp_path).poll(source, account)

    assert (late.stored, late.duplicates, late.pages) == (3, 0, 1)
    assert (again.stored, again.duplicates, again.pages) == (0, 0, 0)
    assert count(store) == 7
    assert Checkpoints(tmp_path / "data").get(f"trail-files|{bucket}|{FOLDER}") == {"days": {
        "2023/11/14": [trail_key("2023/11/14", n).rsplit("/", 1)[1] for n in ("T2350Z_a",
                                                                          "T2355Z_late")],
        "2023/11/15": [trail_key("2023/11/15", "T0005Z_b").rsplit("/", 1)[1]]}}


def test_days_older_than_the_lookback_are_forgotten_and_not_listed(
        bucket: str, account: AccountSession, samples: Path, store: DuckDBStore,
        tmp_path: Path) -> None:
    records = sample_records(samples)
    source = TrailBucketSource(bucket=bucket, account="a", lookback_days=1)
    put(bucket, trail_key("2023/11/14", "T1000Z_a"), {"Records": records[0:1]})
    put(bucket, trail_key("2023/11/17", "T1000Z_b"), {"Records": records[1:2]})
    assert reader(store, tmp_path).poll(source, account).stored == 2

    # The documented limit: a file later than `lookback_days` is not found by listing.
    put(bucket, trail_key("2023/11/15", "T1000Z_too_late"), {"Records": records[2:3]})
    put(bucket, trail_key("2023/11/16", "T1000Z_in_time"), {"Records": records[3:4]})
    second = reader(store, tmp_path).poll(source, account)

    assert (second.stored, second.pages) == (1, 1)
    saved = Checkpoints(tmp_path / "data").get(f"trail-files|{bucket}|{FOLDER}")
    assert sorted(saved["days"]) == ["2023/11/16", "2023/11/17"]


def test_checkpoint_from_before_lookback_is_understood(
        bucket: str, account: AccountSession, samples: Path, store: DuckDBStore,
        tmp_path: Path) -> None:
    records = sample_records(samples)
    read_before = trail_key("2023/11/14", "T1000Z_a")
    put(bucket, read_before, {"Records": records[0:2]})
    put(bucket, trail_key("2023/11/14", "T1100Z_b"), {"Records": records[2:3]})
    Checkpoints(tmp_path / "data").save(f"trail-files|{bucket}|{FOLDER}",
                                        {"day": "2023/11/14", "read": [read_before]})

    result = reader(store, tmp_path).poll(TrailBucketSource(bucket=bucket, account="a"),
                                          account)

    assert (result.stored, result.pages) == (1, 1)
    assert count(store) == 1
