"""Escalation: one incident per condition and signal goes from WARNING to CRITICAL, with its
history and one notification for the new priority; it never goes back down."""

from __future__ import annotations

from helpers import T0, condition, evaluator, finding, notifications, run, timeline

from trailguard.alerts.model import Destination, Workflow

WARNING_TERM = {"priority": "WARNING", "operator": "ABOVE", "threshold": 0,
                "thresholdDuration": 60, "thresholdOccurrences": "AT_LEAST_ONCE"}


def _two_level_condition():
    """CRITICAL above 2 findings a minute, WARNING above 0; quiet minutes count as 0."""
    return condition(threshold=2, duration=60, extra_terms=[WARNING_TERM],
                     signal={"fillOption": "STATIC", "fillValue": 0})


def test_warning_incident_escalates_to_critical_once(store, tmp_path):
    store.write([finding(T0 + 5_000)])                                   # minute 0: 1
    store.write([finding(T0 + 61_000 + n * 1_000) for n in range(3)])    # minute 1: 3
    ev = evaluator(store, tmp_path, _two_level_condition())
    run(ev, T0, T0 + 400_000)
    assert timeline(ev) == [(1, None, "threshold", "CRITICAL", 60, 180, "signal recovered", 3)]
    assert [(h["event"], h["priority"], h["value"], h["note"], (h["at_ms"] - T0) // 1000)
            for h in ev.incidents.history(1)] == [
        ("opened", "WARNING", 1.0, None, 60),
        ("escalated", "CRITICAL", 3.0, "from WARNING", 120),
        ("closed", "CRITICAL", 3.0, "signal recovered", 180)]
    assert notifications(ev) == [(1, "opened", "hook"), (1, "escalated", "hook"),
                                 (1, "closed", "hook")]
    incident = ev.incidents.get(1)
    assert (incident.details["threshold"], incident.details["escalated_from"],
            incident.details["escalated_ms"] - T0) == (2.0, "WARNING", 120_000)


def test_critical_incident_does_not_go_back_to_warning(store, tmp_path):
    store.write([finding(T0 + 1_000 + n * 1_000) for n in range(3)])     # minute 0: 3
    store.write([finding(T0 + 61_000)])                                  # minute 1: 1
    ev = evaluator(store, tmp_path, _two_level_condition())
    run(ev, T0, T0 + 300_000)
    assert timeline(ev) == [(1, None, "threshold", "CRITICAL", 60, 180, "signal recovered", 3)]
    assert [h["event"] for h in ev.incidents.history(1)] == ["opened", "closed"]
    assert notifications(ev) == [(1, "opened", "hook"), (1, "closed", "hook")]


def test_escalation_is_routed_as_an_opening_at_the_new_priority(store, tmp_path):
    store.write([finding(T0 + 5_000)])
    store.write([finding(T0 + 61_000 + n * 1_000) for n in range(3)])
    ev = evaluator(store, tmp_path, _two_level_condition())
    ev.config.destinations = {name: Destination(name, "webhook", {"url_env": "TG_UNUSED"})
                              for name in ("pager", "chat")}
    ev.config.workflows = [Workflow("page", ("pager",), priorities=("CRITICAL",),
                                    notify_on=("opened", "closed")),
                           Workflow("chat", ("chat",), priorities=("WARNING",))]
    run(ev, T0, T0 + 400_000)
    # chat heard of the WARNING opening, so it also hears the close; pager only from
    # the escalation on; nobody is told twice of the same event.
    assert notifications(ev) == [(1, "opened", "chat"), (1, "escalated", "pager"),
                                 (1, "closed", "pager"), (1, "closed", "chat")]
