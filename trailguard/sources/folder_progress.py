"""Which trail files of one region folder were read, for the day folders still listed.

CloudTrail names folders by the day of the events in a file, and a file can land in
yesterday's folder after today's files have started (delivery takes up to ~15 minutes,
longer when AWS is catching up). So each poll lists the newest day folder and
`lookback_days` before it, and skips the files remembered here. Days older than that
are forgotten, which keeps the checkpoint small; a file arriving even later than the
lookback is not seen by listing (SQS notifications still announce it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DAY_FORMAT = "%Y/%m/%d"
_DAY = re.compile(r"^\d{4}/\d{2}/\d{2}$")


@dataclass(slots=True)
class FolderProgress:
    """File names read per day folder (`YYYY/MM/DD`), for the days still re-listed."""

    lookback_days: int
    days: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, saved: Any, lookback_days: int) -> FolderProgress:
        """The progress from a checkpoint (either format), or none yet."""
        progress = cls(lookback_days)
        if not saved:
            return progress
        if "days" in saved:
            progress.days = {day: set(names) for day, names in saved["days"].items()}
        elif saved.get("day"):
            # Written before lookback existed: one day, with full object keys.
            progress.days = {saved["day"]: {key.rsplit("/", 1)[-1]
                                            for key in saved.get("read", [])}}
        return progress

    def first_day(self) -> str | None:
        """The oldest day folder to list, or None to list the whole folder."""
        if not self.days:
            return None
        newest = datetime.strptime(max(self.days), DAY_FORMAT)
        return (newest - timedelta(days=self.lookback_days)).strftime(DAY_FORMAT)

    def has_read(self, day: str, name: str) -> bool:
        return name in self.days.get(day, ())

    def mark_read(self, day: str, name: str) -> None:
        """Remember a file as read, and forget days that are no longer listed."""
        self.days.setdefault(day, set()).add(name)
        first = self.first_day()
        for old in [known for known in self.days if first and known < first]:
            del self.days[old]

    def to_json(self) -> dict[str, Any]:
        return {"days": {day: sorted(names) for day, names in sorted(self.days.items())}}


def checkpoint_problem(saved: Any) -> str | None:
    """What is wrong with a saved folder checkpoint (either format), or None."""
    if not isinstance(saved, dict):
        return "not a JSON object"
    if "days" in saved:
        days = saved["days"]
        if not isinstance(days, dict):
            return '"days" is not an object of day folders ("YYYY/MM/DD": [file names])'
        for day, names in days.items():
            problem = _day_problem(day) or _names_problem(names, f"day {day}")
            if problem:
                return problem
        return None
    if "day" in saved:  # the format from before lookback
        return _day_problem(saved["day"]) or _names_problem(saved.get("read", []), "read")
    return None if not saved else 'neither "days" nor "day" is there'


def _day_problem(day: Any) -> str | None:
    try:
        valid = isinstance(day, str) and bool(_DAY.match(day)) and bool(
            datetime.strptime(day, DAY_FORMAT))
    except ValueError:
        valid = False
    return None if valid else f"day folder {day!r} is not a date like 2023/11/14"


def _names_problem(names: Any, where: str) -> str | None:
    if isinstance(names, list) and all(isinstance(name, str) for name in names):
        return None
    return f"the files of {where} are not a list of file names"


def split_day(relative_key: str) -> tuple[str, str] | None:
    """`('2023/11/14', '<file>')` from `2023/11/14/<file>`; None for any other layout."""
    parts = relative_key.split("/", 3)
    if len(parts) != 4 or not _DAY.match("/".join(parts[:3])) or not parts[3]:
        return None
    return "/".join(parts[:3]), parts[3]
