"""What an alerts file describes: conditions, policies, destinations, workflows.

Conditions keep New Relic's quickstart shape (`nrql.query`, `terms`, `signal`,
`expiration`, `violationTimeLimitSeconds`); see docs/alerts.md.
"""

from __future__ import annotations

import operator as op
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

DEFAULT_TIME_LIMIT_SECONDS = 72 * 3600
# A term looks at ceil(duration / window) windows, each kept in the condition's state:
# New Relic's extremes (24 h of 30 s windows) need 2,880; more is refused.
MAX_TERM_WINDOWS = 2_880


class Method(str, Enum):
    """When an aggregation window is complete and can be evaluated."""

    EVENT_FLOW = "EVENT_FLOW"
    EVENT_TIMER = "EVENT_TIMER"
    CADENCE = "CADENCE"


class Fill(str, Enum):
    """What an empty window (a gap) becomes."""

    NONE = "NONE"
    STATIC = "STATIC"
    LAST_VALUE = "LAST_VALUE"


class Priority(str, Enum):
    CRITICAL = "CRITICAL"
    WARNING = "WARNING"


OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "ABOVE": op.gt,
    "ABOVE_OR_EQUALS": op.ge,
    "BELOW": op.lt,
    "BELOW_OR_EQUALS": op.le,
    "EQUALS": op.eq,
    "NOT_EQUALS": op.ne,
}


@dataclass(frozen=True, slots=True)
class Term:
    """One threshold: `operator threshold` for `duration_s`, at least once or all the time."""

    priority: Priority
    operator: str
    threshold: float
    duration_s: int
    all_points: bool  # thresholdOccurrences ALL ("for at least"); else AT_LEAST_ONCE

    def violates(self, value: float) -> bool:
        return OPERATORS[self.operator](value, self.threshold)


@dataclass(frozen=True, slots=True)
class Signal:
    """How values are gathered: window, completion method, delay/timer, gap filling."""

    window_s: int = 60
    method: Method = Method.EVENT_FLOW
    delay_s: int = 120
    timer_s: int = 60
    fill: Fill = Fill.NONE
    fill_value: float = 0.0


@dataclass(frozen=True, slots=True)
class Expiration:
    """Loss of signal: after `duration_s` without data, open and/or close incidents."""

    duration_s: int | None = None
    open_incident: bool = False
    close_incidents: bool = False


@dataclass(frozen=True, slots=True)
class Condition:
    """A static NRQL alert condition."""

    name: str
    policy: str
    query: str
    terms: tuple[Term, ...]
    signal: Signal = Signal()
    expiration: Expiration = Expiration()
    time_limit_s: int = DEFAULT_TIME_LIMIT_SECONDS
    enabled: bool = True
    description: str = ""
    runbook_url: str = ""

    @property
    def key(self) -> str:
        """Unique name of the condition across policies."""
        return f"{self.policy}/{self.name}"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where notifications go; secrets are named by environment variable, never stored."""

    name: str
    type: str  # webhook | slack | email | pagerduty
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Workflow:
    """Which incidents (by policy and priority) go to which destinations."""

    name: str
    destinations: tuple[str, ...]
    policies: tuple[str, ...] = ()  # empty: every policy
    priorities: tuple[str, ...] = ("CRITICAL", "WARNING")
    notify_on: tuple[str, ...] = ("opened", "acknowledged", "closed")

    def matches(self, policy: str, priority: str, event: str) -> bool:
        return ((not self.policies or policy in self.policies)
                and priority in self.priorities and event in self.notify_on)


@dataclass(frozen=True, slots=True)
class Retry:
    """Delivery retry schedule: exponential backoff from `base_s` up to `max_s`."""

    max_attempts: int = 8
    base_s: float = 2.0
    max_s: float = 300.0


@dataclass(slots=True)
class AlertsConfig:
    """Everything in an alerts file."""

    conditions: list[Condition] = field(default_factory=list)
    destinations: dict[str, Destination] = field(default_factory=dict)
    workflows: list[Workflow] = field(default_factory=list)
    interval_s: float = 5.0
    retry: Retry = Retry()

    @property
    def enabled(self) -> list[Condition]:
        return [condition for condition in self.conditions if condition.enabled]

    def route(self, policy: str, priority: str, event: str) -> list[str]:
        """Destination names for an incident event, each once, in workflow order."""
        names: list[str] = []
        for workflow in self.workflows:
            if workflow.matches(policy, priority, event):
                names += [name for name in workflow.destinations if name not in names]
        return names
