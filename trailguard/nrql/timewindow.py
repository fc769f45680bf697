"""SINCE / UNTIL / TIMESERIES: time points and bucket widths against a clock and a zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trailguard.errors import NrqlError, NrqlUnsupportedError
from trailguard.nrql import ast
from trailguard.nrql.timeparse import parse_datetime_ms, time_of_day

DEFAULT_WINDOW_MS = 3_600_000
MAX_BUCKETS = 366
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# TIMESERIES AUTO: the first width whose window limit is not exceeded. New Relic
# documents two points of its own table (1 day -> 30 minutes, 1 week -> 6 hours);
# the rest keeps charts between roughly 30 and 100 points.
_AUTO_WIDTHS = (
    (HOUR_MS, MINUTE_MS), (3 * HOUR_MS, 5 * MINUTE_MS), (6 * HOUR_MS, 10 * MINUTE_MS),
    (DAY_MS, 30 * MINUTE_MS), (3 * DAY_MS, 2 * HOUR_MS), (7 * DAY_MS, 6 * HOUR_MS),
    (31 * DAY_MS, DAY_MS), (92 * DAY_MS, 3 * DAY_MS),
)


@dataclass(frozen=True, slots=True)
class Window:
    """The resolved time range [begin_ms, end_ms) and, for TIMESERIES, the bucket width."""

    begin_ms: int
    end_ms: int
    bucket_ms: int | None = None
    step_ms: int | None = None       # SLIDE BY: buckets start this far apart, overlapping

    @property
    def stride_ms(self) -> int | None:
        return self.step_ms or self.bucket_ms

    @property
    def buckets(self) -> int:
        if not self.stride_ms:
            return 0
        return -(-(self.end_ms - self.begin_ms) // self.stride_ms)


def zone_of(query: ast.Query, source: str) -> tzinfo:
    """The query's WITH TIMEZONE zone, UTC without one."""
    if query.timezone is None:
        return UTC
    try:
        return ZoneInfo(query.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise NrqlError(f"unknown time zone '{query.timezone}' (use a name such as "
                        "'America/New_York')", source, clause_at(query, "timezone")) from None


def clause_at(query: ast.Query, *names: str) -> int:
    """Where the first of the clauses `names` that the query has stands (else the query)."""
    return next((query.clauses[name] for name in names if name in query.clauses),
                query.position)


def _timeseries_at(query: ast.Query) -> int:
    """The TIMESERIES that set the buckets: the outer query's, else the inner query's."""
    if "timeseries" not in query.clauses and query.source is not None:
        return clause_at(query.source, "timeseries")
    return clause_at(query, "timeseries")


def resolve_time(point: ast.TimePoint, now_ms: int, zone: tzinfo = UTC) -> int:
    """Epoch ms of a SINCE/UNTIL time point."""
    if isinstance(point, ast.RelativeTime):
        return now_ms - point.milliseconds
    if isinstance(point, ast.AbsoluteTime):
        if point.text is not None:
            return parse_datetime_ms(point.text, zone) or point.epoch_ms
        return point.epoch_ms
    if point.name == "now":
        return now_ms
    now = datetime.fromtimestamp(now_ms / 1000, zone)
    start = _period_start(point.name, now)
    if point.at:
        start = _at_time_of_day(start, point.at)
    return int(start.timestamp() * 1000)


def _period_start(name: str, now: datetime) -> datetime:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if name == "today":
        return midnight
    if name == "yesterday":
        return _shift_days(midnight, -1)
    if name in WEEKDAYS:
        # The most recent such day (today when today is that day).
        back = (now.weekday() - WEEKDAYS.index(name)) % 7
        return _shift_days(midnight, -back)
    which, unit = name.split(" ")
    start = _unit_start(unit, now)
    return start if which == "this" else _previous_unit_start(unit, start)


def _unit_start(unit: str, now: datetime) -> datetime:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "hour":
        return now.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        return midnight
    if unit == "week":
        return _shift_days(midnight, -now.weekday())  # weeks start on Monday
    if unit == "month":
        return midnight.replace(day=1)
    if unit == "quarter":
        return midnight.replace(day=1, month=(now.month - 1) // 3 * 3 + 1)
    return midnight.replace(day=1, month=1)


def _previous_unit_start(unit: str, start: datetime) -> datetime:
    if unit == "hour":
        return start - timedelta(hours=1)
    if unit == "day":
        return _shift_days(start, -1)
    if unit == "week":
        return _shift_days(start, -7)
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    index = start.year * 12 + start.month - 1 - months
    return start.replace(year=index // 12, month=index % 12 + 1)


def _shift_days(moment: datetime, days: int) -> datetime:
    # Through the wall clock, so a DST change does not move midnight.
    naive = moment.replace(tzinfo=None) + timedelta(days=days)
    return naive.replace(tzinfo=moment.tzinfo)


def _at_time_of_day(day: datetime, text: str) -> datetime:
    # The parser has already refused anything time_of_day() cannot read.
    hour, minute, second = time_of_day(text) or (0, 0, 0)
    return day.replace(hour=hour, minute=minute, second=second)


def bucket_width(setting: int | str, span_ms: int) -> int:
    """The TIMESERIES width for `setting` (ms, "auto" or "max") over a window of `span_ms`."""
    if isinstance(setting, int):
        return setting
    if setting == "max":
        width = -(-span_ms // MAX_BUCKETS)
        unit = MINUTE_MS if width > MINUTE_MS else 1000
        return max(unit, -(-width // unit) * unit)
    for limit, width in _AUTO_WIDTHS:
        if span_ms <= limit:
            return width
    return -(-span_ms // (60 * DAY_MS)) * DAY_MS   # longer ranges: about 60 whole days


def query_window(query: ast.Query, now_ms: int, source: str) -> Window:
    """SINCE/UNTIL resolved (default: the last hour), with the TIMESERIES width if any.

    In a nested aggregation the outer query's range is the only one, and a TIMESERIES
    at either level buckets the inner query.

    Limitation: buckets start at the window's begin; New Relic may snap the start to
    a whole bucket, so the first bucket's edges can differ from its charts.
    """
    zone = zone_of(query, source)
    end_ms = resolve_time(query.until, now_ms, zone) if query.until else now_ms
    if query.since is not None:
        begin_ms = resolve_time(query.since, now_ms, zone)
    else:
        begin_ms = end_ms - DEFAULT_WINDOW_MS
    if begin_ms >= end_ms:
        raise NrqlError("SINCE must be earlier than UNTIL", source,
                        clause_at(query, "since", "until"))
    setting = query.timeseries
    if setting is None and query.source is not None:
        setting = query.source.timeseries
    if setting is None:
        return Window(begin_ms, end_ms)
    width = bucket_width(setting, end_ms - begin_ms)
    step = None
    if query.slide is not None:
        if not isinstance(query.slide, int):
            raise NrqlUnsupportedError(f"SLIDE BY {query.slide.upper()}", source,
                                       clause_at(query, "slide"))
        if query.slide > width:
            raise NrqlError("SLIDE BY must not be longer than the TIMESERIES bucket", source,
                            clause_at(query, "slide"))
        step = query.slide
    window = Window(begin_ms, end_ms, width, step)
    if window.buckets > MAX_BUCKETS:
        raise NrqlError(f"TIMESERIES would make {window.buckets} buckets over this time "
                        f"range; the most allowed is {MAX_BUCKETS} (use a wider bucket or "
                        "TIMESERIES MAX)", source, _timeseries_at(query))
    return window
