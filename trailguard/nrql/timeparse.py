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


def time_of_day(text: str) -> tuple[int, int, int] | None:
    """(hour, minute, second) of an AT time such as '09:00' or '17:30:15'; None when the
    text is not one (checked while parsing, so the error can name the string)."""
    parts = text.strip().split(":")
    if not 2 <= len(parts) <= 3 or not all(part.isdigit() for part in parts):
        return None
    numbers = [int(part) for part in parts] + [0] * (3 - len(parts))
    if numbers[0] > 23 or numbers[1] > 59 or numbers[2] > 59:
        return None
    return numbers[0], numbers[1], numbers[2]
