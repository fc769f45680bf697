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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from botocore.exceptions import ClientError

from trailguard.events import Event
from trailguard.ingest.documents import cloudtrail_event
from trailguard.logs import log_fields
from trailguard.sources.aws import AccountSession, Pacer, error_code
from trailguard.sources.checkpoints import Checkpoints, checkpoint_key
from trailguard.sources.settings import MAX_BACKFILL_MS, LookupEventsSource
from trailguard.sources.sink import EventSink
from trailguard.store.base import WriteResult

log = logging.getLogger("trailguard.sources.lookup_events")

PAGE_SIZE = 50  # the most LookupEvents returns per call
WINDOW_MS = 86_400_000
Progress = Callable[[int, int, int], None]  # (events stored, ms covered, ms to cover)


@dataclass(slots=True)
class PollResult:
    """What one poll of one account and region did."""

    stored: int = 0
    duplicates: int = 0
    pages: int = 0
    unreadable: int = 0
    newest_ms: int | None = None  # the latest event time read (stored or not): the lag

    def add_page(self, events: list[Event], written: WriteResult) -> None:
        """Count one committed page of `events`."""
        self.stored += written.stored
        self.duplicates += written.duplicates
        self.pages += 1
        if events:
            newest = max(event.timestamp for event in events)
            self.newest_ms = newest if self.newest_ms is None else max(self.newest_ms, newest)


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

    def poll(self, account: AccountSession, region: str,
             progress: Progress | None = None) -> PollResult:
        """Read everything new for `account` in `region` up to now."""
        key = checkpoint_key("lookup-events", account.account_id, region)
        client = account.client("cloudtrail", region)
        until = self.clock_ms()
        state = self._state(key, until)
        first_start = state["window"]["start"] if state.get("window") else until
        result = PollResult()

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
        state = dict(self.checkpoints.get(key) or {})
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
            events = self._events(page, result)
            result.add_page(events, self.store.write(events))

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

    def _events(self, page: Any, result: PollResult) -> list[Event]:
        events = []
        for summary in page.get("Events", []):
            try:
                record = orjson.loads(summary["CloudTrailEvent"])
            except (KeyError, TypeError, orjson.JSONDecodeError):
                result.unreadable += 1
                log_fields(log, logging.WARNING, "LookupEvents entry without a readable "
                           "CloudTrailEvent, skipped", event_id=summary.get("EventId"))
                continue
            events.append(cloudtrail_event(record))
        return events


def _datetime(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
