"""The AWS pollers inside `trailguard serve`: one background thread, every `interval`.

The thread only blocks itself (AWS calls, pacing, waiting for commits); the HTTP
server runs on its own event loop and shares nothing with it but the group-commit
writer. DuckDB allows one process per file, so polling inside the server is the only
way to poll while it runs, and writing through its writer keeps one writer thread.

Stopping is prompt: the stop event wakes the wait between polls, the pacer's sleeps
and a wait for a full write queue, and the next page write raises `PollStopped`, so a
poll ends at a page boundary with its checkpoint at the last stored page.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trailguard.logs import log_fields
from trailguard.sources.aws import Pacer
from trailguard.sources.lookup_events import now_ms
from trailguard.sources.runner import PollSummary, SourceRun, SourceRunner
from trailguard.sources.settings import SourcesConfig
from trailguard.sources.sink import PollStopped, WriterSink
from trailguard.sources.status import StatusBoard, iso
from trailguard.store.writer import GroupCommitWriter

log = logging.getLogger("trailguard.sources.service")

STOP_TIMEOUT_S = 15.0


class SourceService:
    """Polls every configured source on an interval until stopped."""

    def __init__(self, settings: SourcesConfig, data_dir: Path,
                 clock_ms: Callable[[], int] = now_ms) -> None:
        self.settings = settings
        self.data_dir = Path(data_dir)
        self.board = StatusBoard(settings.interval_ms)
        self.clock_ms = clock_ms
        self._stopping = threading.Event()
        self._wake = threading.Event()  # poll now: set by `poll_now` and `stop`
        self._thread: threading.Thread | None = None

    def start(self, writer: GroupCommitWriter) -> None:
        """Start polling in the background, committing through `writer`."""
        runner = SourceRunner(self.settings, WriterSink(writer, self._stopping), self.data_dir,
                              pacer=Pacer(sleep=self._sleep), clock_ms=self.clock_ms)
        self._thread = threading.Thread(target=self._loop, args=(runner,),
                                        name="trailguard-sources", daemon=True)
        self._thread.start()
        log_fields(log, logging.INFO, "source polling started",
                   accounts=len(self.settings.accounts),
                   buckets=len(self.settings.cloudtrail_buckets),
                   interval_s=self.settings.interval_ms / 1000)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop after the page in progress; True when the thread has ended.

        A thread still inside an AWS call after `timeout_s` is left to finish on its
        own: it is a daemon, and what it read is refused (`PollStopped`) before it is
        stored, so its checkpoint cannot move either.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is None or not self._thread.is_alive():
            return True  # never started, or already stopped
        started = time.monotonic()
        self._thread.join(timeout_s)
        ended = not self._thread.is_alive()
        log_fields(log, logging.INFO if ended else logging.WARNING,
                   "source polling stopped" if ended else "source poll still in an AWS call",
                   wait_ms=round((time.monotonic() - started) * 1000, 1))
        return ended

    def poll_now(self) -> None:
        """Start the next poll without waiting out the interval (after the current one)."""
        self._wake.set()

    def status(self) -> dict[str, Any]:
        """What `GET /api/v1/sources` returns."""
        return self.board.snapshot(self.clock_ms())

    def _loop(self, runner: SourceRunner) -> None:
        interval_s = self.settings.interval_ms / 1000
        while not self._stopping.is_set():
            started = time.monotonic()
            self._wake.clear()  # a `poll_now` during this poll asks for one more
            self._poll(runner, interval_s)
            # Interval from start to start; a poll longer than that is followed at once.
            self._wake.wait(max(0.0, interval_s - (time.monotonic() - started)))
        self.board.stopped()

    def _poll(self, runner: SourceRunner, interval_s: float) -> None:
        started_ms = self.clock_ms()
        self.board.poll_started(started_ms)
        # Filled as sources run, so a poll cut short still reports the runs it had.
        summary = PollSummary()
        error: str | None = None
        try:
            runner.poll_once(self.board.source_started, self._finished, summary)
        except PollStopped:
            error = "stopped before the poll finished"
        except Exception as exc:  # the loop must survive to poll again
            error = f"{type(exc).__name__}: {exc}"
            log.exception("source poll failed")
        finished_ms = self.clock_ms()
        next_ms = started_ms + int(interval_s * 1000)
        self.board.poll_finished(finished_ms, max(next_ms, finished_ms), summary, error)
        log_fields(log, logging.INFO, "sources polled", **_totals(summary), error=error,
                   ms=finished_ms - started_ms, next_poll=iso(max(next_ms, finished_ms)))

    def _finished(self, run: SourceRun) -> None:
        self.board.source_finished(run)
        lag_s = None if run.newest_ms is None else (run.finished_ms - run.newest_ms) / 1000
        log_fields(log, logging.WARNING if run.error else logging.INFO, "source run",
                   source=run.label, stored=run.stored, duplicates=run.duplicates,
                   skipped=run.skipped, ms=run.finished_ms - run.started_ms,
                   newest_event=iso(run.newest_ms), lag_s=lag_s, error=run.error,
                   stopped=run.stopped)

    def _sleep(self, seconds: float) -> None:
        """The pacer's sleep (pacing, throttling backoff), cut short by stop."""
        if self._stopping.wait(seconds):
            raise PollStopped("source polling is stopping")


def _totals(summary: PollSummary) -> dict[str, int]:
    runs = summary.runs
    return {"sources": len(runs), "stored": sum(run.stored for run in runs),
            "duplicates": sum(run.duplicates for run in runs),
            "skipped": sum(run.skipped for run in runs), "failed": len(summary.failed)}
