"""The one shape everything becomes: an event type, a time and flat attributes."""

from __future__ import annotations

from dataclasses import dataclass, field

Scalar = str | int | float | bool

LOG = "Log"
INFRASTRUCTURE_EVENT = "InfrastructureEvent"

# Copies of an event share its content key and, since its time comes from its content,
# its timestamp: the store looks for a copy only among events of about the same time.
# An event whose document carries no time of its own takes the delivery's time, which
# differs between copies; its key carries this prefix, and the store then looks for
# copies at any time.
UNTIMED_KEY_PREFIX = "untimed:"


def content_key(key: str | None, own_time: bool) -> str | None:
    """`key` as stored: marked when the event's timestamp is not from its content.

    An id holding a lone UTF-16 surrogate (`"\\ud800"` in JSON) cannot be stored as text;
    it is kept escaped (`\\ud800`), the same for every copy.
    """
    if key is None:
        return None
    if not key.isascii():
        key = key.encode("utf-8", "backslashreplace").decode("utf-8")
    return key if own_time else UNTIMED_KEY_PREFIX + key


@dataclass(slots=True)
class Event:
    """One stored event.

    `attributes` are flat (dotted names, scalar values) and include `message`
    when the event has one. `dedup_key` identifies the same event arriving twice
    (a CloudTrail eventID, a GuardDuty finding id at one updatedAt; see
    `content_key`); None means the event has no natural identity and is never
    de-duplicated by content.
    """

    event_type: str
    timestamp: int
    attributes: dict[str, Scalar] = field(default_factory=dict)
    dedup_key: str | None = None
