"""The alerts API in-process: the real app, the real alert service and SQLite file, a real
DuckDB store and a real webhook receiver on 127.0.0.1; the evaluator is ticked by hand."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerts.receivers import HttpReceiver
from starlette.testclient import TestClient

from trailguard.alerts.loader import load_alerts
from trailguard.alerts.model import AlertsConfig
from trailguard.alerts.service import AlertService
from trailguard.config import Config
from trailguard.events import Event
from trailguard.logs import KeyValueFormatter
from trailguard.store import DuckDBStore
from trailguard.web.app import create_app

API_KEY = "alerts-api-key-0123456789"
KEY = {"X-Api-Key": API_KEY}
T0 = 1_700_000_040_000  # a multiple of 60 s
SSH = "UnauthorizedAccess:EC2/SSHBruteForce"
HOOK_ENV = "TRAILGUARD_ALERT_API_HOOK__URL"
CONDITION = {
    "policy": "Custom", "name": "Any SSH brute force",
    "nrql": {"query": f"FROM Log SELECT count(*) WHERE detail.type = '{SSH}'"},
    "terms": [{"priority": "CRITICAL", "operator": "ABOVE", "threshold": 2,
               "thresholdDuration": 60, "thresholdOccurrences": "AT_LEAST_ONCE"},
              {"priority": "WARNING", "operator": "ABOVE", "threshold": 0,
               "thresholdDuration": 60, "thresholdOccurrences": "AT_LEAST_ONCE"}],
    "signal": {"aggregationWindow": 60, "aggregationMethod": "CADENCE", "aggregationDelay": 0,
               "fillOption": "STATIC", "fillValue": 0},
}
FILE = {"policies": [{"name": "GuardDuty", "pack": "aws-guardduty"}],
        "destinations": [{"name": "file-hook", "type": "webhook", "url_env": "TG_FILE_HOOK"}],
        "workflows": [{"name": "guardduty", "policies": ["GuardDuty"],
                       "destinations": ["file-hook"]}]}


class Harness:
    """A TestClient over the app, with the service it manages and the receiver."""

    def __init__(self, data_dir: Path, alerts_file: Path | None) -> None:
        self.store = DuckDBStore(data_dir)
        # Not started: the tests tick the evaluator and run deliveries themselves.
        file_config = load_alerts(alerts_file) if alerts_file else AlertsConfig()
        self.service = AlertService(self.store, file_config, data_dir)
        config = Config(data_dir=data_dir, firehose_access_key="f" * 20, api_key=API_KEY)
        self.client = TestClient(create_app(config, self.store, alerts=self.service))
        self.client.__enter__()

    def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.client.request(method, f"/api/v1/alerts{path}", json=body,
                                       headers=KEY)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.service.stop()
        self.store.close()


@pytest.fixture
def alerts_file(tmp_path: Path) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(FILE))
    return path


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpReceiver]:
    running = HttpReceiver()
    monkeypatch.setenv(HOOK_ENV, f"{running.url}/api-hook")
    yield running
    running.stop()


@pytest.fixture
def api(tmp_path: Path, alerts_file: Path, receiver: HttpReceiver) -> Iterator[Harness]:
    harness = Harness(tmp_path / "data", alerts_file)
    yield harness
    harness.close()


def _setup_routing(api: Harness) -> tuple[dict, dict, dict]:
    destination = api.call("POST", "/destinations", {
        "name": "api-hook", "type": "webhook", "url_env": HOOK_ENV}, 201)
    policy = api.call("POST", "/policies", {"name": "Custom", "destinations": ["api-hook"]},
                      201)
    condition = api.call("POST", "/conditions", CONDITION, 201)
    return destination, policy, condition


def _findings(api: Harness, *timestamps: int) -> None:
    api.store.write([Event("Log", ts, {"source": "aws.guardduty", "detail.type": SSH})
                     for ts in timestamps])


@pytest.mark.parametrize("path", ["/incidents", "/conditions", "/policies/1",
                                  "/destinations"])
def test_the_api_key_is_required(api, path):
    missing = api.client.get(f"/api/v1/alerts{path}")
    wrong = api.client.get(f"/api/v1/alerts{path}", headers={"X-Api-Key": "x" * 25})
    right = api.client.get(f"/api/v1/alerts{path}", headers={"Api-Key": API_KEY})
    assert (missing.status_code, missing.json()) == (401, {"error": "missing X-Api-Key header"})
    assert (wrong.status_code, wrong.json()) == (403, {"error": "X-Api-Key rejected"})
    assert right.status_code == 200
    posted = api.client.post("/api/v1/alerts/conditions", json=CONDITION)
    assert posted.status_code == 401 and api.call("GET", "/conditions?policy=Custom") == {
        "conditions": []}


def test_file_items_are_listed_with_ids_and_read_only(api):
    policies = api.call("GET", "/policies")["policies"]
    assert [(p["id"], p["name"], p["source"], p["conditions"], p["workflows"])
            for p in policies] == [(1, "GuardDuty", "file", 2, ["guardduty"])]
    conditions = api.call("GET", "/conditions")["conditions"]
    assert [(c["id"], c["policy"], c["name"], c["source"]) for c in conditions] == [
        (2, "GuardDuty", "GuardDuty S3 bucket anonymous access granted", "file"),
        (3, "GuardDuty", "GuardDuty SSH brute force", "file")]
    ssh = api.call("GET", "/conditions/3")
    assert (ssh["terms"], ssh["signal"]["aggregationDelay"]) == ([{
        "priority": "CRITICAL", "operator": "ABOVE", "threshold": 1.0,
        "thresholdDuration": 120, "thresholdOccurrences": "AT_LEAST_ONCE"}], 90)
    refused = api.call("PATCH", "/conditions/3", {"enabled": False}, 409)
    assert refused == {"error": "condition 'GuardDuty/GuardDuty SSH brute force' (id 3) comes "
                                "from the alerts file and is read-only here: change it in the "
                                "file and restart the server"}
    api.call("DELETE", "/policies/1", status=409)
    assert api.call("GET", "/destinations")["destinations"][0] | {"created_ms": 0,
                                                                  "updated_ms": 0} == {
        "id": 4, "source": "file", "name": "file-hook", "type": "webhook",
        "url_env": "TG_FILE_HOOK", "missing_env": ["TG_FILE_HOOK"], "created_ms": 0,
        "updated_ms": 0}


def test_created_condition_is_evaluated_without_a_restart_and_notifies(api, receiver,
                                                                       caplog):
    with caplog.at_level(logging.INFO):
        destination, policy, condition = _setup_routing(api)
    assert {key: destination[key] for key in ("id", "name", "type", "url_env", "missing_env",
                                             "source")} == {
        "id": 5, "name": "api-hook", "type": "webhook", "url_env": HOOK_ENV, "missing_env": [],
        "source": "api"}
    assert (policy["id"], policy["destinations"], policy["priorities"], policy["notify_on"],
            policy["conditions"]) == (6, ["api-hook"], ["CRITICAL", "WARNING"],
                                      ["opened", "acknowledged", "closed"], 0)
    assert condition["id"] == 7 and condition["signal"] == {
        "aggregationWindow": 60, "aggregationMethod": "CADENCE", "aggregationDelay": 0,
        "aggregationTimer": 60, "fillOption": "STATIC", "fillValue": 0.0}

    _findings(api, T0 + 5_000)
    api.service.evaluator.tick(T0)
    api.service.evaluator.tick(T0 + 60_000)
    [incident] = api.call("GET", "/incidents?state=open")["incidents"]
    assert {key: incident[key] for key in ("id", "condition_id", "condition_key", "priority",
                                          "state", "value", "opened_ms")} == {
        "id": 1, "condition_id": 7, "condition_key": "Custom/Any SSH brute force",
        "priority": "WARNING", "state": "open", "value": 1.0, "opened_ms": T0 + 60_000}
    assert api.service.deliverer.deliver_due() == 1
    [(path, body, headers)] = receiver.wait_for(1)
    sent = api.call("GET", "/incidents/1")["notifications"]
    assert [(n["event"], n["destination"], n["status"]) for n in sent] == [
        ("opened", "api-hook", "sent")]
    assert (path, body["event"], body["priority"], body["notification_id"],
            headers["X-Trailguard-Notification-Id"]) == (
        "/api-hook", "opened", "WARNING", sent[0]["notification_id"],
        sent[0]["notification_id"])
    logged = "\n".join(KeyValueFormatter().format(record) for record in caplog.records)
    assert receiver.url not in logged and "alerts api change" in logged


def test_escalation_acknowledge_and_close_by_hand(api, receiver):
    _setup_routing(api)
    _findings(api, T0 + 5_000, *(T0 + 61_000 + n for n in range(3)))
    for now in (T0, T0 + 60_000, T0 + 120_000):
        api.service.evaluator.tick(now)
    acknowledged = api.call("POST", "/incidents/1/acknowledge", status=200)
    assert (acknowledged["state"], acknowledged["priority"]) == ("acknowledged", "CRITICAL")
    api.call("POST", "/incidents/1/acknowledge", status=409)
    closed = api.call("POST", "/incidents/1/close")
    assert (closed["state"], closed["close_reason"]) == ("closed", "closed by hand")
    assert [(h["event"], h["priority"], h["note"]) for h in closed["history"]] == [
        ("opened", "WARNING", None), ("escalated", "CRITICAL", "from WARNING"),
        ("acknowledged", "CRITICAL", None), ("closed", "CRITICAL", "closed by hand")]
    assert [n["event"] for n in closed["notifications"]] == [
        "opened", "escalated", "acknowledged", "closed"]
    assert api.call("POST", "/incidents/1/close", status=409) == {
        "error": "incident 1 is already closed"}
    assert api.call("GET", "/incidents/99", status=404) == {"error": "no incident with id 99"}
    assert [i["id"] for i in api.call("GET", "/incidents?state=closed")["incidents"]] == [1]
    assert api.call("GET", "/incidents?state=open,acknowledged") == {"incidents": []}
    assert api.call("GET", "/incidents?state=gone", status=400) == {
        "error": "`state` must be one of open, acknowledged, closed, not 'gone'"}


def test_api_items_survive_a_restart_with_their_ids(tmp_path, alerts_file, receiver):
    first = Harness(tmp_path / "data", alerts_file)
    _setup_routing(first)
    first.call("PATCH", "/conditions/7", {"description": "kept"})
    first.close()
    second = Harness(tmp_path / "data", alerts_file)
    try:
        condition = second.call("GET", "/conditions/7")
        assert (condition["name"], condition["description"], condition["source"]) == (
            "Any SSH brute force", "kept", "api")
        assert [c.key for c in second.service.config.enabled] == [
            "GuardDuty/GuardDuty S3 bucket anonymous access granted",
            "GuardDuty/GuardDuty SSH brute force", "Custom/Any SSH brute force"]
        assert second.service.config.route("Custom", "WARNING", "opened") == ["api-hook"]
        assert second.service.config.route("GuardDuty", "WARNING", "opened") == ["file-hook"]
    finally:
        second.close()


def test_without_an_alerts_file_the_api_still_manages_conditions(tmp_path, receiver):
    api = Harness(tmp_path / "data", None)
    try:
        assert api.call("GET", "/policies") == {"policies": []}
        _setup_routing(api)
        assert [c.key for c in api.service.config.enabled] == ["Custom/Any SSH brute force"]
    finally:
        api.close()


def test_disabling_or_deleting_a_condition_closes_its_incidents(api, receiver):
    _setup_routing(api)
    _findings(api, T0 + 5_000)
    api.service.evaluator.tick(T0)
    api.service.evaluator.tick(T0 + 60_000)
    disabled = api.call("PATCH", "/conditions/7", {"enabled": False})
    assert disabled["enabled"] is False and api.service.config.enabled[-1].key.startswith("Gu")
    assert api.call("GET", "/incidents/1")["close_reason"] == "condition disabled"
    api.call("DELETE", "/policies/6", status=409)
    api.call("DELETE", "/destinations/5", status=409)
    api.call("DELETE", "/conditions/7", status=204)
    api.call("GET", "/conditions/7", status=404)
    api.call("DELETE", "/policies/6", status=204)
    api.call("DELETE", "/destinations/5", status=204)
    assert [d["name"] for d in api.call("GET", "/destinations")["destinations"]] == [
        "file-hook"]
    assert [i["condition_id"] for i in api.call("GET", "/incidents")["incidents"]] == [None]


def test_renaming_a_condition_closes_the_incidents_of_the_old_name(api, receiver):
    _setup_routing(api)
    _findings(api, T0 + 5_000)
    api.service.evaluator.tick(T0)
    api.service.evaluator.tick(T0 + 60_000)
    renamed = api.call("PUT", "/conditions/7", {**CONDITION, "name": "SSH, renamed"})
    assert (renamed["id"], renamed["name"]) == (7, "SSH, renamed")
    assert api.call("GET", "/incidents/1")["close_reason"] == "condition changed"


@pytest.mark.parametrize(("change", "message"), [
    ({"name": ""}, "`name` is required and must be a non-empty string"),
    ({"policy": "Nope"}, "`policy` 'Nope' does not exist; create it first"),
    ({"term": []}, "unknown field `term` in a condition"),
    ({"terms": []}, "`terms` must be a non-empty list of thresholds"),
    ({"terms": [{"threshold": "two"}]}, "`terms[0].threshold` must be a number, not 'two'"),
    ({"terms": [{"operator": "ABOVE"}]}, "`terms[0].threshold` is required"),
    ({"terms": [{"threshold": 1, "priority": "LOW"}]},
     "`priority` must be CRITICAL or WARNING"),
    ({"terms": [{"threshold": 1, "operator": "OVER"}]}, "unknown operator OVER in `operator`"),
    ({"terms": [{"threshold": 1, "thresholdDuration": 0}]},
     "`terms[0].thresholdDuration` must be a whole number of seconds from 1 to 86,400, not 0"),
    ({"nrql": {"query": "FROM Log SELECT count(*) SINCE 1 day ago"}},
     "remove SINCE from `nrql.query`"),
    ({"nrql": {"query": "FROM Log SELEC count(*)"}}, "invalid NRQL in `nrql.query`"),
    ({"nrql": "FROM Log SELECT count(*)"}, "`nrql` must be an object and is required"),
    ({"signal": {"aggregationWindow": "60"}},
     "`signal.aggregationWindow` must be a whole number of seconds from 1 to 7,200, not '60'"),
    ({"signal": {"aggregationMethod": "SLOW"}}, "`aggregationMethod` must be one of"),
    ({"signal": {"window": 60}}, "unknown field `signal.window`"),
    ({"enabled": "yes"}, "`enabled` must be true or false"),
    ({"expiration": {"expirationDuration": -1}},
     ("`expiration.expirationDuration` must be a whole number of seconds from 1 to 172,800, "
     "not -1")),
])
def test_condition_validation_names_the_field(api, change, message):
    _setup_routing(api)
    error = api.call("POST", "/conditions", {**CONDITION, "name": "other", **change}, 400)
    assert message in error["error"]


@pytest.mark.parametrize(("body", "message"), [
    ({"name": "s", "type": "slack", "url": "https://hooks.invalid/T/B/C"},
     ("`url` would put a secret in the API: set it in an environment variable and give its "
      "name as `url_env`")),
    ({"name": "s", "type": "slack", "url_env": HOOK_ENV, "channel": "#sec"},
     "unknown field `channel` in a destination"),
    ({"name": "s", "type": "slack", "url_env": HOOK_ENV, "host": "127.0.0.1"},
     "`host` is not a setting of slack destinations"),
    ({"name": "s", "type": "slack", "url_env": "SLACK_URL"},
     "`url_env` must name a variable starting with TRAILGUARD_ALERT_S__"),
    ({"name": "s", "type": "slack", "url_env": "https://hooks.invalid/x"},
     "`url_env` must be the name of an environment variable"),
    ({"name": "s", "type": "sms"}, "`type` must be one of webhook, slack, email, pagerduty"),
    ({"name": "p", "type": "pagerduty"}, "`routing_key_env` is required"),
    ({"name": "w", "type": "webhook", "url_env": "TRAILGUARD_ALERT_W__URL",
      "headers_env": {"Authorization": "AWS_SECRET_ACCESS_KEY"}},
     "`headers_env.Authorization` must name a variable starting with TRAILGUARD_ALERT_W__"),
    ({"name": "m", "type": "email", "host": "127.0.0.1", "from": "a@example.com",
      "to": ["b@example.com"], "port": 70000}, "`port` must be a number between 1 and 65535"),
    ({"name": "file-hook", "type": "slack", "url_env": "TRAILGUARD_ALERT_FILE_HOOK__URL"},
     "a destination named 'file-hook' already exists (id 4, from the alerts file)"),
    ([], "the request body must be a JSON object describing a destination"),
])
def test_destination_validation_names_the_field(api, body, message):
    error = api.call("POST", "/destinations", body, 409 if "exists" in message else 400)
    assert message in error["error"]


def test_a_body_that_is_not_json_is_refused(api):
    response = api.client.post("/api/v1/alerts/policies", content=b"{name", headers=KEY)
    assert response.status_code == 400
    assert response.json()["error"].startswith("request body is not JSON")


def test_the_destination_secret_is_never_returned(api, receiver):
    _setup_routing(api)
    everything = api.client.get("/api/v1/alerts/destinations", headers=KEY).text
    everything += api.client.get("/api/v1/alerts/destinations/5", headers=KEY).text
    assert HOOK_ENV in everything and receiver.url not in everything


def test_a_file_item_named_like_an_api_item_stops_the_start(tmp_path, alerts_file, receiver):
    from trailguard.errors import AlertError

    api = Harness(tmp_path / "data", None)
    api.call("POST", "/policies", {"name": "GuardDuty"}, 201)
    api.close()
    with pytest.raises(AlertError, match="policy 'GuardDuty' is in the alerts file and was "
                                         r"also made through the API \(id 1\)"):
        Harness(tmp_path / "data", alerts_file)


MAIL = {"name": "oncall-mail", "type": "email", "host": "127.0.0.1", "port": 2525,
        "starttls": False, "from": "trailguard@example.com", "to": ["oncall@example.com"]}


@pytest.mark.parametrize(("change", "message"), [
    ({"from": "a@b.c\r\nBcc: evil@x.y"}, "`from` must be one line without control characters"),
    ({"from": "a\u2028b@c.d"}, "`from` must be one line without control characters"),
    ({"to": ["ok@example.com", "b@c.d\nBcc: evil@x.y"]},
     "`to[1]` must be one line without control characters"),
    ({"to": "b@c.d\r\nBcc: evil@x.y"}, "`to` must be one line without control characters"),
    ({"title": "{{ condition }}\r\nBcc: evil@x.y"},
     "`title` must be one line without control characters"),
    ({"host": "127.0.0.1\r\nRCPT TO:<evil@x.y>"},
     "`host` must be one line without control characters"),
])
def test_header_injection_is_refused_on_create_and_update(api, change, message):
    created = api.call("POST", "/destinations", {**MAIL, **change}, 400)
    assert message in created["error"]
    mail = api.call("POST", "/destinations", MAIL, 201)
    updated = api.call("PUT", f"/destinations/{mail['id']}", {**MAIL, **change}, 400)
    assert message in updated["error"]


def test_header_injection_is_refused_in_the_alerts_file(tmp_path):
    from trailguard.errors import AlertError

    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"destinations": [{**MAIL, "from": "a@b.c\r\nBcc: e@x.y"}]}))
    with pytest.raises(AlertError, match="destination 'oncall-mail': `from` must be one line"):
        load_alerts(path)


def test_a_poisoned_stored_destination_does_not_stop_the_webhook(api, receiver):
    """A destination stored before these checks (CR/LF in `from`) is skipped with an error;
    the policy's webhook notification is still delivered."""
    _setup_routing(api)
    with api.service.incidents.transaction():
        api.service.catalog.add("destination", "old-mail",
                                {**MAIL, "name": "old-mail", "from": "a@b.c\r\nBcc: e@x.y"}, T0)
        api.service.reload()
    api.call("PUT", "/policies/6", {"name": "Custom", "destinations": ["api-hook"]})
    assert "old-mail" not in api.service.config.destinations
    _findings(api, T0 + 5_000)
    api.service.evaluator.tick(T0)
    api.service.evaluator.tick(T0 + 60_000)
    assert api.service.deliverer.deliver_due() == 1
    [(path, body, _)] = receiver.wait_for(1)
    assert (path, body["event"]) == ("/api-hook", "opened")


