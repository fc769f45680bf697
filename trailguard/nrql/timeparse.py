"""Date and time strings NRQL accepts in SINCE / UNTIL."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
            "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M:%S%z")


def parse_datetime_ms(text: str, zone: tzinfo = UTC) -> int | None:
    """Epoch ms of a date string; a string without an offset is in `zone` (UTC by default)."""
    candidate = text.strip().replace("Z", "+0000")
    moment: datetime | None = None
    for pattern in _FORMATS:
        try:
            moment = datetime.strptime(candidate, pattern)
            break
        except ValueError:
            continue
    if moment is None:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp() * 1000)
