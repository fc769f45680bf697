"""GuardDuty findings backfill over real HTTP against the local fake, on the real samples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from sources.fake_aws import FakeAws, iso_ms
from sources.support import FakeClock, count

from trailguard.ingest.documents import log_event
from trailguard.sources.aws import AccountSession, Pacer
from trailguard.sources.checkpoints import Checkpoints
from trailguard.sources.guardduty import FindingsPoller
from trailguard.sources.settings import FindingsSource
from trailguard.store import DuckDBStore

ACCOUNT = "111122223333"
REGION = "us-east-1"
DETECTOR = "d4b040365221be2b54a6264dcexample"
NOW = iso_ms("2023-11-15T00:00:00Z")


def sample_findings(samples: Path) -> list[dict[str, Any]]:
    """The 8 real findings, each given its own id and an updatedAt 22:0i on 2023-11-14."""
    raw = json.loads((samples / "guardduty" / "panther-analysis_guardduty_findings_raw.json")
                     .read_text())
    findings = []
    for index, finding in enumerate(raw):
        finding = copy.deepcopy(finding)
        finding.update(id=f"sample-finding-{index}", accountId=ACCOUNT, region=REGION,
                       updatedAt=f"2023-11-14T22:0{index}:00.000Z")
        findings.append(finding)
    return findings


def poller(store: DuckDBStore, tmp_path: Path, pacer: Pacer) -> FindingsPoller:
    return FindingsPoller(store, Checkpoints(tmp_path / "data"), pacer,
                          FindingsSource(backfill_ms=7 * 86_400_000), lambda: NOW)


@pytest.fixture
def account(aws_env: dict[str, str]) -> AccountSession:
    return AccountSession("a", ACCOUNT, boto3.Session(profile_name="account-a"), [REGION])


def test_backfill_stores_findings_as_firehose_would(
        account: AccountSession, fake_aws: FakeAws, samples: Path, store: DuckDBStore,
        tmp_path: Path, pacer: Pacer) -> None:
    findings = sample_findings(samples)
    for finding in findings:
        fake_aws.state.put_finding(ACCOUNT, REGION, DETECTOR, finding)

    result = poller(store, tmp_path, pacer).poll(account, REGION)

    assert (result.stored, result.pages) == (8, 1)
    rows = store.read("SELECT a_source, a_detail_type, a_detail__service__servicename, "
                      "a_account, a_region, count(*) FROM events GROUP BY ALL", {}).rows
    assert rows == [("aws.guardduty", "GuardDuty Finding", "guardduty", ACCOUNT, REGION, 8)]
    stored = store.read("SELECT a_detail__id, a_detail__type, a_detail__severity, timestamp "
                        "FROM events ORDER BY timestamp LIMIT 1", {}).rows
    assert stored == [("sample-finding-0", "AttackSequence:IAM/CompromisedCredentials",
                       findings[0]["severity"], iso_ms("2023-11-14T22:00:00Z"))]
    # The same finding delivered through EventBridge/Firehose has the same type and time.
    firehose_shape = log_event({"version": "0", "id": "x", "detail-type": "GuardDuty Finding",
                                "source": "aws.guardduty", "account": ACCOUNT,
                                "time": findings[0]["updatedAt"], "region": REGION,
                                "resources": [], "detail": findings[0]}, 0)
    assert firehose_shape.timestamp == stored[0][3]
    assert firehose_shape.attributes["detail.type"] == stored[0][1]


def test_updated_finding_is_history_and_same_state_never_twice(
        account: AccountSession, fake_aws: FakeAws, samples: Path, store: DuckDBStore,
        tmp_path: Path, pacer: Pacer) -> None:
    findings = sample_findings(samples)
    for finding in findings:
        fake_aws.state.put_finding(ACCOUNT, REGION, DETECTOR, finding)
    poller(store, tmp_path, pacer).poll(account, REGION)

    updated = copy.deepcopy(findings[2])
    updated["updatedAt"] = "2023-11-14T23:30:00.000Z"
    updated["service"]["count"] = 7
    fake_aws.state.put_finding(ACCOUNT, REGION, DETECTOR, updated)
    second = poller(store, tmp_path, pacer).poll(account, REGION)
    third = poller(store, tmp_path, pacer).poll(account, REGION)

    assert (second.stored, third.stored, third.duplicates) == (1, 0, 1)
    assert count(store) == 9
    assert store.read("SELECT count(DISTINCT a_detail__id) FROM events", {}).rows == [(8,)]
    history = store.read("SELECT a_detail__service__count, timestamp FROM events "
                         "WHERE a_detail__id = 'sample-finding-2' ORDER BY timestamp", {}).rows
    assert history == [(1.0, iso_ms("2023-11-14T22:02:00Z")),
                       (7.0, iso_ms("2023-11-14T23:30:00Z"))]
    assert Checkpoints(tmp_path / "data").get(f"guardduty|{ACCOUNT}|{REGION}|{DETECTOR}") == {
        "updated_since": iso_ms("2023-11-14T23:30:00Z")}


def test_many_findings_are_paged_fifty_at_a_time(
        account: AccountSession, fake_aws: FakeAws, samples: Path, store: DuckDBStore,
        tmp_path: Path, clock: FakeClock, pacer: Pacer) -> None:
    template = sample_findings(samples)[0]
    for index in range(55):
        finding = copy.deepcopy(template)
        finding.update(id=f"bulk-{index:02d}",
                       updatedAt=f"2023-11-14T{20 + index // 60:02d}:{index % 60:02d}:00.000Z")
        fake_aws.state.put_finding(ACCOUNT, REGION, DETECTOR, finding)

    result = poller(store, tmp_path, pacer).poll(account, REGION)

    assert (result.stored, result.pages) == (55, 2)
    paths = [path.split("?")[0] for _, _, path in fake_aws.state.findings_calls]
    assert paths == ["/detector", f"/detector/{DETECTOR}/findings",
                     f"/detector/{DETECTOR}/findings/get", f"/detector/{DETECTOR}/findings",
                     f"/detector/{DETECTOR}/findings/get"]
    assert clock.sleeps == [0.5, 0.5, 0.5, 0.5]
