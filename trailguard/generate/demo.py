"""Fill a store with generated findings and CloudTrail records for a demo.

Everything goes through the real ingest path (`log_event` for EventBridge
events, `cloudtrail_event` for CloudTrail records), so the demo data is stored
and queried exactly like delivered data.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from trailguard.events import Event
from trailguard.generate.cloudtrail import iter_cloudtrail_records
from trailguard.generate.common import as_rng
from trailguard.generate.findings import generate_findings
from trailguard.ingest.documents import cloudtrail_event, log_event
from trailguard.store.base import EventStore

DAY_MS = 86_400_000
BRUTE_FORCE = "UnauthorizedAccess:EC2/SSHBruteForce"


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What `generate_demo` stored (duplicates are events the store already had)."""

    findings: int
    cloudtrail_events: int
    duplicates: int


def generate_demo(store: EventStore, days: int = 7, findings: int = 500,
                  cloudtrail_events: int = 50_000, seed: random.Random | int = 0,
                  now_ms: int | None = None, batch_size: int = 5_000,
                  on_progress: Callable[[int], None] | None = None) -> DemoSummary:
    """Store `findings` GuardDuty events and `cloudtrail_events` records from the last `days`.

    A burst of SSH brute-force findings lands in the last half hour, so alert
    conditions on that type have something to fire on. `on_progress` is called
    with the number of events written after each batch (for a progress bar).
    """
    if days <= 0 or findings < 0 or cloudtrail_events < 0 or batch_size <= 0:
        raise ValueError("days and batch_size must be positive, counts not negative")
    rng = as_rng(seed)
    end_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    start_ms = end_ms - days * DAY_MS

    burst = min(findings, 6)
    finding_events = generate_findings(rng, start_ms, end_ms - 1_800_000, findings - burst)
    finding_events += generate_findings(rng, end_ms - 1_800_000, end_ms, burst,
                                        update_rate=0.0, types=[BRUTE_FORCE])
    stored_findings, duplicates = _write(
        store, (log_event(event, end_ms) for event in finding_events), batch_size, on_progress)

    records = iter_cloudtrail_records(rng, start_ms, end_ms, cloudtrail_events)
    stored_records, record_duplicates = _write(
        store, (cloudtrail_event(record) for record in records), batch_size, on_progress)
    return DemoSummary(stored_findings, stored_records, duplicates + record_duplicates)


def _write(store: EventStore, events: Iterable[Event], batch_size: int,
           on_progress: Callable[[int], None] | None) -> tuple[int, int]:
    stored = duplicates = 0
    for batch in _batches(events, batch_size):
        result = store.write(batch)
        stored += result.stored
        duplicates += result.duplicates
        if on_progress is not None:
            on_progress(len(batch))
    return stored, duplicates


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
