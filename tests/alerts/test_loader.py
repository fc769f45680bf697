"""Alerts files and New Relic quickstart condition files; templates (field case BL-23)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import T0, finding

from trailguard.alerts.incidents import Incident
from trailguard.alerts.loader import load_alerts, load_condition_file
from trailguard.alerts.model import Fill, Method
from trailguard.alerts.templates import incident_fields, render
from trailguard.errors import AlertError

QUICKSTARTS = Path(__file__).resolve().parents[3] / "shared" / "nrql" / "alert-policies"


def test_reads_a_new_relic_quickstart_condition():
    path = QUICKSTARTS / "redpanda" / "ServiceErrors.yml"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    condition = load_condition_file(path)
    assert (condition.name, condition.query, condition.time_limit_s) == (
        "Service Errors", ("FROM Metric SELECT latest(vectorized_kafka_rpc_service_errors) "
        "as 'Service Errors'"), 86400)
    assert [(t.priority.value, t.operator, t.threshold, t.duration_s, t.all_points)
            for t in condition.terms] == [("CRITICAL", "ABOVE", 5.0, 180, True),
                                          ("WARNING", "ABOVE", 3.0, 300, True)]
    assert (condition.signal.method, condition.signal.fill) == (Method.EVENT_FLOW, Fill.NONE)


@pytest.mark.parametrize(("change", "message"), [
    ({"nrql": {"query": "FROM Log SELECT count(*) SINCE 1 hour ago"}}, "remove SINCE"),
    ({"nrql": {"query": "FROM Log SELEC count(*)"}}, "invalid NRQL"),
    ({"type": "BASELINE"}, "only STATIC is supported"),
    ({"terms": [{"operator": "UNDER", "threshold": 1}]}, "unknown operator UNDER"),
    ({"terms": []}, "needs at least one term"),
])
def test_invalid_conditions_are_named(tmp_path, change, message):
    raw = {"name": "c", "nrql": {"query": "FROM Log SELECT count(*)"},
           "terms": [{"threshold": 1}], **change}
    path = tmp_path / "alerts.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"policies": [{"name": "p", "conditions": [raw]}]}))
    with pytest.raises(AlertError, match=message):
        load_alerts(path)


def test_secrets_are_refused_in_the_file(tmp_path):
    path = tmp_path / "alerts.yaml"
    path.write_text("destinations:\n  - {name: s, type: slack, url: 'https://hooks.x/T/B/C'}\n")
    with pytest.raises(AlertError, match="use `url_env`: VARIABLE_NAME instead of url"):
        load_alerts(path)


def test_bl23_templates_fall_back_to_unknown():
    incident = Incident(7, "p/c", "p", "c", "", None, "threshold", "CRITICAL", "open", T0,
                        None, None, None, 1.0, {"attributes": {"detail.severity": None}})
    fields = incident_fields(incident, "opened")
    assert render("sev={{ detail.severity }} title={{detail.title}} by={{ account }} "
                  "v={{ value }} at={{ opened_at }} x={{ undefined_name }}", fields) == (
        "sev=(unknown) title=(unknown) by=(unknown) v=1 at=2023-11-14T22:14:00Z x=(unknown)")
    assert render("{{ a }}|{{ b }}|{{ c }}", {"a": "", "b": "undefined", "c": [None]}) == (
        "(unknown)|(unknown)|(unknown)")


def test_alerts_test_command_prints_when_it_would_have_fired(tmp_path, store):
    store.write([finding(T0 + 5_000), finding(T0 + 6_000), finding(T0 + 7_000)])
    store.close()
    condition_file = Path(__file__).resolve().parents[2] / "trailguard" / "content" / \
        "alerts" / "aws-guardduty" / "SshBruteForce.yml"
    result = subprocess.run(
        [sys.executable, "-m", "trailguard", "alerts", "test", str(condition_file),
         "--data-dir", str(tmp_path / "data"), "--since", str(T0), "--until", str(T0 + 600_000)],
        check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "2023-11-14T22:16:30Z  OPEN   #1 CRITICAL value=3 (threshold)",
        "2023-11-14T22:18:30Z  CLOSE  #1 signal recovered",
        "1 incident(s) over 10 window(s) of 60 s; 0 still open at the end"]
