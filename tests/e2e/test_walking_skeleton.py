"""The guide, end to end on real public samples: GuardDuty findings arrive as real
Firehose requests at a real server, CloudTrail files are imported with the CLI, and
NRQL answers match what this test computes on its own from the sample files."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from firehose_client import firehose_body, send
from live_server import start_server

pytestmark = pytest.mark.e2e

NOW_MS = int(time.time() * 1000)
MINUTE_MS = 60_000


def iso(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_ms / 1000))


def camel(value):
    """GetFindings' PascalCase keys as EventBridge's camelCase (done here independently)."""
    if isinstance(value, dict):
        return {key[0].lower() + key[1:]: camel(child) for key, child in value.items()}
    if isinstance(value, list):
        return [camel(child) for child in value]
    return value


def envelope(finding: dict, at_ms: int) -> dict:
    """An EventBridge event as GuardDuty sends it, with `time` moved to `at_ms`."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "GuardDuty Finding",
            "source": "aws.guardduty", "account": finding.get("accountId", "111122223333"),
            "time": iso(at_ms), "region": finding.get("region", "us-east-1"),
            "resources": [], "detail": finding}


def guardduty_events(samples: Path) -> list[dict]:
    """Every public GuardDuty sample as an EventBridge event with a recent time.

    The SSH brute-force finding is placed 3 days back so that only a query with a
    wide enough SINCE finds it. One finding is re-typed as
    Policy:S3/BucketAnonymousAccessGranted (no public sample of that type exists).
    """
    folder = samples / "guardduty"
    findings = json.loads((folder / "panther-analysis_guardduty_findings_raw.json").read_text())
    findings += camel(json.loads(
        (folder / "aws-cli_guardduty_get-findings_response.json").read_text())["Findings"])
    events = [envelope(finding, NOW_MS - (index + 1) * MINUTE_MS)
              for index, finding in enumerate(findings)]
    for name in ("cloud-custodian_ec2-duty-event.json", "cloud-custodian_iam-duty-event.json"):
        event = json.loads((folder / name).read_text())
        event["time"] = iso(NOW_MS - (len(events) + 1) * MINUTE_MS)
        events.append(event)
    ssh = json.loads((folder / "aws-samples-waf-acl_gd2acl_test_event.json").read_text())["detail"]
    events.append(envelope(ssh, NOW_MS - 3 * 24 * 60 * MINUTE_MS))
    anonymous = dict(findings[0], id="f" * 32, type="Policy:S3/BucketAnonymousAccessGranted")
    events.append(envelope(anonymous, NOW_MS - 30 * MINUTE_MS))
    return events


def cloudtrail_records(samples: Path) -> list[dict]:
    records = []
    for path in sorted((samples / "cloudtrail").iterdir()):
        raw = path.read_bytes()
        records += json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)["Records"]
    return records


