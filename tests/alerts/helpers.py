"""Building blocks for the alerts tests: conditions, events, a ticking evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trailguard.alerts.evaluator import Evaluator
from trailguard.alerts.incidents import ALERTS_FILE, IncidentStore
from trailguard.alerts.loader import parse_condition
from trailguard.alerts.model import AlertsConfig, Condition, Destination, Workflow
from trailguard.events import Event

T0 = 1_700_000_040_000  # a multiple of 60 s
SSH = "UnauthorizedAccess:EC2/SSHBruteForce"
GUIDE_QUERY = f"FROM Log SELECT count(*) WHERE detail.type = '{SSH}'"


def condition(query: str = GUIDE_QUERY, *, threshold: float = 1, duration: int = 120,
              occurrences: str = "AT_LEAST_ONCE", operator: str = "ABOVE",
              signal: dict[str, Any] | None = None, expiration: dict[str, Any] | None = None,
              extra_terms: list[dict[str, Any]] | None = None, **more: Any) -> Condition:
    raw = {"name": "SSH brute force", "nrql": {"query": query},
           "terms": [{"priority": "CRITICAL", "operator": operator, "threshold": threshold,
                      "thresholdDuration": duration, "thresholdOccurrences": occurrences},
                     *(extra_terms or [])],
           "signal": {"aggregationWindow": 60, "aggregationMethod": "CADENCE",
                      "aggregationDelay": 0, **(signal or {})},
           "expiration": expiration or {}, **more}
    return parse_condition(raw, "Security", "test")


def finding(ts: int, kind: str = SSH, **attributes: Any) -> Event:
    return Event("Log", ts, {"source": "aws.guardduty", "detail.type": kind, **attributes})


def config_for(*conditions: Condition) -> AlertsConfig:
    """One webhook destination and a workflow sending every incident event to it."""
    hook = Destination("hook", "webhook", {"url_env": "TG_TEST_HOOK_URL"})
    return AlertsConfig(conditions=list(conditions), destinations={"hook": hook},
                        workflows=[Workflow("all", ("hook",))])


def evaluator(store: Any, data_dir: Path, *conditions: Condition) -> Evaluator:
    return Evaluator(store, config_for(*conditions), IncidentStore(data_dir / ALERTS_FILE))


def run(evaluator: Evaluator, start: int, stop: int, step_s: int = 10) -> None:
    """Tick from `start` to `stop` inclusive every `step_s` seconds."""
    for now in range(start, stop + 1, step_s * 1000):
        evaluator.tick(now)


def timeline(evaluator: Evaluator) -> list[tuple[Any, ...]]:
    """(id, facet, kind, priority, opened, closed, reason, value) relative to T0, by id."""
    found = sorted(evaluator.incidents.incidents(1000), key=lambda incident: incident.id)
    return [(i.id, i.facet, i.kind, i.priority, (i.opened_ms - T0) // 1000,
             None if i.closed_ms is None else (i.closed_ms - T0) // 1000, i.close_reason, i.value)
            for i in found]


def notifications(evaluator: Evaluator) -> list[tuple[int, str, str]]:
    return [(item.incident_id, item.event, item.destination)
            for item in evaluator.incidents.outbox()]
