"""A real `trailguard serve` with alerts: findings through /firehose/v1 page the team once
(webhook, Slack, PagerDuty, e-mail over STARTTLS), then the incident closes and resolves."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from firehose_client import firehose_body, send
from live_server import start_server
from receivers import SMTP_PASSWORD, SMTP_USER

pytestmark = pytest.mark.e2e

SSH = "UnauthorizedAccess:EC2/SSHBruteForce"


def _finding(number: int, finding_type: str, **detail: object) -> bytes:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {"version": "0", "id": f"e2e-{number}", "detail-type": "GuardDuty Finding",
             "source": "aws.guardduty", "account": "111122223333", "time": now,
             "region": "us-east-1", "resources": [],
             "detail": {"id": f"f-e2e-{number}", "type": finding_type, "severity": 8,
                        "updatedAt": now, **detail}}
    return json.dumps(event).encode()


def _archived_finding() -> bytes:
    """Field case BL-23: an archive event, no type, no severity, no title."""
    return json.dumps({
        "version": "0", "id": "e-23", "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty", "account": "111122223333",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-west-2",
        "resources": [], "detail": {"id": "f-23", "service": {"archived": True}}}).encode()


def _alerts_file(folder: Path, http_url: str, smtp) -> Path:
    signal = {"aggregationWindow": 2, "aggregationMethod": "CADENCE", "aggregationDelay": 2,
              "fillOption": "STATIC", "fillValue": 0}
    term = {"priority": "CRITICAL", "operator": "ABOVE", "thresholdDuration": 2,
            "thresholdOccurrences": "AT_LEAST_ONCE"}
    document = {
        "evaluation_interval_seconds": 0.5,
        "policies": [{"name": "GuardDuty", "conditions": [
            {"name": "SSH brute force", "signal": signal, "terms": [{**term, "threshold": 1}],
             "nrql": {"query": f"FROM Log SELECT count(*) WHERE detail.type = '{SSH}'"}},
            {"name": "High severity", "signal": signal, "terms": [{**term, "threshold": 0}],
             "nrql": {"query": "SELECT count(*) FROM Log WHERE source='aws.guardduty' "
                               "AND detail.severity >= 9"}}]}],
        "destinations": [
            {"name": "hook", "type": "webhook", "url_env": "TG_E2E_HOOK",
             "payload": {"text": "{{ condition }} {{ event }} value={{ value }}",
                         "title": "{{ detail.title }}"}},
            {"name": "slack", "type": "slack", "url_env": "TG_E2E_SLACK"},
            {"name": "pd", "type": "pagerduty", "routing_key_env": "TG_E2E_PD_KEY",
             "events_url": f"{http_url}/pagerduty"},
            {"name": "mail", "type": "email", "host": "127.0.0.1", "port": smtp.port,
             "ca_file": str(smtp.ca_file), "username_env": "TG_E2E_SMTP_USER",
             "password_env": "TG_E2E_SMTP_PASSWORD", "from": "trailguard@example.com",
             "to": ["oncall@example.com"]}],
        "workflows": [{"name": "page the team", "policies": ["GuardDuty"],
                       "destinations": ["hook", "slack", "pd", "mail"]}],
    }
    path = folder / "alerts.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_guide_condition_pages_once_and_resolves(tmp_path, http_receiver, smtp_receiver,
                                                 monkeypatch):
    monkeypatch.setenv("TG_E2E_HOOK", f"{http_receiver.url}/hook")
    monkeypatch.setenv("TG_E2E_SLACK", f"{http_receiver.url}/slack")
    monkeypatch.setenv("TG_E2E_PD_KEY", "e2e-routing-key")
    monkeypatch.setenv("TG_E2E_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("TG_E2E_SMTP_PASSWORD", SMTP_PASSWORD)
    alerts_file = _alerts_file(tmp_path, http_receiver.url, smtp_receiver)
    server = start_server(tmp_path / "data", ("--alerts-file", str(alerts_file)))
    try:
        records = [_finding(n, SSH) for n in range(3)] + [_archived_finding()]
        response = send(server.base_url, server.firehose_key, firehose_body(records))
        assert response.status_code == 200
        requests = http_receiver.wait_for(6, timeout=30)
        mails = smtp_receiver.wait_for(2, timeout=30)
        time.sleep(3)  # anything extra would arrive now
        requests, mails = http_receiver.requests, smtp_receiver.messages
    finally:
        output = server.stop()
    summary = [(path, body.get("event_action") or body.get("text", "")[:40])
               for path, body, _ in requests]
    assert sorted(summary) == sorted([
        ("/hook", "SSH brute force opened value=3"), ("/hook", "SSH brute force closed value=3"),
        ("/slack", "*[CRITICAL] SSH brute force opened*\nGuar"),
        ("/slack", "*[CRITICAL] SSH brute force closed*\nGuar"),
        ("/pagerduty", "trigger"), ("/pagerduty", "resolve")]), output
    hook_titles = {body["title"] for path, body, _ in requests if path == "/hook"}
    assert hook_titles == {"(unknown)"}
    assert sorted(message["Subject"] for _, _, message in mails) == [
        "[CRITICAL] SSH brute force closed", "[CRITICAL] SSH brute force opened"]
    assert "e2e-routing-key" not in output and SMTP_PASSWORD not in output