@pytest.mark.parametrize(("signal", "term", "message"), [
    ({}, {"thresholdDuration": 100_000_000_000},
     ("`terms[0].thresholdDuration` must be a whole number of seconds from 1 to 86,400, "
     "not 100000000000")),
    ({}, {"thresholdDuration": 99999999999999999999}, ("`terms[0].thresholdDuration` must be a "
                                                       "whole number of seconds")),
    ({"aggregationWindow": 1e300}, {}, ("`signal.aggregationWindow` must be a whole number of "
                                       "seconds from 1 to 7,200, not 1e+300")),
    ({"aggregationWindow": 0}, {}, ("`signal.aggregationWindow` must be a whole number of "
                                   "seconds from 1 to 7,200, not 0")),
    ({"aggregationWindow": 1.7}, {}, ("`signal.aggregationWindow` must be a whole number of "
                                     "seconds from 1 to 7,200, not 1.7")),
    ({"aggregationWindow": 0.5}, {}, ("`signal.aggregationWindow` must be a whole number of "
                                     "seconds from 1 to 7,200, not 0.5")),
    ({"aggregationWindow": -5}, {}, ("`signal.aggregationWindow` must be a whole number of "
                                    "seconds from 1 to 7,200, not -5")),
    ({"aggregationWindow": 7201}, {}, "not 7201"),
    ({"aggregationDelay": 7201}, {}, ("`signal.aggregationDelay` must be a whole number of "
                                     "seconds from 0 to 7,200")),
    ({"aggregationTimer": 0}, {}, "`signal.aggregationTimer` must be a whole number"),
    ({"aggregationWindow": 1}, {"thresholdDuration": 3600},
     "`terms[0].thresholdDuration` 3600 s spans 3,600 windows of 1 s; at most 2,880"),
    ({"fillValue": 18446744073709551615}, {}, "`signal.fillValue` is too large a number"),
])
def test_durations_follow_one_rule_with_new_relic_limits(api, signal, term, message):
    _setup_routing(api)
    body = {**CONDITION, "name": "other", "signal": {**CONDITION["signal"], **signal},
            "terms": [{**CONDITION["terms"][0], **term}]}
    error = api.call("POST", "/conditions", body, 400)["error"]
    assert message in error and error.count("condition 'other'") <= 1


