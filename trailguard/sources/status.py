"""How the source polls are going, as `GET /api/v1/sources` shows it.

The poll thread writes here as each source starts, advances and finishes; HTTP
requests read a snapshot. Kept in memory: after a restart every source shows
`pending` until its first run, which starts as soon as the server does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trailguard.sources.lookup_events import Progress
from trailguard.sources.runner import PollSummary, SourceRun


@dataclass(slots=True)
class SourceStatus:
    """One source (`cloudtrail 111122223333 us-east-1`, `s3://bucket/`, ...) over time."""

    source: str
    state: str = "pending"  # pending, running, ok, failed, stopped
    started_ms: int | None = None
    finished_ms: int | None = None
    last_success_ms: int | None = None
    last_error: str | None = None
    last_error_ms: int | None = None
    newest_event_ms: int | None = None
    last_stored: int = 0
    last_duplicates: int = 0
    last_skipped: int = 0
    total_stored: int = 0
    total_duplicates: int = 0
    total_skipped: int = 0
    last_skip: str | None = None  # why the latest malformed input was left out
    last_skip_ms: int | None = None
    runs: int = 0
    failures: int = 0
    progress: tuple[int, int, int] | None = None  # (stored, done, total) while running

    def finish(self, run: SourceRun) -> None:
        """Fold a finished (or failed, or stopped) run into the totals."""
        self.state = "stopped" if run.stopped else "failed" if run.error else "ok"
        self.started_ms, self.finished_ms = run.started_ms, run.finished_ms
        self.last_stored, self.last_duplicates = run.stored, run.duplicates
        self.last_skipped = run.skipped
        self.total_stored += run.stored
        self.total_duplicates += run.duplicates
        self.total_skipped += run.skipped
        self.progress = None
        if run.last_skip:
            self.last_skip, self.last_skip_ms = run.last_skip, run.finished_ms
        if run.newest_ms is not None:
            self.newest_event_ms = max(run.newest_ms, self.newest_event_ms or run.newest_ms)
        if run.stopped:
            return  # what it stored counts; the run itself neither succeeded nor failed
        self.runs += 1
        if run.error:
            self.failures += 1
            self.last_error, self.last_error_ms = run.error, run.finished_ms
        else:
            self.last_success_ms = run.finished_ms

    def describe(self, now_ms: int) -> dict[str, Any]:
        """The JSON shape of one source; `lag_seconds` is the newest event's age now."""
        lag = None if self.newest_event_ms is None else (now_ms - self.newest_event_ms) / 1000
        return {
            "source": self.source, "state": self.state,
            "last_run_at": iso(self.started_ms), "last_run_finished_at": iso(self.finished_ms),
            "last_success_at": iso(self.last_success_ms),
            "last_error": self.last_error, "last_error_at": iso(self.last_error_ms),
            "newest_event_at": iso(self.newest_event_ms),
            "lag_seconds": None if lag is None else round(lag, 3),
            "last_run": {"stored": self.last_stored, "duplicates": self.last_duplicates,
                         "skipped": self.last_skipped},
            "totals": {"stored": self.total_stored, "duplicates": self.total_duplicates,
                       "skipped": self.total_skipped, "runs": self.runs,
                       "failures": self.failures},
            "last_skip": None if self.last_skip is None else {
                "at": iso(self.last_skip_ms), "reason": self.last_skip},
            "progress": _progress(self.progress),
        }


class StatusBoard:
    """Every source's status and the poll loop's own, safe to read from any thread."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms
        self.state = "starting"  # starting, polling, waiting, stopped
        self.polls = 0
        self.poll_started_ms: int | None = None
        self.poll_finished_ms: int | None = None
        self.poll_error: str | None = None
        self.next_poll_ms: int | None = None
        self._last: PollSummary | None = None
        self._sources: dict[str, SourceStatus] = {}
        self._lock = threading.Lock()

    def poll_started(self, now_ms: int) -> None:
        with self._lock:
            self.state, self.poll_started_ms, self.next_poll_ms = "polling", now_ms, None

    def source_started(self, label: str) -> Progress:
        """Mark `label` running; returns the progress callback the runner feeds."""
        with self._lock:
            status = self._sources.setdefault(label, SourceStatus(label))
            status.state, status.progress = "running", (0, 0, 1)

        def advance(stored: int, done: int, total: int) -> None:
            with self._lock:
                status.progress = (stored, done, total)

        return advance

    def source_finished(self, run: SourceRun) -> None:
        with self._lock:
            self._sources.setdefault(run.label, SourceStatus(run.label)).finish(run)

    def poll_finished(self, now_ms: int, next_ms: int, summary: PollSummary | None,
                      error: str | None = None) -> None:
        """A poll ended: `summary` has every source run it got to, `error` says why it was
        cut short (None when it was not)."""
        with self._lock:
            self.polls += error is None
            self.state, self.poll_finished_ms = "waiting", now_ms
            self.next_poll_ms, self.poll_error = next_ms, error
            self._last = summary

    def stopped(self) -> None:
        with self._lock:
            self.state, self.next_poll_ms = "stopped", None

    def snapshot(self, now_ms: int) -> dict[str, Any]:
        """The whole status as JSON-able data."""
        with self._lock:
            last = self._last
            sources = [status.describe(now_ms) for status in self._sources.values()]
            return {
                "enabled": True, "state": self.state,
                "interval_seconds": self.interval_ms / 1000, "polls_completed": self.polls,
                "last_poll": {
                    "started_at": iso(self.poll_started_ms),
                    "finished_at": iso(self.poll_finished_ms), "error": self.poll_error,
                    "stored": sum(run.stored for run in last.runs) if last else 0,
                    "duplicates": sum(run.duplicates for run in last.runs) if last else 0,
                    "skipped": sum(run.skipped for run in last.runs) if last else 0,
                    "failed": len(last.failed) if last else 0},
                "next_poll_at": iso(self.next_poll_ms),
                "sources": sources,
            }


def iso(epoch_ms: int | None) -> str | None:
    """`2023-11-14T22:00:00.000Z`, or None."""
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def _progress(progress: tuple[int, int, int] | None) -> dict[str, Any] | None:
    if progress is None:
        return None
    stored, done, total = progress
    return {"stored": stored, "percent": round(100 * done / max(total, 1), 1)}
