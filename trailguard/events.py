"""The one shape everything becomes: an event type, a time and flat attributes."""

from __future__ import annotations

from dataclasses import dataclass, field

Scalar = str | int | float | bool

LOG = "Log"
INFRASTRUCTURE_EVENT = "InfrastructureEvent"


@dataclass(slots=True)
class Event:
    """One stored event.

    `attributes` are flat (dotted names, scalar values) and include `message`
    when the event has one. `dedup_key` identifies the same event arriving twice
    (a CloudTrail eventID, a GuardDuty finding id at one updatedAt); None means
    the event has no natural identity and is never de-duplicated by content.
    """

    event_type: str
    timestamp: int
    attributes: dict[str, Scalar] = field(default_factory=dict)
    dedup_key: str | None = None
