"""Every CloudTrail record and GuardDuty finding in ../shared/samples, for tests that check
a step against its reference on real data."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson


def public_records(samples: Path) -> Iterator[dict[str, Any]]:
    """The records of the CloudTrail files and the findings of the GuardDuty files."""
    for path in sorted((samples / "cloudtrail").iterdir()) + sorted(
            (samples / "guardduty").glob("*.json")):
        raw = path.read_bytes()
        document = orjson.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
        if isinstance(document, dict):
            yield from document.get("Records") or document.get("Findings") or [document]
        else:
            yield from (item for item in document if isinstance(item, dict))
