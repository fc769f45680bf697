"""Alerts: NRQL conditions evaluated per window, incidents, notifications with retries."""

from trailguard.alerts.delivery import Deliverer
from trailguard.alerts.evaluator import Evaluator
from trailguard.alerts.incidents import Incident, IncidentStore
from trailguard.alerts.loader import load_alerts, load_condition_file, pack_conditions
from trailguard.alerts.model import AlertsConfig, Condition
from trailguard.alerts.service import AlertService, start_alerts

__all__ = ["AlertService", "AlertsConfig", "Condition", "Deliverer", "Evaluator", "Incident",
           "IncidentStore", "load_alerts", "load_condition_file", "pack_conditions",
           "start_alerts"]
