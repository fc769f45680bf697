"""CloudTrail LookupEvents poller: one account and region at a time.

Each run reads from where the last one stopped, minus an overlap (CloudTrail shows
an event in LookupEvents up to ~15 minutes after it happened), up to now, in windows
of at most a day. Pages are stored before the checkpoint moves: the checkpoint holds
the finished time (`done_until`) and, inside a window, the NextToken of the next page,
so a restart resumes at the page it had not stored yet. Overlapping reads are free of
duplicates because the store de-duplicates CloudTrail records by content.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from botocore.exceptions import ClientError

from trailguard.ingest.documents import cloudtrail_event
from trailguard.ingest.timestamps import in_range, parse_iso_ms
from trailguard.logs import log_fields
from trailguard.sources.aws import AccountSession, Pacer, error_code
from trailguard.sources.checkpoints import Checkpoints, checkpoint_key, is_epoch_ms
from trailguard.sources.settings import MAX_BACKFILL_MS, LookupEventsSource
from trailguard.sources.sink import EventSink
from trailguard.store.base import WriteResult

log = logging.getLogger("trailguard.sources.lookup_events")

PAGE_SIZE = 50  # the most LookupEvents returns per call
WINDOW_MS = 86_400_000
Progress = Callable[[int, int, int], None]  # (events stored, ms covered, ms to cover)


@dataclass(slots=True)
class PollResult:
    """What one poll of one source did; filled as it goes, so a run that fails half-way
    still reports what it stored."""

    stored: int = 0
    duplicates: int = 0
    pages: int = 0
    skipped: int = 0  # malformed files, records or messages left out
    last_skip: str | None = None  # why the last one was left out
    newest_ms: int | None = None  # the latest real event time read (stored or not): the lag

    def add_page(self, written: WriteResult, newest_ms: int | None) -> None:
        """Count one committed page; `newest_ms` is its latest real event time."""
        self.stored += written.stored
        self.duplicates += written.duplicates
        self.pages += 1
        if newest_ms is not None:
            self.newest_ms = max(newest_ms, self.newest_ms or newest_ms)

    def skip(self, reason: str, how_many: int = 1) -> None:
        """Count malformed input left out, remembering why (shown in the status)."""
        self.skipped += how_many
        self.last_skip = reason


def newest_time_ms(times: Iterable[object]) -> int | None:
    """The latest of ISO-8601 times such as `eventTime`; None when none is a real time.

    Events whose time cannot be read are stored at their arrival time, which must not
    count as the newest event read: the status would show no lag when reading is behind.
    """
    parsed = [parse_iso_ms(text) for text in times if isinstance(text, str)]
    real = [moment for moment in parsed if moment is not None and in_range(moment)]
    return max(real) if real else None


def now_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return int(time.time() * 1000)


class LookupEventsPoller:
    """Polls LookupEvents into the store, checkpointing per account and region."""

    def __init__(self, store: EventSink, checkpoints: Checkpoints, pacer: Pacer,
                 settings: LookupEventsSource, clock_ms: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.checkpoints = checkpoints
        self.pacer = pacer
        self.settings = settings
        self.clock_ms = clock_ms

    def poll(self, account: AccountSession, region: str, progress: Progress | None = None,
             result: PollResult | None = None) -> PollResult:
        """Read everything new for `account` in `region` up to now, counting into `result`."""
        key = checkpoint_key("lookup-events", account.account_id, region)
        client = account.client("cloudtrail", region)
        until = self.clock_ms()
        state = self._state(key, until)
        first_start = state["window"]["start"] if state.get("window") else until
        result = PollResult() if result is None else result

        while state.get("window"):
            self._read_window(client, (account.account_id, region), key, state, result)
            if progress:
                progress(result.stored, state["done_until"] - first_start, until - first_start)
            state = self._next_window(state, until)
        log_fields(log, logging.INFO, "lookup events polled", account=account.account_id,
                   region=region, stored=result.stored, duplicates=result.duplicates,
                   pages=result.pages)
        return result

    def _state(self, key: str, until: int) -> dict[str, Any]:
        """The saved state, with a window to read when there is time left to cover."""
        state = dict(self.checkpoints.get_valid(key, checkpoint_problem) or {})
        if state.get("window"):
            return state  # an interrupted window: resume it, NextToken and all
        done = state.get("done_until")
        if done is None:
            start = until - self.settings.backfill_ms
        else:
            start = max(done - self.settings.overlap_ms, until - MAX_BACKFILL_MS)
        state["done_until"] = start
        return self._next_window(state, until)

    def _next_window(self, state: dict[str, Any], until: int) -> dict[str, Any]:
        start = state["done_until"]
        if state.get("window"):
            start = state["window"]["end"]
        if start >= until:
            return {"done_until": state["done_until"]}
        end = min(start + WINDOW_MS, until)
        return {"done_until": state["done_until"],
                "window": {"start": start, "end": end, "next_token": None}}

    def _read_window(self, client: Any, pace_key: tuple[str, str], key: str,
                     state: dict[str, Any], result: PollResult) -> None:
        window = state["window"]
        while True:
            page = self._page(client, pace_key, window)
            records = self._records(page, result)
            events = [cloudtrail_event(record) for record in records]
            result.add_page(self.store.write(events),
                            newest_time_ms(record.get("eventTime") for record in records))

            window["next_token"] = page.get("NextToken") or None
            if window["next_token"] is None:
                state["done_until"] = window["end"]
                self.checkpoints.save(key, {"done_until": window["end"]})
                return
            self.checkpoints.save(key, {"done_until": state["done_until"], "window": window})

    def _page(self, client: Any, pace_key: tuple[str, str], window: dict[str, Any]) -> Any:
        request: dict[str, Any] = {"StartTime": _datetime(window["start"]),
                                   "EndTime": _datetime(window["end"]), "MaxResults": PAGE_SIZE}
        if window["next_token"]:
            request["NextToken"] = window["next_token"]
        try:
            return self.pacer.call(pace_key, lambda: client.lookup_events(**request))
        except ClientError as exc:
            if error_code(exc) != "InvalidNextTokenException" or not window["next_token"]:
                raise
        # A saved NextToken can expire across a long stop: read the window again from
        # its start (already stored events are duplicates and cost nothing).
        log_fields(log, logging.WARNING, "saved NextToken expired, re-reading window",
                   account=pace_key[0], region=pace_key[1], start=window["start"])
        window["next_token"] = None
        del request["NextToken"]
        return self.pacer.call(pace_key, lambda: client.lookup_events(**request))

    def _records(self, page: Any, result: PollResult) -> list[dict[str, Any]]:
        """The CloudTrail records of a page; an entry without one is skipped and counted."""
        records = []
        for summary in page.get("Events", []):
            try:
                record = orjson.loads(summary["CloudTrailEvent"])
            except (KeyError, TypeError, orjson.JSONDecodeError):
                record = None
            if not isinstance(record, dict):
                reason = (f"LookupEvents entry {summary.get('EventId')!r} has no CloudTrailEvent "
                          "JSON object")
                result.skip(reason)
                log_fields(log, logging.WARNING, "LookupEvents entry skipped", reason=reason)
                continue
            records.append(record)
        return records


def checkpoint_problem(state: Any) -> str | None:
    """What is wrong with a saved LookupEvents checkpoint, or None when it is usable."""
    if not isinstance(state, dict):
        return "not a JSON object"
    if not is_epoch_ms(state.get("done_until")):
        return '"done_until" is not a time in epoch milliseconds'
    window = state.get("window")
    if window is None:
        return None
    if not (isinstance(window, dict) and is_epoch_ms(window.get("start"))
            and is_epoch_ms(window.get("end"))):
        return '"window" needs "start" and "end" in epoch milliseconds'
    if not isinstance(window.get("next_token"), (str, type(None))):
        return '"window.next_token" is neither a string nor null'
    return None


def _datetime(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