def test_durations_at_the_limits_and_null_defaults_are_accepted(api):
    _setup_routing(api)
    body = {**CONDITION, "name": "long", "violationTimeLimitSeconds": 2_592_000,
            "signal": {"aggregationWindow": 7200.0, "aggregationDelay": None},
            "expiration": {"expirationDuration": 172_800, "closeViolationsOnExpiration": True},
            "terms": [{**CONDITION["terms"][0], "thresholdDuration": 86_400}]}
    created = api.call("POST", "/conditions", body, 201)
    assert (created["signal"]["aggregationWindow"], created["signal"]["aggregationDelay"],
            created["terms"][0]["thresholdDuration"]) == (7200, 120, 86_400)
    api.call("PUT", f"/conditions/{created['id']}", created)


@pytest.mark.parametrize(("method", "path", "message"), [
    ("GET", "/conditions/99999999999999999999999999",
     "no condition with id 99999999999999999999999999"),
    ("PATCH", "/conditions/9223372036854775808", "no condition with id 9223372036854775808"),
    ("DELETE", "/conditions/99999999999999999999999", "no condition with id"),
    ("GET", "/policies/99999999999999999999999", "no policy with id"),
    ("PUT", "/policies/99999999999999999999999", "no policy with id"),
    ("DELETE", "/policies/99999999999999999999999", "no policy with id"),
    ("GET", "/destinations/99999999999999999999999", "no destination with id"),
    ("PUT", "/destinations/99999999999999999999999", "no destination with id"),
    ("DELETE", "/destinations/99999999999999999999999", "no destination with id"),
    ("GET", "/incidents/99999999999999999999999", "no incident with id"),
    ("POST", "/incidents/99999999999999999999999/acknowledge",
     "no incident with id 99999999999999999999999"),
    ("POST", "/incidents/99999999999999999999999/close", "no incident with id"),
])
def test_ids_out_of_range_are_404(api, method, path, message):
    body = {"name": "x"} if method in ("PUT", "PATCH") else None
    assert message in api.call(method, path, body, 404)["error"]


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/incidents?limit=%C2%B9", None, "`limit` must be a whole number, not '¹'"),
    ("/incidents?limit=99999999999999999999999", None, "`limit` must be between 1 and 1000"),
    ("/destinations", {"name": "api-hook", "type": "webhook", "url_env": HOOK_ENV,
                       "payload": {"n": [1, 18446744073709551615]}},
     "`payload.n[1]` is too large a number"),
    ("/policies", {"name": 18446744073709551615}, "`name` is too large a number"),
])
def test_huge_numbers_elsewhere_are_400(api, path, body, message):
    method = "GET" if body is None else "POST"
    assert message in api.call(method, path, body, 400)["error"]


