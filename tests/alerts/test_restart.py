"""Real `trailguard serve` processes: an incident outlives a SIGKILL without paging twice,
and a server started without an alerts file takes a condition through the API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from firehose_client import firehose_body, send
from live_server import Server, start_server

pytestmark = pytest.mark.e2e

SSH = "UnauthorizedAccess:EC2/SSHBruteForce"
QUIET = {"TRAILGUARD_LOG_LEVEL": "warning"}  # the server's stdout pipe is not drained
SIGNAL = {"aggregationWindow": 2, "aggregationMethod": "CADENCE", "aggregationDelay": 1,
          "fillOption": "STATIC", "fillValue": 0}


def _findings(count: int, tag: str) -> dict:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return firehose_body([json.dumps({
        "version": "0", "id": f"{tag}-{n}", "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty", "account": "111122223333", "time": now,
        "region": "us-east-1", "resources": [],
        "detail": {"id": f"f-{tag}-{n}", "type": SSH, "severity": 8, "updatedAt": now}}).encode()
        for n in range(count)])


def _api(server: Server, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{server.base_url}/api/v1/alerts{path}", json=body,
                             headers={"X-Api-Key": server.api_key}, timeout=30)
    assert response.status_code < 300, response.text
    return response.json()


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _alerts_file(folder: Path, receiver_url: str) -> Path:
    """One condition that stays open 24 s after the last finding; PagerDuty and a webhook."""
    document = {
        "evaluation_interval_seconds": 0.5,
        "retry": {"max_attempts": 3, "base_seconds": 0.5, "max_seconds": 1},
        "policies": [{"name": "GuardDuty", "conditions": [{
            "name": "SSH brute force", "signal": SIGNAL,
            "nrql": {"query": f"FROM Log SELECT count(*) WHERE detail.type = '{SSH}'"},
            "terms": [{"priority": "CRITICAL", "operator": "ABOVE", "threshold": 0,
                       "thresholdDuration": 24, "thresholdOccurrences": "AT_LEAST_ONCE"}]}]}],
        "destinations": [
            {"name": "pd", "type": "pagerduty", "routing_key_env": "TG_RESTART_PD_KEY",
             "events_url": f"{receiver_url}/pagerduty"},
            {"name": "hook", "type": "webhook", "url_env": "TG_RESTART_HOOK"}],
        "workflows": [{"name": "page", "destinations": ["pd", "hook"]}],
    }
    path = folder / "alerts.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_open_incident_survives_sigkill_without_a_second_page(tmp_path, http_receiver):
    alerts_file = _alerts_file(tmp_path, http_receiver.url)
    env = {**QUIET, "TG_RESTART_PD_KEY": "restart-routing-key",
           "TG_RESTART_HOOK": f"{http_receiver.url}/hook"}
    args = ("--alerts-file", str(alerts_file))
    server = start_server(tmp_path / "data", args, extra_env=env)
    try:
        assert send(server.base_url, server.firehose_key, _findings(3, "kill")).status_code == 200
        _until(lambda: len(http_receiver.requests) >= 2, 30, "the trigger and the webhook")
        # Kill only once both are marked sent, so any later request would be a second page.
        _until(lambda: all(n["status"] == "sent" for n in _api(server, "GET", "/incidents/1")
                           ["notifications"]), 10, "the outbox to mark them sent")
    finally:
        server.process.kill()  # SIGKILL: no shutdown, no checkpoint
        server.process.communicate(timeout=30)

    server = start_server(tmp_path / "data", args, extra_env=env)
    try:
        [still_open] = _api(server, "GET", "/incidents?state=open")["incidents"]
        assert (still_open["id"], still_open["priority"]) == (1, "CRITICAL")
        closed = _until(lambda: _api(server, "GET", "/incidents?state=closed")["incidents"],
                        60, "the incident to close")
        _until(lambda: len(http_receiver.requests) >= 4, 15, "the resolve")
        time.sleep(2)  # anything extra would arrive now
        incident = _api(server, "GET", "/incidents/1")
    finally:
        output = server.stop()
    assert [(c["id"], c["close_reason"]) for c in closed] == [(1, "signal recovered")]
    assert sorted((path, body.get("event_action") or body["event"])
                  for path, body, _ in http_receiver.requests) == [
        ("/hook", "closed"), ("/hook", "opened"), ("/pagerduty", "resolve"),
        ("/pagerduty", "trigger")], output
    assert [h["event"] for h in incident["history"]] == ["opened", "closed"]
    assert [(n["event"], n["destination"], n["status"], n["attempts"])
            for n in incident["notifications"]] == [
        ("opened", "pd", "sent", 1), ("opened", "hook", "sent", 1),
        ("closed", "pd", "sent", 1), ("closed", "hook", "sent", 1)]
    assert "restart-routing-key" not in output


def test_plain_serve_takes_a_condition_through_the_api(tmp_path, http_receiver):
    hook_env = "TRAILGUARD_ALERT_HOOK__URL"
    env = {**QUIET, hook_env: f"{http_receiver.url}/api-hook"}
    server = start_server(tmp_path / "data", extra_env=env)
    try:
        _api(server, "POST", "/destinations", {"name": "hook", "type": "webhook",
                                               "url_env": hook_env})
        _api(server, "POST", "/policies", {"name": "Custom", "destinations": ["hook"]})
        created = _api(server, "POST", "/conditions", {
            "policy": "Custom", "name": "SSH", "signal": SIGNAL,
            "nrql": {"query": f"FROM Log SELECT count(*) WHERE detail.type = '{SSH}'"},
            "terms": [{"threshold": 0, "thresholdDuration": 2,
                       "thresholdOccurrences": "AT_LEAST_ONCE"}]})
        assert send(server.base_url, server.firehose_key, _findings(2, "api")).status_code == 200
        [(path, body, headers)] = http_receiver.wait_for(1, timeout=30)
        assert (path, body["event"], body["condition"], body["value"]) == (
            "/api-hook", "opened", "SSH", 2.0)
        assert headers["X-Trailguard-Notification-Id"] == body["notification_id"]
    finally:
        server.stop()
    server = start_server(tmp_path / "data", extra_env=env)
    try:
        kept = _api(server, "GET", f"/conditions/{created['id']}")
        assert (kept["name"], kept["policy"], kept["source"]) == ("SSH", "Custom", "api")
    finally:
        output = server.stop()
    assert http_receiver.url not in output
