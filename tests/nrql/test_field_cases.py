"""Field cases BL-16 and BL-18 (../shared/cases/FIELD-CASES.md), kept with their values.

The inputs are small and synthetic, so they are written inline; the events go
through the same decoding as a Firehose delivery (`log_event`) and CloudTrail
files (`cloudtrail_event`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nrql.support import make_store

from trailguard.ingest.documents import cloudtrail_event, log_event
from trailguard.nrql import parse, run_nrql

NOW = 1_700_100_000_000
EVER = " SINCE 10 years ago"


def guardduty(finding_id: str, severity: float, count: int, updated_at: str,
              envelope_id: str) -> dict[str, Any]:
    """The `GD(id, sev, count, updatedAt)` EventBridge event of FIELD-CASES.md."""
    return {
        "version": "0", "id": envelope_id, "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty", "account": "111122223333", "time": updated_at,
        "region": "us-east-1", "resources": [],
        "detail": {
            "schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1",
            "id": finding_id, "type": "Recon:EC2/PortProbeUnprotectedPort",
            "severity": severity, "title": "example", "createdAt": "2023-11-14T22:00:00.000Z",
            "updatedAt": updated_at,
            "service": {"serviceName": "guardduty", "count": count,
                        "eventFirstSeen": "2023-11-14T22:00:00.000Z",
                        "eventLastSeen": updated_at, "archived": False},
        },
    }


@pytest.fixture
def bl16(tmp_path: Path) -> Any:
    events = [
        log_event(guardduty("f-16", 8.0, 1, "2023-11-14T22:00:00.000Z", "env-1"), NOW),
        log_event(guardduty("f-16", 8.0, 7, "2023-11-15T04:00:00.000Z", "env-2"), NOW),
    ]
    store = make_store(tmp_path, events)
    yield store
    store.close()


@pytest.mark.parametrize(("nrql", "expected"), [
    ("SELECT count(*) FROM Log", [{"count": 2}]),
    ("SELECT uniqueCount(detail.id) FROM Log", [{"uniqueCount.detail.id": 1}]),
    ("SELECT latest(detail.service.count) FROM Log FACET detail.id",
     [{"facet": "f-16", "detail.id": "f-16", "latest.detail.service.count": 7}]),
    ("SELECT earliest(detail.service.count), max(detail.severity) FROM Log",
     [{"earliest.detail.service.count": 1, "max.detail.severity": 8}]),
])
def test_bl16_updated_findings_reuse_their_id(bl16: Any, nrql: str,
                                              expected: list[dict[str, Any]]) -> None:
    assert run_nrql(bl16, nrql + EVER, NOW)["results"] == expected


def _bl18_events() -> list[Any]:
    prefixes = ("198.51.100", "203.0.113", "192.0.2")
    addresses = [f"{prefixes[index % 3]}.{index // 3}" for index in range(600)]
    records = [{"eventVersion": "1.08", "eventTime": "2023-11-14T22:00:00Z",
                "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
                "awsRegion": "us-east-1", "eventID": f"bl18-{index}",
                "sourceIPAddress": address}
               for index, address in enumerate(addresses + addresses[:400])]
    return [cloudtrail_event(record, fallback_ms=NOW) for record in records]


def test_bl18_unique_count_is_exact_beyond_256_values(tmp_path: Path) -> None:
    store = make_store(tmp_path, _bl18_events())
    try:
        rows = run_nrql(store, "SELECT count(*), uniqueCount(sourceIPAddress), "
                               "uniqueCount(sourceIPAddress, precision: 1000) AS 'p' "
                               "FROM InfrastructureEvent" + EVER, NOW)["results"]
    finally:
        store.close()
    assert rows == [{"count": 1000, "uniqueCount.sourceIPAddress": 600, "p": 600}]


def test_bl18_precision_argument_parses() -> None:
    call = parse("SELECT uniqueCount(sourceIPAddress, precision: 1000) FROM Log").select[0].expr
    assert (call.name, [name for name, _ in call.named]) == ("uniquecount", ["precision"])
