"""`trailguard alerts test`: replay a condition over stored data on a simulated clock."""

from __future__ import annotations

from dataclasses import dataclass

from trailguard.alerts.evaluator import Evaluator
from trailguard.alerts.incidents import Incident, IncidentStore
from trailguard.alerts.model import AlertsConfig, Condition, Method
from trailguard.alerts.templates import text_of
from trailguard.store.base import EventStore


@dataclass(frozen=True, slots=True)
class Replay:
    """What a condition would have done between `since_ms` and `until_ms`."""

    condition: Condition
    since_ms: int
    until_ms: int
    windows: int
    incidents: list[Incident]


def replay(store: EventStore, condition: Condition, since_ms: int, until_ms: int) -> Replay:
    """Evaluate `condition` window by window from `since_ms` to `until_ms`; nothing is sent."""
    incidents = IncidentStore(":memory:")
    evaluator = Evaluator(store, AlertsConfig(conditions=[condition]), incidents)
    window_ms = condition.signal.window_s * 1000
    signal = condition.signal
    settle_ms = (signal.timer_s if signal.method is Method.EVENT_TIMER else signal.delay_s) * 1000
    first = since_ms - since_ms % window_ms
    evaluator.evaluate(condition, first, first_window_ms=first)
    windows = 0
    for window_end in range(first + window_ms, until_ms + 1, window_ms):
        evaluator.evaluate(condition, min(window_end + settle_ms, max(until_ms, window_end)))
        windows += 1
    found = sorted(incidents.incidents(limit=1_000_000), key=lambda incident: incident.id)
    incidents.close()
    return Replay(condition, since_ms, until_ms, windows, found)


def describe(result: Replay) -> list[str]:
    """One line per incident opening and closing, in time order, then a summary."""
    from trailguard.alerts.templates import incident_fields

    events: list[tuple[int, str]] = []
    for incident in result.incidents:
        fields = incident_fields(incident, "opened")
        where = f" facet={text_of(incident.facet)}" if incident.facet is not None else ""
        events.append((incident.opened_ms, (f"{fields['opened_at']}  OPEN   #{incident.id} "
                       f"{incident.priority}{where} value={text_of(incident.value)} "
                       f"({incident.kind})")))
        if incident.closed_ms is not None:
            events.append((incident.closed_ms, (f"{fields['closed_at']}  CLOSE  #{incident.id} "
                           f"{incident.close_reason}")))
    lines = [line for _, line in sorted(events)]
    still_open = sum(1 for incident in result.incidents if incident.closed_ms is None)
    lines.append(f"{len(result.incidents)} incident(s) over {result.windows} window(s) of "
                 f"{result.condition.signal.window_s} s; {still_open} still open at the end")
    return lines
