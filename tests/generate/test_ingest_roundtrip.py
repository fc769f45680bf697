"""Generated events stored through the real ingest path answer NRQL with exact counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from trailguard.generate import generate_cloudtrail, generate_demo, generate_findings
from trailguard.ingest.documents import cloudtrail_event, log_event
from trailguard.ingest.timestamps import parse_iso_ms
from trailguard.nrql.engine import run_nrql
from trailguard.store import DuckDBStore

NOW_MS = 1_750_000_000_000
HOUR_MS = 3_600_000
BRUTE_FORCE = "UnauthorizedAccess:EC2/SSHBruteForce"


def count(store: DuckDBStore, nrql: str) -> int:
    return run_nrql(store, nrql, now_ms=NOW_MS)["results"][0]["count"]


@pytest.fixture
def store(tmp_path: Path):
    opened = DuckDBStore(tmp_path)
    yield opened
    opened.close()


def test_findings_land_as_logs_with_their_attributes(store: DuckDBStore) -> None:
    events = generate_findings(41, NOW_MS - 23 * HOUR_MS, NOW_MS - 60_000, 400,
                               update_rate=0.2)
    older = generate_findings(42, NOW_MS - 72 * HOUR_MS, NOW_MS - 48 * HOUR_MS, 100)
    result = store.write([log_event(event, NOW_MS) for event in events + older])
    assert (result.stored, result.duplicates) == (500, 0)

    brute_force = sum(event["detail"]["type"] == BRUTE_FORCE for event in events)
    assert brute_force > 0
    assert count(store, f"FROM Log SELECT count(*) WHERE detail.type = '{BRUTE_FORCE}' "
                        "SINCE 1 day ago") == brute_force
    assert count(store, "FROM Log SELECT count(*) WHERE source = 'aws.guardduty' "
                        "AND detail.service.serviceName = 'guardduty' SINCE 1 day ago") == 400
    high = sum(event["detail"]["severity"] >= 7 for event in events)
    assert count(store, "FROM Log SELECT count(*) WHERE detail.severity >= 7 "
                        "SINCE 1 day ago") == high


def test_finding_event_attributes_are_flattened(store: DuckDBStore) -> None:
    event = generate_findings(43, NOW_MS - HOUR_MS, NOW_MS, 1, types=[BRUTE_FORCE])[0]
    stored = log_event(event, NOW_MS)
    finding = event["detail"]
    assert stored.attributes["detail.type"] == BRUTE_FORCE
    assert stored.attributes["detail.severity"] == finding["severity"]
    assert stored.attributes["detail.resource.instanceDetails.instanceId"] == (
        finding["resource"]["instanceDetails"]["instanceId"])
    assert stored.attributes["detail.service.action.actionType"] == "NETWORK_CONNECTION"
    assert stored.attributes["source"] == "aws.guardduty"
    assert stored.timestamp == parse_iso_ms(event["time"])


def test_cloudtrail_lands_as_infrastructure_events(store: DuckDBStore) -> None:
    records = generate_cloudtrail(44, NOW_MS - 20 * HOUR_MS, NOW_MS, 3000)
    result = store.write([cloudtrail_event(record) for record in records])
    assert result.stored == 3000

    names = Counter(record["eventName"] for record in records)
    assert count(store, "FROM InfrastructureEvent SELECT count(*) WHERE provider = "
                        "'CloudTrail' AND eventName = 'DescribeInstances' "
                        "SINCE 1 day ago") == names["DescribeInstances"]
    failures = sum(record.get("responseElements") == {"ConsoleLogin": "Failure"}
                   for record in records)
    assert failures > 0
    assert count(store, "FROM InfrastructureEvent SELECT count(*) WHERE eventName = "
                        "'ConsoleLogin' AND responseElements.ConsoleLogin = 'Failure' "
                        "SINCE 1 day ago") == failures
    denied = sum(record.get("errorCode") == "AccessDenied" for record in records)
    assert count(store, "FROM InfrastructureEvent SELECT count(*) WHERE errorCode = "
                        "'AccessDenied' SINCE 1 day ago") == denied
    roots = sum(record["userIdentity"]["type"] == "Root" for record in records)
    assert count(store, "FROM InfrastructureEvent SELECT count(*) WHERE "
                        "userIdentity.type = 'Root' SINCE 1 day ago") == roots


def test_demo_fills_the_store_through_ingest(store: DuckDBStore) -> None:
    progress: list[int] = []
    summary = generate_demo(store, days=2, findings=120, cloudtrail_events=2500, seed=45,
                            now_ms=NOW_MS, batch_size=1000, on_progress=progress.append)
    assert (summary.findings, summary.cloudtrail_events, summary.duplicates) == (120, 2500, 0)
    assert progress == [120, 1000, 1000, 500]
    assert count(store, "FROM Log SELECT count(*) WHERE source = 'aws.guardduty' "
                        "SINCE 3 days ago") == 120
    assert count(store, "FROM InfrastructureEvent SELECT count(*) SINCE 3 days ago") == 2500
    assert count(store, f"FROM Log SELECT count(*) WHERE detail.type = '{BRUTE_FORCE}' "
                        "SINCE 30 minutes ago") == 6


def test_demo_is_deterministic_by_seed(tmp_path: Path) -> None:
    answers = []
    for name in ("a", "b"):
        opened = DuckDBStore(tmp_path / name)
        generate_demo(opened, days=1, findings=50, cloudtrail_events=500, seed=46,
                      now_ms=NOW_MS)
        answers.append(run_nrql(opened, "FROM InfrastructureEvent SELECT count(*) "
                                        "FACET eventName SINCE 2 days ago LIMIT 100",
                                now_ms=NOW_MS)["results"])
        opened.close()
    assert answers[0] == answers[1]
