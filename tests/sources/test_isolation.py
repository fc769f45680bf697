"""One bad input fails one source: a poisoned trail file, a hand-corrupted checkpoint.
`trailguard poll --once` end to end, S3 in moto and LookupEvents/GuardDuty in the fake,
all on 127.0.0.1; every later source still runs and the summary says what happened."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from sources.fake_aws import FakeAws
from sources.support import sample_records

from trailguard.cli import main
from trailguard.ingest.documents import cloudtrail_event
from trailguard.ingest.flatten import flatten
from trailguard.sources import trail_files
from trailguard.sources.checkpoints import CHECKPOINTS_FILE
from trailguard.store import DuckDBStore

ACCOUNT, REGION = "111122223333", "us-east-1"
FOLDER = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2023/11/14/"


def recent(seconds_ago: int) -> str:
    moment = datetime.fromtimestamp(time.time() - seconds_ago, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def nested(levels: int) -> dict[str, Any]:
    inner: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        inner = {"a": inner}
    return inner


def make_bucket(files: dict[str, list[dict[str, Any]]]) -> str:
    """A new moto bucket holding gzipped trail files named `<name>` in one day folder."""
    name = f"trail-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    for file_name, records in files.items():
        body = gzip.compress(json.dumps({"Records": records}).encode())
        s3.put_object(Bucket=name, Key=f"{FOLDER}{file_name}.json.gz", Body=body)
    return name


def write_config(tmp_path: Path, buckets: list[str]) -> Path:
    config = tmp_path / "trailguard.yaml"
    config.write_text(json.dumps({"sources": {
        "accounts": [{"name": "a", "profile": "account-a", "account_id": ACCOUNT,
                      "regions": [REGION]}],
        "cloudtrail_api": {"backfill": "2h"}, "guardduty": {"backfill": "1d"},
        "cloudtrail_buckets": [{"bucket": bucket, "account": "a"} for bucket in buckets]}}))
    return config


def poll_once(config: Path, tmp_path: Path) -> int:
    return main(["--config", str(config), "poll", "--once", "--no-progress",
                 "--data-dir", str(tmp_path / "data")])


def strict_ingest(record: dict[str, Any], **options: Any) -> Any:
    """The record conversion as it was before ingest kept over-limit records as text:
    `flatten`'s IngestError escapes. It stands for any record nobody foresaw."""
    flatten(record)
    return cloudtrail_event(record, **options)


@pytest.fixture
def good_account(aws_env: dict[str, str], fake_aws: FakeAws, samples: Path) -> None:
    """3 LookupEvents records and 1 GuardDuty finding for account a."""
    records = sample_records(samples)[20:23]
    fake_aws.state.add_records(ACCOUNT, REGION, [
        {**record, "recipientAccountId": ACCOUNT, "awsRegion": REGION,
         "eventTime": recent(600 + index)} for index, record in enumerate(records)])
    fake_aws.state.put_finding(ACCOUNT, REGION, "det-1", {
        "id": "finding-1", "type": "Recon:EC2/PortProbeUnprotectedPort", "severity": 2.0,
        "accountId": ACCOUNT, "region": REGION, "schemaVersion": "2.0",
        "createdAt": recent(900), "updatedAt": recent(900),
        "service": {"serviceName": "guardduty", "count": 1, "archived": False}})


