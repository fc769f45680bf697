"""CloudTrail log files from S3: listed folder by folder, or announced through SQS.

CloudTrail writes `<prefix>AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz`
(organization trails add the org id: `AWSLogs/<o-id>/<account>/...`), Insights events
under `CloudTrail-Insight/`, and digest files under `CloudTrail-Digest/`. Digests hold
no events and are never read.

Progress is kept per region folder (bucket, prefix, account, kind, region), never one
marker for the whole bucket, so a new file in one region is not hidden by a later key
in another (field case BL-22). Inside a folder the checkpoint is the files already read
in the newest day folder and `lookback_days` before it (`folder_progress`): each poll
lists from the start of those days, so a file delivered late, into the same day or an
earlier one, is still read, and read once.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import orjson
from botocore.exceptions import ClientError

from trailguard.errors import IngestError
from trailguard.events import Event
from trailguard.ingest.documents import cloudtrail_event
from trailguard.ingest.payloads import split_json_documents
from trailguard.logs import log_fields
from trailguard.sources.aws import AccountSession, error_code
from trailguard.sources.checkpoints import Checkpoints, checkpoint_key
from trailguard.sources.folder_progress import FolderProgress, checkpoint_problem, split_day
from trailguard.sources.lookup_events import PollResult, Progress, newest_time_ms, now_ms
from trailguard.sources.settings import TrailBucketSource
from trailguard.sources.sink import EventSink

log = logging.getLogger("trailguard.sources.trail_files")

EVENT_FOLDERS = ("CloudTrail", "CloudTrail-Insight")
DIGEST_FOLDER = "/CloudTrail-Digest/"


@dataclass(frozen=True, slots=True)
class RegionFolder:
    """One `.../<account>/<kind>/<region>/` folder of a trail bucket."""

    account_id: str
    kind: str
    region: str
    prefix: str


class TrailFileReader:
    """Reads new CloudTrail files of one bucket into the store."""

    def __init__(self, store: EventSink, checkpoints: Checkpoints) -> None:
        self.store = store
        self.checkpoints = checkpoints

    def poll(self, source: TrailBucketSource, account: AccountSession,
             progress: Progress | None = None, result: PollResult | None = None) -> PollResult:
        """Read new files: from the SQS queue when one is configured, else by listing."""
        s3 = account.client("s3", source.bucket_region)
        result = PollResult() if result is None else result
        if source.queue_url:
            sqs = account.client("sqs", source.bucket_region)
            self._drain_queue(s3, sqs, source.queue_url, result, progress)
        else:
            folders = region_folders(s3, source)
            for index, folder in enumerate(folders, start=1):
                self._read_folder(s3, source, folder, result)
                if progress:
                    progress(result.stored, index, len(folders))
        log_fields(log, logging.INFO, "trail files read", bucket=source.bucket,
                   stored=result.stored, duplicates=result.duplicates, files=result.pages,
                   skipped=result.skipped)
        return result

    def _read_folder(self, s3: Any, source: TrailBucketSource, folder: RegionFolder,
                     result: PollResult) -> None:
        key = checkpoint_key("trail-files", source.bucket, folder.prefix)
        saved = self.checkpoints.get_valid(key, checkpoint_problem)
        progress = FolderProgress.load(saved, source.lookback_days)
        first_day = progress.first_day()
        start_after = f"{folder.prefix}{first_day}/" if first_day else ""
        for object_key in _keys(s3, source.bucket, folder.prefix, start_after):
            # CloudTrail writes only `YYYY/MM/DD/<file>` here; anything else is not a trail
            # file and would break the day arithmetic.
            day_and_name = split_day(object_key[len(folder.prefix):])
            if day_and_name is None or progress.has_read(*day_and_name):
                continue
            self._read_object(s3, source.bucket, object_key, result)
            progress.mark_read(*day_and_name)
            self.checkpoints.save(key, progress.to_json())

    def _read_object(self, s3: Any, bucket: str, object_key: str, result: PollResult) -> None:
        raw = s3.get_object(Bucket=bucket, Key=object_key)["Body"].read()
        trail_file = read_trail_file(raw, object_key, now_ms())
        if trail_file.problem:
            result.skip(f"s3://{bucket}/{object_key}: {trail_file.problem}")
            return
        if trail_file.not_records:
            result.skip(f"s3://{bucket}/{object_key}: {trail_file.not_records} record(s) not "
                        "a JSON object", trail_file.not_records)
        result.add_page(self.store.write(trail_file.events), trail_file.newest_ms)

    def _drain_queue(self, s3: Any, sqs: Any, queue_url: str, result: PollResult,
                     progress: Progress | None) -> None:
        while True:
            answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                         WaitTimeSeconds=0, VisibilityTimeout=300)
            messages = answer.get("Messages", [])
            if not messages:
                return
            for message in messages:
                if self._handle_message(s3, message, result):
                    sqs.delete_message(QueueUrl=queue_url,
                                       ReceiptHandle=message["ReceiptHandle"])
            if progress:  # a queue has no known end: the count moves, the bar waits
                progress(result.stored, 0, 1)

    def _handle_message(self, s3: Any, message: dict[str, Any], result: PollResult) -> bool:
        """Read the files a notification names; False leaves it queued for a retry."""
        for bucket, object_key in notification_objects(message.get("Body", "")):
            if DIGEST_FOLDER in f"/{object_key}" or not object_key.endswith((".json.gz",
                                                                              ".json")):
                continue
            try:
                self._read_object(s3, bucket, object_key, result)
            except ClientError as exc:
                if error_code(exc) not in ("NoSuchKey", "404"):
                    log_fields(log, logging.WARNING, "trail file not readable, will retry",
                               bucket=bucket, key=object_key, error=error_code(exc))
                    return False
                log_fields(log, logging.WARNING, "announced trail file is gone, skipped",
                           bucket=bucket, key=object_key)
                result.skip(f"s3://{bucket}/{object_key}: announced, but no longer there")
        return True


def region_folders(s3: Any, source: TrailBucketSource) -> list[RegionFolder]:
    """Every CloudTrail and CloudTrail-Insight region folder under the bucket's prefix."""
    folders: list[RegionFolder] = []
    for top in _subfolders(s3, source.bucket, f"{source.prefix}AWSLogs/"):
        name = top.rstrip("/").rsplit("/", 1)[-1]
        accounts = _subfolders(s3, source.bucket, top) if name.startswith("o-") else [top]
        for account_folder in accounts:
            account_id = account_folder.rstrip("/").rsplit("/", 1)[-1]
            for kind in EVENT_FOLDERS:
                for region_folder in _subfolders(s3, source.bucket, f"{account_folder}{kind}/"):
                    region = region_folder.rstrip("/").rsplit("/", 1)[-1]
                    folders.append(RegionFolder(account_id, kind, region, region_folder))
    return folders


