"""Read event files from disk: CloudTrail log files, EventBridge events, findings.

CloudTrail files (`{"Records": [...]}`, as CloudTrail writes them to S3) become
`InfrastructureEvent`s with `provider = 'CloudTrail'`. Files of EventBridge events
or GuardDuty findings (bare, or a `GetFindings` response) become `Log` events
exactly as if they had arrived through Firehose. Digest files are skipped.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trailguard.errors import IngestError
from trailguard.events import Event
from trailguard.ingest.documents import (
    camel_case_keys,
    cloudtrail_event,
    is_cloudtrail_record,
    log_event,
)
from trailguard.ingest.firehose import record_events
from trailguard.ingest.payloads import split_json_documents

MAX_RECORD_BYTES = 128 * 1024 * 1024
SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")


@dataclass(slots=True)
class FileEvents:
    """The events of one file, or why the file was skipped."""

    path: Path
    events: list[Event]
    skipped: str | None = None


def discover(paths: list[Path]) -> list[Path]:
    """Every importable file under `paths` (files as given, folders recursively, sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and p.name.endswith(SUFFIXES)))
        elif path.is_file():
            found.append(path)
        else:
            raise IngestError(f"{path}: no such file or folder")
    return found


def read_file(path: Path) -> FileEvents:
    """Parse one file into events; raises `IngestError` naming the file when unreadable."""
    raw = path.read_bytes()
    if raw.startswith(b"\x1f\x8b"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise IngestError(f"{path}: not a readable gzip file ({exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path}: not UTF-8 text ({exc})") from exc

    documents = split_json_documents(text, lenient=True)
    if documents is None:
        raise IngestError(f"{path}: not JSON (expected CloudTrail Records, events or findings)")
    if len(documents) == 1 and isinstance(documents[0], dict):
        top = documents[0]
        if "digestStartTime" in top and "Records" not in top:
            return FileEvents(path, [], skipped="CloudTrail digest file")
    try:
        events = list(_events_of(documents, int(time.time() * 1000)))
    except IngestError as exc:
        raise IngestError(f"{path}: {exc}") from exc
    return FileEvents(path, events)


def _events_of(documents: list[Any], now_ms: int) -> Iterator[Event]:
    for document in documents:
        if isinstance(document, list):
            yield from _events_of(document, now_ms)
        elif not isinstance(document, dict):
            continue
        elif isinstance(document.get("Records"), list):
            for record in document["Records"]:
                if isinstance(record, dict):
                    yield cloudtrail_event(record, fallback_ms=now_ms)
        elif isinstance(document.get("records"), list) and "requestId" in document:
            yield from _firehose_body_events(document, now_ms)
        elif isinstance(document.get("Findings"), list):
            for finding in camel_case_keys(document["Findings"]):
                yield log_event(finding, now_ms)
        elif is_cloudtrail_record(document):
            yield cloudtrail_event(document, fallback_ms=now_ms)
        else:
            yield log_event(document, now_ms)


def _firehose_body_events(body: dict[str, Any], now_ms: int) -> Iterator[Event]:
    """A saved Firehose delivery request body: its records, decoded as the endpoint would."""
    timestamp = body.get("timestamp") if isinstance(body.get("timestamp"), int) else now_ms
    for index, record in enumerate(body["records"]):
        data = record.get("data") if isinstance(record, dict) else None
        if not isinstance(data, str):
            raise IngestError(f"records[{index}] has no base64 'data' string")
        yield from record_events(data, index, timestamp, {}, MAX_RECORD_BYTES)