def deliver_findings(server, events: list[dict]) -> None:
    """Three deliveries the ways Firehose makes them: plain, gzip'd records, gzip'd body."""
    thirds = [events[0::3], events[1::3], events[2::3]]
    plain = firehose_body([json.dumps(event).encode() for event in thirds[0]])
    zipped = firehose_body([gzip.compress(json.dumps(event).encode()) for event in thirds[1]])
    ndjson = firehose_body(["\n".join(json.dumps(event) for event in thirds[2]).encode()])
    headers = {"X-Amz-Firehose-Common-Attributes":
               json.dumps({"commonAttributes": {"logtype": "guardduty"}})}
    for body, gzip_body in ((plain, False), (zipped, False), (ndjson, True)):
        response = send(server.base_url, server.firehose_key, body, gzip_body, headers)
        assert response.status_code == 200, response.text
        assert response.json()["requestId"] == body["requestId"]
        assert set(response.json()) == {"requestId", "timestamp"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trailguard", *args], capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def loaded(samples: Path, tmp_path_factory):
    """A server whose store holds the imported CloudTrail files and delivered findings."""
    data_dir = tmp_path_factory.mktemp("skeleton") / "data"
    imported = run_cli("import", "--data-dir", str(data_dir), str(samples / "cloudtrail"))
    assert imported.returncode == 0, imported.stderr
    server = start_server(data_dir)
    events = guardduty_events(samples)
    deliver_findings(server, events)
    yield server, events, cloudtrail_records(samples), imported.stdout
    server.stop()


def test_guide_query_every_finding_one_row_each(loaded):
    server, events, _, _ = loaded
    in_last_hour = [event for event in events
                    if event["detail"].get("service", {}).get("serviceName") == "guardduty"
                    and NOW_MS - 3_600_000 <= _ms(event["time"]) < NOW_MS]

    rows = server.query(
        "FROM Log SELECT * WHERE detail.service.serviceName = 'guardduty'")["results"]

    assert len(rows) == len(in_last_hour) == 12  # 13 findings, one is 3 days old
    assert sorted(row["detail.id"] for row in rows) == sorted(
        event["detail"]["id"] for event in in_last_hour)
    # Several public samples share a detail.id; the EventBridge envelope id is unique.
    by_envelope = {event["id"]: event for event in in_last_hour}
    for row in rows:
        sent = by_envelope[row["id"]]
        assert json.loads(row["message"]) == sent          # the original JSON, whole
        assert row["detail.type"] == sent["detail"]["type"]
        assert row["detail.severity"] == sent["detail"]["severity"]
        assert row["source"] == "aws.guardduty"
        assert row["logtype"] == "guardduty"               # Firehose common attribute
        assert row["timestamp"] == _ms(sent["time"])
    assert [row["timestamp"] for row in rows] == sorted(
        (row["timestamp"] for row in rows), reverse=True)


def test_guide_query_ssh_brute_force_in_the_last_7_days(loaded):
    server, events, _, _ = loaded
    expected = [e for e in events if e["detail"]["type"] == "UnauthorizedAccess:EC2/SSHBruteForce"]

    rows = server.query("FROM Log SELECT * WHERE detail.type = "
                        "'UnauthorizedAccess:EC2/SSHBruteForce' SINCE 7 days ago")["results"]
    default_window = server.query(
        "FROM Log SELECT count(*) WHERE detail.type = 'UnauthorizedAccess:EC2/SSHBruteForce'")

    assert len(rows) == len(expected) == 1
    assert rows[0]["detail.service.action.networkConnectionAction.remoteIpDetails.ipAddressV4"] \
        == expected[0]["detail"]["service"]["action"]["networkConnectionAction"][
            "remoteIpDetails"]["ipAddressV4"]
    assert default_window["results"] == [{"count": 0}]  # 3 days old: outside the last hour


def test_guide_query_anonymous_bucket_access_count(loaded):
    server, _, _, _ = loaded
    assert server.count("FROM Log SELECT count(*) WHERE detail.type = "
                        "'Policy:S3/BucketAnonymousAccessGranted'") == 1


def test_imported_cloudtrail_counts_by_event_name(loaded):
    server, _, records, import_output = loaded
    expected = Counter(record["eventName"] for record in records)

    rows = server.query("FROM InfrastructureEvent SELECT count(*) WHERE provider = 'CloudTrail' "
                        "FACET eventName SINCE 20 years ago LIMIT MAX")["results"]

    assert {row["eventName"]: row["count"] for row in rows} == dict(expected)
    assert f"Imported {len(records)} events from 4 files" in import_output


@pytest.mark.parametrize(("nrql", "predicate"), [
    ("errorCode = 'AccessDenied'", lambda r: r.get("errorCode") == "AccessDenied"),
    ("errorCode IS NOT NULL", lambda r: r.get("errorCode") is not None),
    ("userIdentity.type = 'Root' AND eventName != 'ConsoleLogin'",
     lambda r: r.get("userIdentity", {}).get("type") == "Root" and r["eventName"] != "ConsoleLogin"),
    ("eventSource IN ('iam.amazonaws.com', 's3.amazonaws.com')",
     lambda r: r["eventSource"] in ("iam.amazonaws.com", "s3.amazonaws.com")),
    ("eventName LIKE '%policy%'", lambda r: "policy" in r["eventName"].lower()),
    ("eventName NOT LIKE 'Describe%'", lambda r: not r["eventName"].lower().startswith("describe")),
    ("requestParameters.bucketName IS NOT NULL",
     lambda r: (r.get("requestParameters") or {}).get("bucketName") is not None),
    ("NOT (awsRegion = 'us-east-1' OR awsRegion = 'us-west-2')",
     lambda r: r["awsRegion"] not in ("us-east-1", "us-west-2")),
])
def test_where_filters_match_an_independent_count(loaded, nrql, predicate):
    server, _, records, _ = loaded
    expected = sum(1 for record in records if predicate(record))
    got = server.count(f"SELECT count(*) FROM InfrastructureEvent WHERE {nrql} SINCE 20 years ago")
    assert got == expected


def test_cli_query_over_http_prints_exactly_the_api_body(loaded, monkeypatch):
    server, _, _, _ = loaded
    nrql = "FROM Log SELECT count(*) FACET detail.type SINCE 1 week ago"
    env_key = {"TRAILGUARD_API_KEY": server.api_key}
    completed = subprocess.run(
        [sys.executable, "-m", "trailguard", "query", "--url", server.base_url,
         "--format", "json", nrql], capture_output=True, text=True, timeout=120, check=False,
        env={**_environ(), **env_key})

    assert completed.returncode == 0, completed.stderr
    printed = json.loads(completed.stdout)
    direct = server.query(nrql)
    assert printed["results"] == direct["results"]
    assert set(printed["metadata"]) == set(direct["metadata"])


def test_a_retried_delivery_is_stored_once(loaded):
    server, events, _, _ = loaded
    before = server.count("FROM Log SELECT count(*) SINCE 1 week ago")
    body = firehose_body([json.dumps(events[0]).encode()])

    for _ in range(2):  # Firehose retries with the same requestId
        assert send(server.base_url, server.firehose_key, body).status_code == 200
    fresh_id = dict(body, requestId=str(uuid.uuid4()))  # the same record in a new request
    assert send(server.base_url, server.firehose_key, fresh_id).status_code == 200

    assert server.count("FROM Log SELECT count(*) SINCE 1 week ago") == before


def _ms(text: str) -> int:
    return int(time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone) * 1000


def _environ() -> dict:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("TRAILGUARD_")}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
