"""Turn the time fields AWS and log shippers use into epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime


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


def coerce_epoch_ms(value: object) -> int | None:
    """Epoch ms from a number in seconds, ms or µs, or from an ISO string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        magnitude = abs(value)
        if magnitude < 1e11:  # seconds (until the year 5138)
            return int(value * 1000)
        if magnitude < 1e14:
            return int(value)
        return int(value / 1000)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.replace(".", "", 1).isdigit():
            return coerce_epoch_ms(float(stripped))
        return parse_iso_ms(stripped)
    return None
