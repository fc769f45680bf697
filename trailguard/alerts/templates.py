"""Notification text: `{{ field }}` placeholders, "(unknown)" for anything missing.

Field case BL-23: GuardDuty events without a severity or title (archive/unarchive)
must never produce "undefined" or empty text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from trailguard.alerts.incidents import Incident

UNKNOWN = "(unknown)"
_PLACEHOLDER = re.compile(r"\{\{\s*([\w.\-:]+)\s*\}\}")

DEFAULT_TITLE = "[{{ priority }}] {{ condition }} {{ event }}: {{ facet }}"
DEFAULT_TEXT = {
    "opened": "{{ policy }} / {{ condition }} opened incident {{ incident_id }} ({{ priority }}):"
              " {{ summary }} at {{ opened_at }}.",
    "escalated": "{{ policy }} / {{ condition }} incident {{ incident_id }} escalated to"
                 " {{ priority }}: {{ summary }}.",
    "acknowledged": "{{ policy }} / {{ condition }} incident {{ incident_id }} acknowledged at"
                    " {{ acknowledged_at }}.",
    "closed": "{{ policy }} / {{ condition }} incident {{ incident_id }} closed at {{ closed_at }}:"
              " {{ close_reason }}.",
}


def render(template: str, fields: dict[str, Any]) -> str:
    """`template` with each `{{ name }}` replaced by its field, or "(unknown)"."""
    return _PLACEHOLDER.sub(lambda match: text_of(fields.get(match.group(1))), template)


def render_tree(template: Any, fields: dict[str, Any]) -> Any:
    """Render every string inside a JSON-like template (a webhook payload)."""
    if isinstance(template, str):
        return render(template, fields)
    if isinstance(template, dict):
        return {key: render_tree(value, fields) for key, value in template.items()}
    if isinstance(template, list):
        return [render_tree(value, fields) for value in template]
    return template


def text_of(value: Any) -> str:
    """A field as text; None, empty and "undefined"/"null" become "(unknown)"."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "undefined", "null")):
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(text_of(item) for item in value) or UNKNOWN
    return str(value)


def incident_fields(incident: Incident, event: str) -> dict[str, Any]:
    """Everything a template may name for `incident` at `event`."""
    details = incident.details
    fields: dict[str, Any] = dict(details.get("attributes") or {})
    fields.update({
        "incident_id": incident.id, "event": event, "state": incident.state,
        "priority": incident.priority, "kind": incident.kind, "policy": incident.policy,
        "condition": incident.condition_name, "signal": incident.signal,
        "facet": incident.facet, "value": incident.value,
        "threshold": details.get("threshold"), "operator": details.get("operator"),
        "duration_s": details.get("duration_s"), "query": details.get("query"),
        "runbook_url": details.get("runbook_url"), "close_reason": incident.close_reason,
        "opened_at": _iso(incident.opened_ms), "closed_at": _iso(incident.closed_ms),
        "acknowledged_at": _iso(incident.acknowledged_ms),
    })
    fields["summary"] = summary(incident, fields)
    return fields


def summary(incident: Incident, fields: dict[str, Any]) -> str:
    """What the incident is about in words: "value 3, ABOVE 1", "host-a = 3, ABOVE 1",
    "signal lost (host-a)"; a facet part only when the condition has FACET."""
    facet = None if incident.facet is None else text_of(incident.facet)
    if incident.kind == "loss_of_signal":
        return "signal lost" + (f" ({facet})" if facet else "")
    measured = f"{facet} = " if facet else "value "
    return (f"{measured}{text_of(fields['value'])}, {text_of(fields['operator'])} "
            f"{text_of(fields['threshold'])}")


def _iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
