"""Open, escalate, acknowledge and close incidents, queueing their notifications and
recording their history in the same step.

Escalation: an incident opened at WARNING whose signal later violates the CRITICAL term
becomes CRITICAL (the same incident: one per condition and signal). It queues an
"escalated" notification, routed as an opening at the new priority, so a workflow that
pages on CRITICAL openings is paged; it never goes back down to WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from trailguard.alerts.incidents import Incident, IncidentStore
from trailguard.alerts.model import AlertsConfig, Condition
from trailguard.errors import AlertConflictError
from trailguard.logs import log_fields

log = logging.getLogger("trailguard.alerts")


class Lifecycle:
    """Incident transitions; each queues one notification per routed destination."""

    def __init__(self, store: IncidentStore, config: AlertsConfig,
                 wake: Callable[[], None] | None = None) -> None:
        self.store = store
        self.config = config
        self._wake = wake or (lambda: None)

    def open(self, condition: Condition, signal: str, facet: Any, *, kind: str, priority: str,
             now_ms: int, value: float | None, details: dict[str, Any]) -> Incident:
        """Open an incident for `signal` of `condition` and queue its "opened" notifications."""
        incident = self.store.open_incident(
            condition_key=condition.key, policy=condition.policy, condition_name=condition.name,
            signal=signal, facet=facet, kind=kind, priority=priority, now_ms=now_ms,
            value=value, details=details)
        log_fields(log, logging.WARNING, "incident opened", incident=incident.id,
                   condition=condition.key, signal=signal, priority=priority, kind=kind,
                   value=value)
        self.store.add_history(incident.id, "opened", now_ms, priority, value)
        self._notify(incident, "opened", now_ms)
        return incident

    def escalate(self, incident: Incident, priority: str, now_ms: int, value: float | None,
                 details: dict[str, Any]) -> Incident:
        """Raise `incident` to `priority` (once per priority) and queue "escalated"."""
        if incident.priority == priority:
            return incident
        details = {**details, "escalated_from": incident.priority, "escalated_ms": now_ms}
        escalated = self.store.update(incident.id, priority=priority, value=value,
                                      details=orjson.dumps(details).decode())
        log_fields(log, logging.WARNING, "incident escalated", incident=incident.id,
                   condition=incident.condition_key, signal=incident.signal,
                   priority=priority, previous=incident.priority, value=value)
        self.store.add_history(incident.id, "escalated", now_ms, priority, value,
                               f"from {incident.priority}")
        self._notify(escalated, "escalated", now_ms)
        return escalated

    def close(self, incident: Incident, now_ms: int, reason: str) -> Incident:
        """Close `incident` (once) and queue its "closed" notifications."""
        if incident.state == "closed":
            return incident
        closed = self.store.update(incident.id, state="closed", closed_ms=now_ms,
                                   close_reason=reason)
        log_fields(log, logging.INFO, "incident closed", incident=incident.id,
                   condition=incident.condition_key, signal=incident.signal, reason=reason)
        self.store.add_history(incident.id, "closed", now_ms, closed.priority, closed.value,
                               reason)
        self._notify(closed, "closed", now_ms)
        return closed

    def acknowledge(self, incident_id: int, now_ms: int) -> Incident:
        """Mark an open incident as acknowledged by a person."""
        incident = self.store.get(incident_id)
        if incident.state != "open":
            raise AlertConflictError(f"incident {incident_id} is {incident.state}; only an open "
                             "incident can be acknowledged")
        acknowledged = self.store.update(incident_id, state="acknowledged",
                                         acknowledged_ms=now_ms)
        log_fields(log, logging.INFO, "incident acknowledged", incident=incident_id)
        self.store.add_history(incident_id, "acknowledged", now_ms, acknowledged.priority,
                               acknowledged.value)
        self._notify(acknowledged, "acknowledged", now_ms)
        return acknowledged

    def close_by_hand(self, incident_id: int, now_ms: int) -> Incident:
        incident = self.store.get(incident_id)
        if incident.state == "closed":
            raise AlertConflictError(f"incident {incident_id} is already closed")
        return self.close(incident, now_ms, "closed by hand")

    def _notify(self, incident: Incident, event: str, now_ms: int) -> None:
        destinations = self.config.route(incident.policy, incident.priority,
                                         "opened" if event == "escalated" else event)
        earlier = incident.details.get("escalated_from")
        if earlier and event in ("acknowledged", "closed"):
            # Whoever was told of the WARNING opening also hears how it ends.
            destinations += [name for name in self.config.route(incident.policy, earlier, event)
                             if name not in destinations]
        if destinations and self.store.enqueue(incident.id, event, destinations, now_ms):
            self._wake()