@pytest.mark.parametrize(("body", "message"), [
    ({"name": "pd", "type": "pagerduty", "routing_key_env": HOOK_ENV},
     "`routing_key_env` must name a variable starting with TRAILGUARD_ALERT_PD__"),
    ({"name": "pd", "type": "pagerduty", "routing_key_env": "TRAILGUARD_ALERT_PD__KEY",
      "events_url": "http://127.0.0.1:9/steal"},
     ("`events_url` is refused through the API: a PagerDuty destination made through the API "
     "posts to PagerDuty's own endpoint")),
    ({**MAIL, "username_env": "TRAILGUARD_ALERT_ONCALL_MAIL__USER",
      "password_env": "TRAILGUARD_ALERT_ONCALL_MAIL__PASSWORD"},
     "`username_env` is refused through the API: an e-mail destination that logs in"),
    ({"name": "w", "type": "webhook", "url_env": "TRAILGUARD_ALERT_W__URL",
      "headers_env": {"Authorization": "TRAILGUARD_ALERT_API_HOOK__URL"}},
     "`headers_env.Authorization` must name a variable starting with TRAILGUARD_ALERT_W__"),
    ({"name": "w", "type": "webhook", "url_env": "TRAILGUARD_ALERT_W__"},
     "`url_env` must name a variable starting with TRAILGUARD_ALERT_W__ (e.g. "),
    ({"name": "s", "type": "slack", "token": "xoxb-1"},
     ("`token` would put a secret in the API: set it in an environment variable and give its "
     "name as `url_env` (a Slack incoming-webhook URL, which holds the token)")),
])
def test_a_destination_may_use_only_its_own_secrets(api, receiver, body, message):
    _setup_routing(api)
    assert message in api.call("POST", "/destinations", body, 400)["error"]


