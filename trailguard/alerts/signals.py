"""One signal (a condition, or one FACET value of it): its recent window values and terms.

A point is `[window_start_ms, value]`; `value` None is a gap that fill did not fill.
A term looks at the last `ceil(duration / window)` points:

- AT_LEAST_ONCE violates when any of them violates;
- ALL ("for at least") violates when every one of them is data and violates;
- either term has recovered when every one of them is data and none violates
  (so with fill NONE an incident stays open through a gap, as New Relic does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from trailguard.alerts.model import MAX_TERM_WINDOWS, Condition, Fill, Priority, Term
from trailguard.errors import AlertError


class TermState(str, Enum):
    VIOLATING = "violating"
    RECOVERED = "recovered"
    UNDECIDED = "undecided"


@dataclass(slots=True)
class SignalState:
    """What the evaluator remembers about one signal between windows."""

    facet: Any = None
    points: list[list[Any]] = field(default_factory=list)
    last_value: float | None = None
    last_data_end_ms: int | None = None
    lost: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"facet": self.facet, "points": self.points, "last_value": self.last_value,
                "last_data_end_ms": self.last_data_end_ms, "lost": self.lost}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SignalState:
        return cls(raw.get("facet"), raw.get("points") or [], raw.get("last_value"),
                   raw.get("last_data_end_ms"), bool(raw.get("lost")))


def points_needed(condition: Condition) -> int:
    """How many recent points the longest term looks at."""
    return max(_window_count(term, condition.signal.window_s) for term in condition.terms)


def _window_count(term: Term, window_s: int) -> int:
    """Windows a term looks at; the loader refuses more than `MAX_TERM_WINDOWS`, and a
    condition built another way fails here (the evaluator logs it) instead of keeping an
    ever longer list of points."""
    count = max(1, math.ceil(term.duration_s / max(1, window_s)))
    if count > MAX_TERM_WINDOWS:
        raise AlertError(f"a term of {term.duration_s} s over {window_s} s windows needs "
                         f"{count:,} windows; at most {MAX_TERM_WINDOWS:,} are allowed")
    return count


def filled(condition: Condition, signal: SignalState, raw: float | None) -> float | None:
    """The value of a window after gap filling."""
    if raw is not None:
        return raw
    if condition.signal.fill is Fill.STATIC:
        return condition.signal.fill_value
    if condition.signal.fill is Fill.LAST_VALUE:
        return signal.last_value
    return None


def record(condition: Condition, signal: SignalState, start_ms: int, raw: float | None) -> None:
    """Add one completed window to `signal`, keeping only the points terms need."""
    value = filled(condition, signal, raw)
    if raw is not None:
        signal.last_value = raw
        signal.last_data_end_ms = start_ms + condition.signal.window_s * 1000
    signal.points.append([start_ms, value])
    del signal.points[:-points_needed(condition)]


def term_state(term: Term, window_s: int, points: list[list[Any]]) -> TermState:
    """Whether `term` is violated, recovered or neither over the latest points."""
    count = _window_count(term, window_s)
    recent = points[-count:]
    verdicts = [None if value is None else term.violates(float(value)) for _, value in recent]
    if len(recent) < count:
        verdicts.append(None)  # windows not seen yet are gaps; one stands for them all
    if term.all_points:
        if all(verdict is True for verdict in verdicts):
            return TermState.VIOLATING
    elif any(verdict is True for verdict in verdicts):
        return TermState.VIOLATING
    if all(verdict is False for verdict in verdicts):
        return TermState.RECOVERED
    return TermState.UNDECIDED


def violated_priority(condition: Condition, points: list[list[Any]]) -> Priority | None:
    """The highest priority whose term is violated now, if any."""
    window_s = condition.signal.window_s
    violating = {term.priority for term in condition.terms
                 if term_state(term, window_s, points) is TermState.VIOLATING}
    if Priority.CRITICAL in violating:
        return Priority.CRITICAL
    return Priority.WARNING if violating else None


def recovered(condition: Condition, points: list[list[Any]]) -> bool:
    """True when every term has a full duration of non-violating data."""
    return all(term_state(term, condition.signal.window_s, points) is TermState.RECOVERED
               for term in condition.terms)
