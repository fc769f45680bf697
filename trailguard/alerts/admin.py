"""What the alerts API does: manage policies, conditions and destinations while the
service runs, and list, acknowledge and close incidents.

Every change is one SQLite transaction (catalog row, incidents it closes, their
notifications) and is live for the evaluator as soon as it commits: the service's
configuration is rebuilt inside the same lock that each evaluation holds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from trailguard.alerts.catalog import Catalog, Entry, destination_from_definition
from trailguard.alerts.definitions import (
    condition_from_json,
    condition_to_json,
    destination_from_json,
    destination_to_json,
    env_prefix,
    policy_from_json,
)
from trailguard.alerts.incidents import Incident
from trailguard.errors import AlertConflictError, AlertError

if TYPE_CHECKING:
    from trailguard.alerts.service import AlertService

STATES = ("open", "acknowledged", "closed")
MAX_LIMIT = 1000


class AlertAdmin:
    """The alerts API's operations on a running `AlertService`."""

    def __init__(self, service: AlertService, environ: Mapping[str, str] = os.environ,
                 clock: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.service = service
        self.incidents = service.incidents
        self.catalog: Catalog = service.catalog
        self.environ = environ
        self.clock = clock

    # policies ---------------------------------------------------------------------------

    def policies(self) -> list[dict[str, Any]]:
        return [self._policy_json(entry) for entry in self.catalog.entries("policy")]

    def policy(self, policy_id: int) -> dict[str, Any]:
        return self._policy_json(self.catalog.get("policy", policy_id))

    def create_policy(self, body: Any) -> dict[str, Any]:
        with self.incidents.transaction():
            policy = policy_from_json(body, set(self.service.config.destinations))
            entry = self.catalog.add("policy", policy["name"], policy, self.clock())
            self.service.reload()
        return self._policy_json(entry)

    def update_policy(self, policy_id: int, body: Any) -> dict[str, Any]:
        with self.incidents.transaction():
            entry = self.catalog.get("policy", policy_id)
            self.catalog.check_writable(entry)
            policy = policy_from_json(body, set(self.service.config.destinations))
            if policy["name"] != entry.name and self._conditions_of(entry.name):
                raise AlertConflictError(f"policy '{entry.name}' has conditions; it can be "
                                         "renamed only when it has none")
            entry = self.catalog.replace(entry, policy["name"], policy, self.clock())
            self.service.reload()
        return self._policy_json(entry)

    def delete_policy(self, policy_id: int) -> None:
        with self.incidents.transaction():
            entry = self.catalog.get("policy", policy_id)
            self.catalog.check_writable(entry)
            held = self._conditions_of(entry.name)
            if held:
                raise AlertConflictError(f"policy '{entry.name}' still has {len(held)} "
                                         "condition(s); delete them first")
            self.catalog.remove(entry)
            self.service.reload()

    # conditions -------------------------------------------------------------------------

    def conditions(self, policy: str | None = None) -> list[dict[str, Any]]:
        return [_item_json(entry) for entry in self.catalog.entries("condition")
                if policy is None or entry.definition["policy"] == policy]

    def condition(self, condition_id: int) -> dict[str, Any]:
        return _item_json(self.catalog.get("condition", condition_id))

    def create_condition(self, body: Any) -> dict[str, Any]:
        with self.incidents.transaction():
            _, condition = self._checked_condition(body)
            entry = self.catalog.add("condition", condition.key, condition_to_json(condition),
                                     self.clock())
            self.service.reload()
        return _item_json(entry)

    def update_condition(self, condition_id: int, body: Any, merge: bool) -> dict[str, Any]:
        """Replace a condition (`merge`: change only the top-level fields in `body`)."""
        with self.incidents.transaction():
            entry = self.catalog.get("condition", condition_id)
            self.catalog.check_writable(entry)
            if merge and isinstance(body, dict):
                body = {**entry.definition, **body}
            _, condition = self._checked_condition(body)
            now = self.clock()
            if condition.key != entry.name:
                self._end_incidents(entry.name, now, "condition changed")
            elif not condition.enabled and entry.definition.get("enabled", True):
                self._end_incidents(entry.name, now, "condition disabled")
            entry = self.catalog.replace(entry, condition.key, condition_to_json(condition), now)
            self.service.reload()
        return _item_json(entry)

    def delete_condition(self, condition_id: int) -> None:
        with self.incidents.transaction():
            entry = self.catalog.get("condition", condition_id)
            self.catalog.check_writable(entry)
            self._end_incidents(entry.name, self.clock(), "condition deleted")
            self.catalog.remove(entry)
            self.service.reload()

    # destinations -----------------------------------------------------------------------

    def destinations(self) -> list[dict[str, Any]]:
        return [self._destination_json(entry) for entry in self.catalog.entries("destination")]

    def destination(self, destination_id: int) -> dict[str, Any]:
        return self._destination_json(self.catalog.get("destination", destination_id))

    def create_destination(self, body: Any) -> dict[str, Any]:
        destination = destination_from_json(body)
        definition = {"name": destination.name, "type": destination.type,
                      **destination.settings}
        with self.incidents.transaction():
            self._check_own_variables(destination.name, None)
            entry = self.catalog.add("destination", destination.name, definition, self.clock())
            self.service.reload()
        return self._destination_json(entry)

    def update_destination(self, destination_id: int, body: Any) -> dict[str, Any]:
        destination = destination_from_json(body)
        definition = {"name": destination.name, "type": destination.type,
                      **destination.settings}
        with self.incidents.transaction():
            entry = self.catalog.get("destination", destination_id)
            self.catalog.check_writable(entry)
            if destination.name != entry.name:
                self._check_unused(entry, "renamed")
            self._check_own_variables(destination.name, entry.id)
            entry = self.catalog.replace(entry, destination.name, definition, self.clock())
            self.service.reload()
        return self._destination_json(entry)

    def delete_destination(self, destination_id: int) -> None:
        with self.incidents.transaction():
            entry = self.catalog.get("destination", destination_id)
            self.catalog.check_writable(entry)
            self._check_unused(entry, "deleted")
            self.catalog.remove(entry)
            self.service.reload()

    # incidents --------------------------------------------------------------------------

    def incident_list(self, states: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
        wrong = [state for state in states if state not in STATES]
        if wrong:
            raise AlertError(f"`state` must be one of {', '.join(STATES)}, not {wrong[0]!r}")
        if not 1 <= limit <= MAX_LIMIT:
            raise AlertError(f"`limit` must be between 1 and {MAX_LIMIT}")
        return [self._incident_json(i) for i in self.incidents.incidents(limit, states)]

    def incident(self, incident_id: int) -> dict[str, Any]:
        incident = self.incidents.get(incident_id)
        return {**self._incident_json(incident),
                "history": self.incidents.history(incident_id),
                "notifications": self.incidents.notifications(incident_id)}

    def acknowledge(self, incident_id: int) -> dict[str, Any]:
        with self.incidents.transaction():
            self.service.evaluator.lifecycle.acknowledge(incident_id, self.clock())
        return self.incident(incident_id)

    def close(self, incident_id: int) -> dict[str, Any]:
        with self.incidents.transaction():
            self.service.evaluator.lifecycle.close_by_hand(incident_id, self.clock())
        return self.incident(incident_id)

    # helpers ----------------------------------------------------------------------------

    def _checked_condition(self, body: Any) -> tuple[str, Any]:
        policy, condition = condition_from_json(body)
        if self.catalog.find("policy", policy) is None:
            raise AlertError(f"`policy` '{policy}' does not exist; create it first "
                             "(POST /api/v1/alerts/policies)")
        return policy, condition

    def _conditions_of(self, policy: str) -> list[Entry]:
        return [entry for entry in self.catalog.entries("condition")
                if entry.definition["policy"] == policy]

    def _end_incidents(self, condition_key: str, now_ms: int, reason: str) -> None:
        """Close what a condition left open, so no incident outlives its condition."""
        for incident in self.incidents.find_open(condition_key):
            self.service.evaluator.lifecycle.close(incident, now_ms, reason)
        self.incidents.drop_state(condition_key)

    def _check_own_variables(self, name: str, own_id: int | None) -> None:
        """Two destinations whose names differ only in case or punctuation would share
        their variables (`env_prefix`): refuse the second."""
        prefix = env_prefix(name)
        for other in self.catalog.entries("destination"):
            if other.id != own_id and other.name != name \
                    and env_prefix(other.name) == prefix:  # same name: the catalog's 409
                raise AlertConflictError(
                    f"destination name '{name}' would share its variables ({prefix}...) with "
                    f"destination '{other.name}' (id {other.id}); choose another name")

    def _check_unused(self, entry: Entry, change: str) -> None:
        users = [policy.name for policy in self.catalog.entries("policy", "api")
                 if entry.name in policy.definition["destinations"]]
        if users:
            raise AlertConflictError(f"destination '{entry.name}' is used by policy "
                                     f"{', '.join(users)}; remove it there before it is "
                                     f"{change}")

    def _policy_json(self, entry: Entry) -> dict[str, Any]:
        counted = len(self._conditions_of(entry.name))
        if entry.source == "api":
            return {**_item_json(entry), "conditions": counted}
        workflows = [w.name for w in self.service.file_config.workflows
                     if not w.policies or entry.name in w.policies]
        return {**_item_json(entry), "conditions": counted, "workflows": workflows}

    def _destination_json(self, entry: Entry) -> dict[str, Any]:
        destination = destination_from_definition(entry.definition)
        return {"id": entry.id, "source": entry.source,
                **destination_to_json(destination, dict(self.environ)),
                "created_ms": entry.created_ms, "updated_ms": entry.updated_ms}

    def _incident_json(self, incident: Incident) -> dict[str, Any]:
        condition = self.catalog.find("condition", incident.condition_key)
        return {"id": incident.id, "condition_id": condition.id if condition else None,
                "condition_key": incident.condition_key, "policy": incident.policy,
                "condition": incident.condition_name, "signal": incident.signal,
                "facet": incident.facet, "kind": incident.kind, "priority": incident.priority,
                "state": incident.state, "value": incident.value,
                "opened_ms": incident.opened_ms, "acknowledged_ms": incident.acknowledged_ms,
                "closed_ms": incident.closed_ms, "close_reason": incident.close_reason,
                "details": incident.details}


def _item_json(entry: Entry) -> dict[str, Any]:
    return {"id": entry.id, "source": entry.source, **entry.definition,
            "created_ms": entry.created_ms, "updated_ms": entry.updated_ms}
