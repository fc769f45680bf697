"""Run every configured source once: LookupEvents and GuardDuty per account and region,
then each trail bucket. One failing source is reported and does not stop the others:
whatever it raises (an AWS error, a malformed checkpoint, a bug met by an odd record)
fails that source only, and its run is always finished in the status and the log.

Used by `trailguard poll` and, on an interval, by `SourceService` inside the server.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from trailguard.errors import SourceError
from trailguard.logs import log_fields
from trailguard.sources.aws import AccountSession, Pacer, open_account
from trailguard.sources.checkpoints import Checkpoints
from trailguard.sources.guardduty import FindingsPoller
from trailguard.sources.lookup_events import LookupEventsPoller, PollResult, Progress, now_ms
from trailguard.sources.settings import SourcesConfig
from trailguard.sources.sink import EventSink, PollStopped
from trailguard.sources.trail_files import TrailFileReader

log = logging.getLogger("trailguard.sources")

ProgressFactory = Callable[[str], Progress]
# One source: reads with the progress callback, counting into the result as it goes.
SourceCall = Callable[[Progress | None, PollResult], object]


@dataclass(slots=True)
class SourceRun:
    """The outcome of one source (e.g. `cloudtrail 111122223333 us-east-1`)."""

    label: str
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0  # malformed files, records or messages left out
    last_skip: str | None = None
    error: str | None = None
    stopped: bool = False  # cut short by a stopping server: neither ok nor failed
    newest_ms: int | None = None  # the latest event time the run read
    started_ms: int = 0
    finished_ms: int = 0

    def take(self, result: PollResult) -> None:
        """Copy what the source did, however far it got."""
        self.stored, self.duplicates = result.stored, result.duplicates
        self.skipped, self.last_skip = result.skipped, result.last_skip
        self.newest_ms = result.newest_ms


@dataclass(slots=True)
class PollSummary:
    """Every source run of one `poll --once`."""

    runs: list[SourceRun] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceRun]:
        return [run for run in self.runs if run.error]

    def describe(self) -> str:
        stored = sum(run.stored for run in self.runs)
        lines = [(f"Polled {len(self.runs)} sources: {stored} new events "
                 f"({sum(run.duplicates for run in self.runs)} already stored, "
                 f"{len(self.failed)} failed).")]
        lines += [f"  {run.label}: {_outcome(run)}" for run in self.runs]
        return "\n".join(lines)


def _outcome(run: SourceRun) -> str:
    text = f"{run.stored} new"
    if run.skipped:
        text += f", {run.skipped} skipped (last: {run.last_skip})"
    if run.stopped:
        text += ", stopped before it finished"
    if run.error:
        text += f", FAILED: {run.error}"
    return text


@dataclass(slots=True)
class SourceRunner:
    """Everything a poll needs; `pacer` and `clock_ms` are replaceable in tests."""

    settings: SourcesConfig
    store: EventSink
    data_dir: Path
    pacer: Pacer = field(default_factory=Pacer)
    clock_ms: Callable[[], int] = now_ms
    _finished: Callable[[SourceRun], None] | None = field(default=None, init=False, repr=False)

    def poll_once(self, progress: ProgressFactory | None = None,
                  finished: Callable[[SourceRun], None] | None = None,
                  summary: PollSummary | None = None) -> PollSummary:
        """Run each configured source once, in order; never raises for one source.

        `progress(label)` is called as a source starts, `finished(run)` as it ends
        (always, whatever happened). Runs are added to `summary` as they start, so a
        caller still has them when the poll is cut short: only `PollStopped` (the server
        is stopping) ends the poll early.
        """
        checkpoints = Checkpoints(self.data_dir)
        summary = PollSummary() if summary is None else summary
        self._finished = finished
        lookup = LookupEventsPoller(self.store, checkpoints, self.pacer,
                                    self.settings.cloudtrail_api, self.clock_ms)
        findings = FindingsPoller(self.store, checkpoints, self.pacer,
                                  self.settings.guardduty, self.clock_ms)
        files = TrailFileReader(self.store, checkpoints)
        sessions: dict[str, AccountSession] = {}

        for account in self.settings.accounts:
            opened = self._run(summary, f"credentials {account.name}", progress,
                               lambda _p, _r, a=account: open_account(a))
            if not isinstance(opened, AccountSession):
                continue
            sessions[account.name] = opened
            for region in opened.regions:
                where = f"{opened.account_id} {region}"
                if self.settings.cloudtrail_api.enabled:
                    self._run(summary, f"cloudtrail {where}", progress,
                              lambda p, r, g=region, s=opened: lookup.poll(s, g, p, r))
                if self.settings.guardduty.enabled:
                    self._run(summary, f"guardduty {where}", progress,
                              lambda p, r, g=region, s=opened: findings.poll(s, g, p, r))

        for bucket in self.settings.cloudtrail_buckets:
            session = sessions.get(bucket.account)
            if session is None:
                self._skip(summary, f"s3://{bucket.bucket}/{bucket.prefix}",
                           f"account {bucket.account} unavailable (see its credentials error)")
                continue
            self._run(summary, f"s3://{bucket.bucket}/{bucket.prefix}", progress,
                      lambda p, r, b=bucket, s=session: files.poll(b, s, p, r))
        return summary

    def _run(self, summary: PollSummary, label: str, progress: ProgressFactory | None,
             source: SourceCall) -> object:
        """Run one source; its failure, whatever it raises, is its own."""
        run = SourceRun(label, started_ms=self.clock_ms())
        summary.runs.append(run)
        result = PollResult()
        try:
            return source(progress(label) if progress else None, result)
        except PollStopped:
            run.stopped = True
            raise
        except Exception as exc:  # noqa: BLE001 - isolate: the next source must still run
            run.error = describe_failure(exc)
            _log_failure(label, exc, run.error)
            return None
        finally:
            # Also on PollStopped: the status must not show a source running forever.
            run.take(result)
            run.finished_ms = self.clock_ms()
            if self._finished:
                self._finished(run)

    def _skip(self, summary: PollSummary, label: str, reason: str) -> None:
        run = SourceRun(label, error=reason, started_ms=self.clock_ms())
        run.finished_ms = run.started_ms
        summary.runs.append(run)
        if self._finished:
            self._finished(run)


EXPECTED_FAILURES = (SourceError, ClientError, BotoCoreError)


def describe_failure(exc: Exception) -> str:
    """The error of a failed source as the status and the log show it.

    AWS and source errors speak for themselves; anything else is named by its type,
    since its message alone (`'bucket'` for a KeyError) says little.
    """
    if isinstance(exc, EXPECTED_FAILURES):
        return str(exc)
    return f"{type(exc).__name__}: {exc} (unexpected; the other sources went on)"


def _log_failure(label: str, exc: Exception, error: str) -> None:
    fields: dict[str, object] = {"source": label, "error": error}
    if not isinstance(exc, EXPECTED_FAILURES):
        # A bug or an input nobody foresaw: where it happened (code locations only,
        # no local values, so nothing secret).
        fields["traceback"] = "".join(traceback.format_exception(exc, limit=-4)).strip()
    log_fields(log, logging.ERROR, "source failed", **fields)
