"""Turn the time fields AWS and log shippers use into epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


# Events of one delivery share their seconds often (CloudTrail times are to the second),
# and reading an ISO time costs ~1.5 us where a cache hit costs ~0.1.
@lru_cache(maxsize=4096)
def parse_iso_ms(text: str) -> int | None:
    """Epoch ms of an ISO-8601 time such as CloudTrail's `2023-11-14T22:00:00Z`.

    Returns None when `text` is not such a time, so callers can fall back.
    """
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


# Epoch ms of 9999-12-31T23:59:59.999Z: the latest time an ISO string can say, and far
# inside a 64-bit column. Numbers that mean a later (or earlier) moment are not times.
MAX_EPOCH_MS = 253_402_300_799_999


def in_range(epoch_ms: int) -> bool:
    """True for a time a BIGINT column and an ISO string can both hold."""
    return -MAX_EPOCH_MS <= epoch_ms <= MAX_EPOCH_MS


def event_time(epoch_ms: int | None) -> int | None:
    """`epoch_ms` when it can be an event's time: after 1970 and by the year 9999.

    Past either end no query window reaches the event; it takes its delivery's time
    instead (its own text stays in `message`).
    """
    if epoch_ms is None or not 0 < epoch_ms <= MAX_EPOCH_MS:
        return None
    return epoch_ms


def coerce_epoch_ms(value: object) -> int | None:
    """Epoch ms from a number in seconds, ms or µs, or from an ISO string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not -1e18 < value < 1e18:  # also NaN; beyond any µs time up to the year 9999
            return None
        magnitude = abs(value)
        if magnitude < 1e11:  # seconds (until the year 5138)
            return int(value * 1000)
        if magnitude < 1e14:
            return int(value)
        moment = int(value / 1000)
        return moment if in_range(moment) else None
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.isascii() and stripped.replace(".", "", 1).isdigit():
            return coerce_epoch_ms(float(stripped))
        return parse_iso_ms(stripped)
    return None