@dataclass(slots=True)
class TrailFile:
    """The events of one trail file, or why it was left out."""

    events: list[Event] = field(default_factory=list)
    newest_ms: int | None = None  # the latest real eventTime (not an arrival time)
    not_records: int = 0  # entries of `Records` that are not JSON objects
    problem: str | None = None  # set when the whole file is skipped


def _not_json(object_key: str, reason: str) -> TrailFile:
    log_fields(log, logging.WARNING, "trail file is not JSON, skipped", key=object_key,
               error=reason)
    return TrailFile(problem=f"not JSON ({reason})")


def read_trail_file(raw: bytes, object_key: str, received_ms: int) -> TrailFile:
    """The events of one trail file; none for digests and empty files, or a `problem`."""
    if not raw.strip():
        return TrailFile()
    try:
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
        # The import's lenient reading: NaN, 1e400 and 65-bit integers keep their spelling,
        # and a lone surrogate reaches its record, which is then kept as text on its own.
        documents = split_json_documents(text, lenient=True)
    except (OSError, EOFError, UnicodeDecodeError, IngestError) as exc:
        return _not_json(object_key, str(exc))
    if documents is None or len(documents) != 1:
        return _not_json(object_key, "not one JSON document")
    document = documents[0]
    if not isinstance(document, dict) or "digestStartTime" in document:
        return TrailFile()
    records = document.get("Records")
    if not isinstance(records, list):
        log_fields(log, logging.WARNING, "trail file without Records, skipped", key=object_key)
        return TrailFile(problem="no Records list")
    usable = [record for record in records if isinstance(record, dict)]
    return TrailFile([cloudtrail_event(record, fallback_ms=received_ms) for record in usable],
                     newest_time_ms(record.get("eventTime") for record in usable),
                     len(records) - len(usable))


def notification_objects(body: str) -> list[tuple[str, str]]:
    """(bucket, key) pairs named by an S3 event notification, maybe wrapped in SNS.

    Also understands CloudTrail's own SNS notice (`s3Bucket`, `s3ObjectKey`). Anything
    malformed in a message names nothing (the queue is anyone's to write to).
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(document, dict):
        return []
    if document.get("Type") == "Notification":
        return notification_objects(str(document.get("Message", "")))
    if "s3Bucket" in document:
        keys = document.get("s3ObjectKey")
        return [(document["s3Bucket"], key) for key in keys if isinstance(key, str)] if (
            isinstance(document["s3Bucket"], str) and isinstance(keys, list)) else []
    records = document.get("Records")
    found = []
    for record in records if isinstance(records, list) else []:
        named = _s3_record_object(record)
        if named:
            found.append(named)
    return found


def _s3_record_object(record: Any) -> tuple[str, str] | None:
    """(bucket, key) of one `ObjectCreated` record of an S3 notification, or None."""
    if not isinstance(record, dict) or not str(record.get("eventName", "")).startswith(
            "ObjectCreated"):
        return None
    s3 = record.get("s3")
    bucket = s3.get("bucket") if isinstance(s3, dict) else None
    stored = s3.get("object") if isinstance(s3, dict) else None
    name = bucket.get("name") if isinstance(bucket, dict) else None
    key = stored.get("key") if isinstance(stored, dict) else None
    if not isinstance(name, str) or not isinstance(key, str):
        return None
    return name, unquote_plus(key)


def _subfolders(s3: Any, bucket: str, prefix: str) -> list[str]:
    folders: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"):
        folders.extend(item["Prefix"] for item in page.get("CommonPrefixes", []))
    return folders


def _keys(s3: Any, bucket: str, prefix: str, start_after: str) -> list[str]:
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        request["StartAfter"] = start_after
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(**request):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys
