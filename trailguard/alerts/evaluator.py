"""Evaluate conditions window by window against the event store.

Each condition's NRQL runs once per completed aggregation window with an explicit
`SINCE <start ms> UNTIL <end ms>` appended. Windows are aligned to multiples of
the window length and complete in order (see `window_done`). The clock is injected
so tests and `trailguard alerts test` run without sleeping.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from trailguard.alerts.incidents import IncidentStore
from trailguard.alerts.lifecycle import Lifecycle
from trailguard.alerts.model import AlertsConfig, Condition, Method, Priority
from trailguard.alerts.signals import SignalState, record, recovered, violated_priority
from trailguard.errors import TrailguardError
from trailguard.logs import log_fields
from trailguard.store.base import EventStore

log = logging.getLogger("trailguard.alerts")

MAX_WINDOWS_PER_TICK = 500
# Signals with no data for this long and no open incident are forgotten.
FORGET_AFTER_MS = 24 * 3600 * 1000
# count() of an empty window is 0 in NRQL, but to an alert condition it is a gap.
_COUNT_QUERY = re.compile(r"^\s*(FROM\s.+?\s)?SELECT\s+(count|uniqueCount)\s*\(",
                          re.IGNORECASE | re.DOTALL)

WindowValues = dict[str, tuple[Any, float | None]]


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def window_query(condition: Condition, start_ms: int, end_ms: int) -> str:
    """The condition's NRQL limited to one window."""
    return f"{condition.query} SINCE {start_ms} UNTIL {end_ms}"


