"""Run every configured source once: LookupEvents and GuardDuty per account and region,
then each trail bucket. One failing source is reported and does not stop the others.

Used by `trailguard poll` and, on an interval, by `SourceService` inside the server.
"""

from __future__ import annotations

import logging
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
from trailguard.sources.sink import EventSink
from trailguard.sources.trail_files import TrailFileReader

log = logging.getLogger("trailguard.sources")

ProgressFactory = Callable[[str], Progress]


@dataclass(slots=True)
class SourceRun:
    """The outcome of one source (e.g. `cloudtrail 111122223333 us-east-1`)."""

    label: str
    stored: int = 0
    duplicates: int = 0
    error: str | None = None
    newest_ms: int | None = None  # the latest event time the run read
    started_ms: int = 0
    finished_ms: int = 0


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
        lines += [f"  {run.label}: {run.stored} new" + (f", FAILED: {run.error}" if run.error
                                                        else "") for run in self.runs]
        return "\n".join(lines)


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
                  finished: Callable[[SourceRun], None] | None = None) -> PollSummary:
        """Run each configured source once, in order; never raises for one source.

        `progress(label)` is called as a source starts, `finished(run)` as it ends.
        Errors other than AWS and source errors (a store failure, `PollStopped`) end
        the whole poll: they would fail every later source the same way.
        """
        checkpoints = Checkpoints(self.data_dir)
        summary = PollSummary()
        self._finished = finished
        lookup = LookupEventsPoller(self.store, checkpoints, self.pacer,
                                    self.settings.cloudtrail_api, self.clock_ms)
        findings = FindingsPoller(self.store, checkpoints, self.pacer,
                                  self.settings.guardduty, self.clock_ms)
        files = TrailFileReader(self.store, checkpoints)
        sessions: dict[str, AccountSession] = {}

        for account in self.settings.accounts:
            opened = self._run(summary, f"credentials {account.name}", progress,
                               lambda _p, a=account: open_account(a))
            if not isinstance(opened, AccountSession):
                continue
            sessions[account.name] = opened
            for region in opened.regions:
                where = f"{opened.account_id} {region}"
                if self.settings.cloudtrail_api.enabled:
                    self._run(summary, f"cloudtrail {where}", progress,
                              lambda p, r=region, s=opened: lookup.poll(s, r, p))
                if self.settings.guardduty.enabled:
                    self._run(summary, f"guardduty {where}", progress,
                              lambda p, r=region, s=opened: findings.poll(s, r, p))

        for bucket in self.settings.cloudtrail_buckets:
            session = sessions.get(bucket.account)
            if session is None:
                self._skip(summary, f"s3://{bucket.bucket}/{bucket.prefix}",
                           f"account {bucket.account} unavailable (see its credentials error)")
                continue
            self._run(summary, f"s3://{bucket.bucket}/{bucket.prefix}", progress,
                      lambda p, b=bucket, s=session: files.poll(b, s, p))
        return summary

    def _run(self, summary: PollSummary, label: str, progress: ProgressFactory | None,
             source: Callable[[Progress | None], object]) -> object:
        run = SourceRun(label, started_ms=self.clock_ms())
        summary.runs.append(run)
        outcome: object = None
        try:
            outcome = source(progress(label) if progress else None)
        except (SourceError, ClientError, BotoCoreError) as exc:
            run.error = str(exc)
            log_fields(log, logging.ERROR, "source failed", source=label, error=str(exc))
        if isinstance(outcome, PollResult):
            run.stored, run.duplicates = outcome.stored, outcome.duplicates
            run.newest_ms = outcome.newest_ms
        run.finished_ms = self.clock_ms()
        if self._finished:
            self._finished(run)
        return outcome

    def _skip(self, summary: PollSummary, label: str, reason: str) -> None:
        run = SourceRun(label, error=reason, started_ms=self.clock_ms())
        run.finished_ms = run.started_ms
        summary.runs.append(run)
        if self._finished:
            self._finished(run)