def test_a_name_differing_only_in_punctuation_cannot_share_secrets(api, receiver):
    _setup_routing(api)
    error = api.call("POST", "/destinations", {"name": "API hook", "type": "slack",
                                               "url_env": HOOK_ENV}, 409)
    assert error == {"error": "destination name 'API hook' would share its variables "
                              "(TRAILGUARD_ALERT_API_HOOK__...) with destination 'api-hook' "
                              "(id 5); choose another name"}


def test_a_stored_destination_using_a_foreign_secret_is_not_used(api, receiver, caplog):
    with api.service.incidents.transaction():
        api.service.catalog.add("destination", "pd", {
            "name": "pd", "type": "pagerduty", "routing_key_env": HOOK_ENV,
            "events_url": f"{receiver.url}/steal"}, T0)
        api.service.reload()
    assert "pd" not in api.service.config.destinations
    assert any(r.getMessage() == "stored destination skipped" and r.fields["destination"] == "pd"
               for r in caplog.records)


@pytest.mark.parametrize("query", ["FROM Log SELECT *", "FROM Log SELECT detail.type",
                                   "SELECT * FROM Log WHERE detail.type = 'x'"])
def test_a_query_that_does_not_aggregate_is_refused(api, query):
    _setup_routing(api)
    error = api.call("POST", "/conditions", {**CONDITION, "name": "rows",
                                             "nrql": {"query": query}}, 400)
    assert error == {"error": "condition 'rows': `nrql.query` must aggregate, e.g. SELECT "
                              "count(*) or SELECT max(x), not list events"}


@pytest.mark.parametrize("query", ["FROM Log SELECT count(*), max(detail.severity)",
                                   "FROM Log SELECT percentile(detail.severity, 50, 90)"])
def test_a_query_with_more_than_one_value_is_refused(api, query):
    _setup_routing(api)
    error = api.call("POST", "/conditions", {**CONDITION, "name": "two",
                                             "nrql": {"query": query}}, 400)
    assert error == {"error": "condition 'two': `nrql.query` must yield one value (one "
                              "aggregate, one percentile), not 2"}


def test_errors_name_the_condition_once(api):
    _setup_routing(api)
    error = api.call("POST", "/conditions", {
        **CONDITION, "name": "c7", "nrql": {"query": "FROM Log SELECT count(*) SINCE 1 day ago"}},
        400)
    assert error == {"error": "condition 'c7': remove SINCE from `nrql.query`; the evaluator "
                              "sets the time range of each window"}