class Evaluator:
    """Runs every enabled condition on each `tick`, opening and closing incidents."""

    def __init__(self, store: EventStore, config: AlertsConfig, incidents: IncidentStore,
                 clock: Callable[[], int] = wall_clock_ms,
                 wake: Callable[[], None] | None = None) -> None:
        self.store = store
        self.config = config
        self.incidents = incidents
        self.lifecycle = Lifecycle(incidents, config, wake)
        self.clock = clock
        self._facet_names: dict[str, list[str]] = {}

    def tick(self, now_ms: int | None = None) -> None:
        """Evaluate every enabled condition at `now_ms` (default: the clock)."""
        now = self.clock() if now_ms is None else now_ms
        for condition in self.config.enabled:
            try:
                self.evaluate(condition, now)
            except TrailguardError as exc:
                log_fields(log, logging.ERROR, "condition evaluation failed",
                           condition=condition.key, error=str(exc))

    def evaluate(self, condition: Condition, now_ms: int,
                 first_window_ms: int | None = None) -> None:
        """Complete the due windows of one condition, then check signal loss and time limit."""
        window_ms = condition.signal.window_s * 1000
        with self.incidents.transaction():
            if condition not in self.config.conditions:
                return  # changed or deleted through the API since this tick began
            state = self.incidents.load_state(condition.key) or {}
            if state.get("window_ms") != window_ms:
                start = first_window_ms if first_window_ms is not None else now_ms - window_ms
                state = {"window_ms": window_ms, "next": start - start % window_ms,
                         "signals": {}, "observed": None}
            signals = {key: SignalState.from_json(raw) for key, raw in state["signals"].items()}
            self._complete_windows(condition, state, signals, now_ms)
            self._check_signal_loss(condition, signals, now_ms)
            self._check_time_limit(condition, now_ms)
            state["signals"] = {key: signal.to_json()
                                for key, signal in self._kept(condition, signals, now_ms).items()}
            self.incidents.save_state(condition.key, state)

    def _complete_windows(self, condition: Condition, state: dict[str, Any],
                          signals: dict[str, SignalState], now_ms: int) -> None:
        window_ms = state["window_ms"]
        quiet_until = self._quiet_until(condition, state["next"], now_ms, window_ms)
        for _ in range(MAX_WINDOWS_PER_TICK):
            start = state["next"]
            if start + window_ms > now_ms:
                return
            values = {} if start + window_ms <= quiet_until else self._query_window(
                condition, start, start + window_ms)
            if not self._window_done(condition, state, start, values, now_ms):
                return
            self._apply_window(condition, signals, start, values, now_ms)
            state["next"], state["observed"] = start + window_ms, None

    def _quiet_until(self, condition: Condition, start: int, now_ms: int, window_ms: int) -> int:
        """End of a run of windows, due now, that one query shows to hold no data at all.

        Catching up after downtime, or through a long quiet spell, then costs one query
        instead of one per window.
        """
        settle_ms = max(condition.signal.delay_s, condition.signal.timer_s) * 1000
        due_end = now_ms - settle_ms
        due_end -= (due_end - start) % window_ms
        if due_end - start < 3 * window_ms or self._query_window(condition, start, due_end):
            return start
        return due_end

    def _window_done(self, condition: Condition, state: dict[str, Any], start: int,
                     values: WindowValues, now_ms: int) -> bool:
        """Whether the window starting at `start` is complete at `now_ms`.

        CADENCE and EVENT_FLOW: `delay` after the window's end. (EVENT_FLOW would wait for
        later data; data never carries a time ahead of the clock here, so a window holding a
        single event completes on time even when nothing arrives after it.)
        EVENT_TIMER: `timer` after the window's values last changed, or after its end.
        """
        end = start + state["window_ms"]
        signal = condition.signal
        if signal.method is not Method.EVENT_TIMER:
            return now_ms >= end + signal.delay_s * 1000
        digest = orjson.dumps(sorted(values.items())).decode()
        observed = state.get("observed")
        if observed is None or observed[0] != start or observed[1] != digest:
            changed = now_ms if values else end
            state["observed"] = observed = [start, digest, max(changed, end)]
        return now_ms >= observed[2] + signal.timer_s * 1000

    def _query_window(self, condition: Condition, start: int, end: int) -> WindowValues:
        from trailguard.nrql import run_nrql

        answer = run_nrql(self.store, window_query(condition, start, end), end)
        facets = answer["metadata"].get("facets") or []
        self._facet_names[condition.key] = facets
        values: WindowValues = {}
        for row in answer["results"]:
            value = next((v for k, v in row.items() if k != "facet" and k not in facets), None)
            if facets:
                values[orjson.dumps(row["facet"]).decode()] = (row["facet"], _number(value))
            elif _number(value) is not None and not (_number(value) == 0
                                                     and _COUNT_QUERY.match(condition.query)):
                values[""] = (None, _number(value))
        return values

    def _apply_window(self, condition: Condition, signals: dict[str, SignalState],
                      start: int, values: WindowValues, now_ms: int) -> None:
        for key, (facet, _) in values.items():
            signals.setdefault(key, SignalState(facet=facet))
        for key, signal in signals.items():
            raw = values.get(key, (None, None))[1]
            if raw is not None and signal.lost:
                signal.lost = False
                self._close_signal(condition, key, now_ms, "signal returned", "loss_of_signal")
            record(condition, signal, start, raw)
            self._judge(condition, key, signal, start, now_ms)

    def _judge(self, condition: Condition, key: str, signal: SignalState, start: int,
               now_ms: int) -> None:
        priority = violated_priority(condition, signal.points)
        open_now = [i for i in self.incidents.find_open(condition.key, key)
                    if i.kind == "threshold"]
        if priority is not None and not open_now:
            self.lifecycle.open(condition, key, signal.facet, kind="threshold",
                                priority=priority.value, now_ms=now_ms,
                                value=signal.points[-1][1],
                                details=self._details(condition, signal, priority, start))
        elif priority is Priority.CRITICAL and open_now and open_now[0].priority != "CRITICAL":
            self.lifecycle.escalate(open_now[0], priority.value, now_ms, signal.points[-1][1],
                                    self._details(condition, signal, priority, start))
        elif priority is None and open_now and recovered(condition, signal.points):
            self.lifecycle.close(open_now[0], now_ms, "signal recovered")

    def _details(self, condition: Condition, signal: SignalState, priority: Priority,
                 start: int) -> dict[str, Any]:
        """What an incident at `priority` records: the term it violates and the window."""
        term = next(t for t in condition.terms if t.priority is priority)
        return {"query": condition.query, "operator": term.operator,
                "threshold": term.threshold, "duration_s": term.duration_s,
                "window_start_ms": start,
                "window_end_ms": start + condition.signal.window_s * 1000,
                "attributes": _facet_attributes(self._facet_names.get(condition.key),
                                                signal.facet),
                "runbook_url": condition.runbook_url}

    def _check_signal_loss(self, condition: Condition, signals: dict[str, SignalState],
                           now_ms: int) -> None:
        expiration = condition.expiration
        if expiration.duration_s is None:
            return
        for key, signal in signals.items():
            if signal.lost or signal.last_data_end_ms is None:
                continue
            if now_ms < signal.last_data_end_ms + expiration.duration_s * 1000:
                continue
            signal.lost = True
            log_fields(log, logging.INFO, "signal lost", condition=condition.key, signal=key)
            if expiration.close_incidents:
                self._close_signal(condition, key, now_ms, "signal lost", "threshold")
            if expiration.open_incident and not self.incidents.find_open(condition.key, key):
                self.lifecycle.open(condition, key, signal.facet, kind="loss_of_signal",
                                    priority="CRITICAL", now_ms=now_ms, value=None,
                                    details={"query": condition.query,
                                             "expiration_s": expiration.duration_s})

    def _check_time_limit(self, condition: Condition, now_ms: int) -> None:
        for incident in self.incidents.find_open(condition.key):
            if now_ms >= incident.opened_ms + condition.time_limit_s * 1000:
                self.lifecycle.close(incident, now_ms, "time limit")

    def _close_signal(self, condition: Condition, key: str, now_ms: int, reason: str,
                      kind: str) -> None:
        for incident in self.incidents.find_open(condition.key, key):
            if incident.kind == kind:
                self.lifecycle.close(incident, now_ms, reason)

    def _kept(self, condition: Condition, signals: dict[str, SignalState],
              now_ms: int) -> dict[str, SignalState]:
        open_signals = {incident.signal for incident in self.incidents.find_open(condition.key)}
        return {key: signal for key, signal in signals.items()
                if key in open_signals or signal.last_data_end_ms is None
                or now_ms - signal.last_data_end_ms < FORGET_AFTER_MS}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _facet_attributes(names: list[str] | None, facet: Any) -> dict[str, Any]:
    """`{facet attribute: value}` of a signal, for notification templates."""
    if not names:
        return {}
    values = facet if isinstance(facet, list) else [facet]
    return dict(zip(names, values))