def test_poisoned_trail_file_fails_its_bucket_only_and_is_read_once_ingest_copes(
        good_account: None, samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    records = sample_records(samples)
    poison = {**records[2], "eventID": "poison-1", "requestParameters": nested(300)}
    poisoned = make_bucket({"a_good": records[0:2], "b_poisoned": [poison, records[3]]})
    good = make_bucket({"c_good": records[4:6]})
    config = write_config(tmp_path, [poisoned, good])

    with monkeypatch.context() as patched:
        patched.setattr(trail_files, "cloudtrail_event", strict_ingest)
        failed = poll_once(config, tmp_path)
    first = capsys.readouterr().out
    # With ingest keeping such records as flagged text, the file is read next time.
    recovered = poll_once(config, tmp_path)
    second = capsys.readouterr().out

    assert failed == 1
    assert "Polled 5 sources: 8 new events (0 already stored, 1 failed)." in first
    lines = {line.split(": ", 1)[0].strip(): line.split(": ", 1)[1] for line in
             first.splitlines()[1:]}
    assert lines[f"s3://{poisoned}/"].startswith(
        "2 new, FAILED: IngestError: attribute 'requestParameters.a.a.a.")
    assert lines[f"s3://{poisoned}/"].endswith(
        "(unexpected; the other sources went on)")
    assert (lines[f"s3://{good}/"], lines[f"cloudtrail {ACCOUNT} {REGION}"],
            lines[f"guardduty {ACCOUNT} {REGION}"], lines["credentials a"]) == (
        "2 new", "3 new", "1 new", "0 new")
    assert recovered == 0
    assert f"  s3://{poisoned}/: 2 new\n" in second  # the poisoned file, and only it
    store = DuckDBStore(tmp_path / "data", read_only=True)
    try:
        ids = store.read("SELECT a_eventid FROM events WHERE a_provider = 'CloudTrail'",
                         {}).rows
    finally:
        store.close()
    # 3 from LookupEvents, 2 + 2 good files, then the poisoned file: its good record and
    # the poisoned one, kept as text (so without an eventID column of its own)
    assert len(ids) == 3 + 2 + 2 + 2 and ids.count((None,)) == 1


def test_corrupted_checkpoints_fail_their_sources_with_file_key_and_remedy(
        good_account: None, samples: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    bucket = make_bucket({"a_good": sample_records(samples)[0:2]})
    other = make_bucket({"a_good": sample_records(samples)[2:4]})
    path = tmp_path / "data" / CHECKPOINTS_FILE
    path.parent.mkdir(parents=True)
    folder_key = f"trail-files|{bucket}|AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/"
    saved = {folder_key: {"days": "garbage"},
             f"lookup-events|{ACCOUNT}|{REGION}": {"done_until": "yesterday"},
             f"guardduty|{ACCOUNT}|{REGION}|det-1": {"updated_since": True}}
    path.write_text(json.dumps(saved))

    code = poll_once(write_config(tmp_path, [bucket, other]), tmp_path)
    output = capsys.readouterr()

    assert code == 1
    assert "Traceback" not in output.out + output.err
    assert "Polled 5 sources: 2 new events (0 already stored, 3 failed)." in output.out
    assert (f"  s3://{bucket}/: 0 new, FAILED: source checkpoint {folder_key!r} in {path} is "
            "not valid: \"days\" is not an object of day folders (\"YYYY/MM/DD\": [file "
            "names]). Delete that key from the file (or the whole file) to start this source "
            "over; what is read again is de-duplicated, nothing is stored twice\n") in output.out
    assert (f"  cloudtrail {ACCOUNT} {REGION}: 0 new, FAILED: source checkpoint "
            f"'lookup-events|{ACCOUNT}|{REGION}' in {path} is not valid: \"done_until\" is not "
            "a time in epoch milliseconds.") in output.out
    assert (f"guardduty {ACCOUNT} {REGION}: 0 new, FAILED: source checkpoint "
            f"'guardduty|{ACCOUNT}|{REGION}|det-1' in {path} is not valid: not "
            "{\"updated_since\": <epoch milliseconds>}.") in output.out
    assert f"  s3://{other}/: 2 new\n" in output.out
    assert {key: value for key, value in json.loads(path.read_text()).items()
            if key in saved} == saved  # left for the user to fix, not overwritten


def test_unreadable_checkpoint_file_fails_the_sources_that_need_it_and_is_kept(
        good_account: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "data" / CHECKPOINTS_FILE
    path.parent.mkdir(parents=True)
    path.write_text('{"lookup-events|111122223333|us-east-1": {"done_until": 17')

    code = poll_once(write_config(tmp_path, []), tmp_path)
    output = capsys.readouterr().out

    assert code == 1
    assert "Polled 3 sources: 0 new events (0 already stored, 2 failed)." in output
    assert "  credentials a: 0 new\n" in output
    assert f"  cloudtrail {ACCOUNT} {REGION}: 0 new, FAILED: cannot read source " \
           f"checkpoints {path}: " in output
    assert "fix or delete the file" in output
    assert path.read_text().endswith('"done_until": 17')
