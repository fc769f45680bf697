"""`trailguard poll`: pull the configured AWS sources into the data directory."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from trailguard.errors import ConfigError, StoreBusyError
from trailguard.logs import log_fields

if TYPE_CHECKING:  # the runner imports boto3: only load it when polling
    from trailguard.sources.runner import PollSummary, SourceRun, SourceRunner

log = logging.getLogger("trailguard.sources.command")


def add_poll_command(commands: argparse._SubParsersAction,
                     load: Callable[..., Any]) -> None:
    """Register `trailguard poll [--once]`; `load(args)` builds the Config."""
    poll = commands.add_parser("poll", help="pull CloudTrail and GuardDuty from AWS "
                                            "(sources in the config)")
    poll.add_argument("--data-dir", type=Path, help="data directory (default: ./data)")
    poll.add_argument("--once", action="store_true",
                      help="run every configured source once and exit")
    poll.add_argument("--no-progress", action="store_true", help="no progress bars")
    poll.set_defaults(handler=lambda args: run_poll_command(args, load(args)))


def run_poll_command(args: argparse.Namespace, config: Any) -> int:
    """Poll once (`--once`) or every `sources.interval` until interrupted."""
    from trailguard.sources.runner import SourceRunner
    from trailguard.store import DuckDBStore

    if not config.sources.accounts:
        raise ConfigError("no AWS sources configured: add a `sources:` section with at least "
                          "one account to the config file (see docs/aws-sources.md)")
    try:
        store = DuckDBStore(config.data_dir, memory_limit=config.store_memory_limit)
    except StoreBusyError as exc:
        raise StoreBusyError(
            f"{config.data_dir} is in use, most likely by `trailguard serve`, which polls the "
            "configured sources itself: see GET /api/v1/sources, or POST /api/v1/sources/poll "
            "to poll now; stop the server to poll from the command line") from exc
    try:
        runner = SourceRunner(config.sources, store, config.data_dir)
        while True:
            summary = _poll_with_progress(runner, show=not args.no_progress)
            print(summary.describe(), flush=True)
            if args.once:
                return 1 if summary.failed else 0
            log_fields(log, logging.INFO, "next poll", wait_s=config.sources.interval_ms / 1000)
            time.sleep(config.sources.interval_ms / 1000)
    finally:
        store.close()


def _poll_with_progress(runner: SourceRunner, show: bool) -> PollSummary:
    """One poll of every source, a progress bar per source (backfills take a while)."""
    with Progress(*BAR_COLUMNS, disable=not show, transient=False) as progress:
        bars = PollBars(progress)
        return runner.poll_once(bars.start, bars.finished)


BAR_COLUMNS = (TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TextColumn("{task.fields[events]} new"),
               TimeElapsedColumn())


class PollBars:
    """A bar per source that ends showing exactly what the poll summary says.

    A bar moves while its source reports progress; when the source ends, its run (the
    numbers the summary prints) is what the bar shows: a source without progress
    reports (credentials, an SQS queue) would otherwise end at 0% or "0 new".
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._tasks: dict[str, TaskID] = {}

    def start(self, label: str) -> Callable[[int, int, int], None]:
        task = self._task(label)

        def advance(stored: int, done: int, total: int) -> None:
            self.progress.update(task, completed=done, total=max(total, 1), events=stored)

        return advance

    def finished(self, run: SourceRun) -> None:
        task = self._task(run.label)  # a source skipped for its account never started
        if run.error or run.stopped:
            outcome = "failed" if run.error else "stopped"
            self.progress.update(task, description=f"{run.label} ({outcome})",
                                 events=run.stored)
        else:
            self.progress.update(task, total=1, completed=1, events=run.stored)

    def _task(self, label: str) -> TaskID:
        if label not in self._tasks:
            self._tasks[label] = self.progress.add_task(label, total=1, events=0)
        return self._tasks[label]
