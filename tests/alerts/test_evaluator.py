"""The evaluator on an injected clock: windows, late data, terms, facets, loss of signal,
time limit, restarts, and field cases BL-20 and BL-21."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import (
    T0,
    condition,
    evaluator,
    finding,
    notifications,
    run,
    timeline,
)

from trailguard.alerts.loader import pack_conditions
from trailguard.events import Event


def test_guide_pack_condition_opens_once_and_closes_after_two_quiet_minutes(store, tmp_path):
    ssh = next(c for c in pack_conditions("aws-guardduty", "GuardDuty") if "SSH" in c.name)
    store.write([finding(T0 + 5_000), finding(T0 + 10_000), finding(T0 + 20_000)])
    ev = evaluator(store, tmp_path, ssh)
    run(ev, T0, T0 + 600_000)
    # window [0, 60) completes at 60 + 90 s delay; [60,120) and [120,180) are filled 0.
    assert timeline(ev) == [(1, None, "threshold", "CRITICAL", 150, 270, "signal recovered", 3)]
    assert notifications(ev) == [(1, "opened", "hook"), (1, "closed", "hook")]


def test_single_event_window_is_evaluated_on_time_without_later_data(store, tmp_path):
    rule = condition(threshold=0, signal={"aggregationMethod": "EVENT_FLOW",
                                          "aggregationDelay": 30})
    store.write([finding(T0 + 59_000)])
    ev = evaluator(store, tmp_path, rule)
    run(ev, T0, T0 + 89_000, step_s=1)
    assert timeline(ev) == []
    ev.tick(T0 + 90_000)
    assert timeline(ev) == [(1, None, "threshold", "CRITICAL", 90, None, None, 1)]


def test_late_data_counts_until_the_delay_passes_then_is_ignored(store, tmp_path):
    rule = condition(threshold=0, duration=60, signal={"aggregationDelay": 30,
                                                        "fillOption": "STATIC"})
    ev = evaluator(store, tmp_path, rule)
    run(ev, T0, T0 + 80_000)
    store.write([finding(T0 + 10_000)])  # 20 s late: inside the 30 s delay
    run(ev, T0 + 90_000, T0 + 200_000)
    store.write([finding(T0 + 70_000)])  # window [60,120) completed at 150: too late
    run(ev, T0 + 210_000, T0 + 400_000)
    assert timeline(ev) == [(1, None, "threshold", "CRITICAL", 90, 150, "signal recovered", 1)]


@pytest.mark.parametrize(("occurrences", "expected"), [
    ("AT_LEAST_ONCE", [(1, None, "threshold", "CRITICAL", 60, 240, "signal recovered", 2),
                       (2, None, "threshold", "CRITICAL", 300, 600, "signal recovered", 2)]),
    ("ALL", [(1, None, "threshold", "CRITICAL", 420, 600, "signal recovered", 2)]),
])
def test_at_least_once_versus_for_at_least(store, tmp_path, occurrences, expected):
    # per-minute counts: 2, 0, 0, 0, 2, 2, 2, then quiet (filled with 0)
    counts = [2, 0, 0, 0, 2, 2, 2]
    store.write([finding(T0 + minute * 60_000 + n * 1000)
                 for minute, count in enumerate(counts) for n in range(count)])
    rule = condition(duration=180, occurrences=occurrences, signal={"fillOption": "STATIC"})
    ev = evaluator(store, tmp_path, rule)
    run(ev, T0, T0 + 600_000)
    assert timeline(ev) == expected


def test_each_facet_value_is_its_own_signal(store, tmp_path):
    query = "FROM Log SELECT count(*) WHERE source = 'aws.guardduty' FACET detail.type"
    rule = condition(query, threshold=1, duration=60, signal={"fillOption": "STATIC"})
    store.write([finding(T0 + 1_000), finding(T0 + 2_000), finding(T0 + 3_000),
                 finding(T0 + 4_000, "Recon:EC2/PortProbeUnprotectedPort"),
                 finding(T0 + 61_000, "Policy:S3/BucketAnonymousAccessGranted"),
                 finding(T0 + 62_000, "Policy:S3/BucketAnonymousAccessGranted")])
    ev = evaluator(store, tmp_path, rule)
    run(ev, T0, T0 + 300_000)
    assert timeline(ev) == [
        (1, "UnauthorizedAccess:EC2/SSHBruteForce", "threshold", "CRITICAL", 60, 120,
         "signal recovered", 3),
        (2, "Policy:S3/BucketAnonymousAccessGranted", "threshold", "CRITICAL", 120, 180,
         "signal recovered", 2)]
    first = ev.incidents.get(1)
    assert first.details["attributes"] == {"detail.type": "UnauthorizedAccess:EC2/SSHBruteForce"}


def test_warning_and_critical_terms(store, tmp_path):
    warning = {"priority": "WARNING", "operator": "ABOVE", "threshold": 1,
               "thresholdDuration": 60, "thresholdOccurrences": "ALL"}
    rule = condition(threshold=4, duration=60, extra_terms=[warning],
                     signal={"fillOption": "STATIC"})
    store.write([finding(T0 + n * 1000) for n in range(2)]
                + [finding(T0 + 180_000 + n * 1000) for n in range(5)])
    ev = evaluator(store, tmp_path, rule)
    run(ev, T0, T0 + 400_000)
    assert timeline(ev) == [(1, None, "threshold", "WARNING", 60, 120, "signal recovered", 2),
                            (2, None, "threshold", "CRITICAL", 240, 300, "signal recovered", 5)]


@pytest.mark.parametrize(("operator", "threshold", "value", "opens"), [
    ("ABOVE", 2, 2, False), ("ABOVE_OR_EQUALS", 2, 2, True), ("BELOW", 3, 2, True),
    ("BELOW_OR_EQUALS", 2, 2, True), ("EQUALS", 2, 2, True), ("NOT_EQUALS", 2, 2, False),
    ("BELOW", 2, 2, False), ("EQUALS", 3, 2, False),
])
def test_operators(store, tmp_path, operator, threshold, value, opens):
    store.write([finding(T0 + n * 1000) for n in range(value)])
    ev = evaluator(store, tmp_path, condition(operator=operator, threshold=threshold,
                                              duration=60))
    run(ev, T0, T0 + 60_000)
    assert [row[-1] for row in timeline(ev)] == ([value] if opens else [])


def test_loss_of_signal_opens_an_incident_and_data_closes_it(store, tmp_path):
    rule = condition(threshold=100, duration=60,
                     expiration={"expirationDuration": 120, "openViolationOnExpiration": True})
    store.write([finding(T0 + 1_000)])
    ev = evaluator(store, tmp_path, rule)
    run(ev, T0, T0 + 240_000)
    store.write([finding(T0 + 250_000)])
    run(ev, T0 + 250_000, T0 + 400_000)
    # last data in window [0, 60): lost at 60 + 120 s; data back in [240, 300) at 300.
    assert timeline(ev) == [(1, None, "loss_of_signal", "CRITICAL", 180, 300,
                             "signal returned", None)]


@pytest.mark.parametrize(("fill", "expiration", "closed", "reason"), [
    ({"fillOption": "STATIC", "fillValue": 0}, {}, 180, "signal recovered"),
    ({"fillOption": "NONE"}, {"expirationDuration": 600, "closeViolationsOnExpiration": True},
     660, "signal lost"),
    ({"fillOption": "NONE"}, {}, 72 * 3600 + 60, "time limit"),
])
def test_bl20_incidents_close_after_the_data_stops(store, tmp_path, fill, expiration, closed,
                                                   reason):
    """BL-20: 3 findings in one minute, then 30 min (or 72 h) of nothing."""
    store.write([finding(T0 + 10_000), finding(T0 + 20_000), finding(T0 + 30_000)])
    ev = evaluator(store, tmp_path, condition(signal=fill, expiration=expiration))
    run(ev, T0, T0 + 1_800_000, step_s=60)
    if closed > 1800:
        assert timeline(ev) == [(1, None, "threshold", "CRITICAL", 60, None, None, 3)]
        run(ev, T0 + 1_860_000, T0 + 72 * 3600_000 + 60_000, step_s=3600)
        ev.tick(T0 + 72 * 3600_000 + 60_000)
    assert timeline(ev) == [(1, None, "threshold", "CRITICAL", 60, closed, reason, 3)]
    assert notifications(ev) == [(1, "opened", "hook"), (1, "closed", "hook")]


def test_bl21_one_stoplogging_event_one_incident_across_a_restart(store, tmp_path: Path):
    """BL-21: ticks every 30 s, the evaluator restarted mid-way; one incident, one page."""
    rule = pack_conditions("aws-cloudtrail", "CloudTrail")[0]
    arn = "arn:aws:iam::111122223333:user/Alice"
    store.write([Event("InfrastructureEvent", T0 + 15_000, {
        "provider": "CloudTrail", "eventName": "StopLogging", "userIdentity.type": "IAMUser",
        "userIdentity.arn": arn, "sourceIPAddress": "203.0.113.9"}, dedup_key="ct-bl21")])
    first = evaluator(store, tmp_path, rule)
    run(first, T0, T0 + 180_000, step_s=30)
    first.incidents.close()
    second = evaluator(store, tmp_path, rule)
    run(second, T0 + 210_000, T0 + 600_000, step_s=30)
    assert timeline(second) == [(1, arn, "threshold", "CRITICAL", 150, 210,
                                 "signal recovered", 1)]
    assert notifications(second) == [(1, "opened", "hook"), (1, "closed", "hook")]


def test_restart_with_an_open_incident_does_not_notify_again(store, tmp_path):
    store.write([finding(T0 + n * 1000) for n in range(3)]
                + [finding(T0 + 60_000 + n * 1000) for n in range(3)])
    rule = condition(signal={"fillOption": "STATIC"})
    first = evaluator(store, tmp_path, rule)
    run(first, T0, T0 + 90_000)
    assert timeline(first) == [(1, None, "threshold", "CRITICAL", 60, None, None, 3)]
    first.incidents.close()
    second = evaluator(store, tmp_path, rule)
    run(second, T0 + 100_000, T0 + 400_000)
    assert timeline(second) == [(1, None, "threshold", "CRITICAL", 60, 240,
                                 "signal recovered", 3)]
    assert notifications(second) == [(1, "opened", "hook"), (1, "closed", "hook")]


def test_event_timer_waits_for_data_to_settle(store, tmp_path):
    rule = condition(threshold=2, duration=60, signal={
        "aggregationMethod": "EVENT_TIMER", "aggregationTimer": 30})
    store.write([finding(T0 + 1_000), finding(T0 + 2_000)])
    ev = evaluator(store, tmp_path, rule)
    run(ev, T0, T0 + 70_000)
    store.write([finding(T0 + 3_000)])  # arrives late; the timer restarts at 80 s
    run(ev, T0 + 80_000, T0 + 100_000)
    assert timeline(ev) == []
    ev.tick(T0 + 110_000)
    assert timeline(ev) == [(1, None, "threshold", "CRITICAL", 110, None, None, 3)]


def test_bl23_archived_finding_without_severity_does_not_match(store, tmp_path):
    """BL-23: an archive event carries no detail.severity; the condition must not fire."""
    rule = condition("SELECT count(*) FROM Log WHERE source='aws.guardduty' "
                     "AND detail.severity >= 7", threshold=0, duration=60)
    store.write([Event("Log", T0 + 1_000, {"source": "aws.guardduty", "detail.id": "f-23",
                                           "detail.service.archived": True})])
    ev = evaluator(store, tmp_path, rule)
    run(ev, T0, T0 + 300_000)
    assert timeline(ev) == []
    assert notifications(ev) == []


def test_a_term_needing_too_many_windows_fails_alone_without_allocating(store, tmp_path,
                                                                        caplog):
    """The loader refuses such a term; one built another way fails its own evaluation (logged)
    instead of building a list of 10^11 gaps, and the other conditions still run."""
    import dataclasses

    from trailguard.alerts.loader import parse_condition
    from trailguard.errors import AlertError

    good = condition(threshold=0, duration=60)
    huge = dataclasses.replace(good.terms[0], duration_s=100_000_000_000)
    bad = dataclasses.replace(good, name="huge", terms=(huge,))
    store.write([finding(T0 + 5_000)])
    ev = evaluator(store, tmp_path, bad, good)
    run(ev, T0, T0 + 60_000)
    assert [(i.condition_key, i.priority) for i in ev.incidents.incidents(10)] == [
        ("Security/SSH brute force", "CRITICAL")]
    assert any("condition evaluation failed" in r.getMessage()
               and r.fields["condition"] == "Security/huge" for r in caplog.records)
    raw = {"name": "huge", "nrql": {"query": "FROM Log SELECT count(*)"},
           "terms": [{"threshold": 0, "thresholdDuration": 86_400}],
           "signal": {"aggregationWindow": 1}}
    with pytest.raises(AlertError, match=r"`terms\[0\].thresholdDuration` 86400 s spans "
                                         r"86,400 windows of 1 s; at most 2,880"):
        parse_condition(raw, "Security", "alerts.yaml")
