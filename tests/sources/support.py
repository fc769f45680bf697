"""Helpers shared by the source tests: a fake clock, counting, the real samples."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from trailguard.store import DuckDBStore


class FakeClock:
    """Time that moves only when someone sleeps; records every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def count(store: DuckDBStore, where: str = "TRUE") -> int:
    """Stored events matching a SQL condition on the events table."""
    return store.read(f"SELECT count(*) FROM events WHERE {where}", {}).rows[0][0]


def sample_records(samples: Path) -> list[dict[str, Any]]:
    """Every real CloudTrail record in ../shared/samples/cloudtrail, in file order."""
    records: list[dict[str, Any]] = []
    for path in sorted((samples / "cloudtrail").iterdir()):
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        records.extend(json.loads(raw)["Records"])
    return records
