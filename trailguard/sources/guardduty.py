"""GuardDuty findings backfill: ListDetectors, ListFindings, GetFindings per region.

Findings are stored as `Log` events in exactly the shape Firehose delivers them
(the EventBridge envelope around the camelCase finding), so queries, dashboards and
alerts cannot tell the two paths apart. GuardDuty updates a finding in place (same
id, later `updatedAt`, higher `service.count`): every distinct state is a new event,
and the store's content key keeps the same state from being stored twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from trailguard.events import Event
from trailguard.ingest.documents import camel_case_keys, log_event, wrap_finding
from trailguard.logs import log_fields
from trailguard.sources.aws import AccountSession, Pacer
from trailguard.sources.checkpoints import Checkpoints, checkpoint_key, is_epoch_ms
from trailguard.sources.lookup_events import PollResult, Progress, newest_time_ms, now_ms
from trailguard.sources.settings import FindingsSource
from trailguard.sources.sink import EventSink

log = logging.getLogger("trailguard.sources.guardduty")

PAGE_SIZE = 50  # ListFindings and GetFindings both take at most 50
# Findings updated while a listing runs can land just behind its checkpoint;
# re-reading a few minutes costs a little and stores nothing twice.
REREAD_MS = 5 * 60_000


class FindingsPoller:
    """Pulls findings updated since the last run, per account, region and detector."""

    def __init__(self, store: EventSink, checkpoints: Checkpoints, pacer: Pacer,
                 settings: FindingsSource, clock_ms: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.checkpoints = checkpoints
        self.pacer = pacer
        self.settings = settings
        self.clock_ms = clock_ms

    def poll(self, account: AccountSession, region: str, progress: Progress | None = None,
             result: PollResult | None = None) -> PollResult:
        """Store every finding state updated since the last poll in `region`."""
        client = account.client("guardduty", region)
        pace_key = (account.account_id, f"{region}/guardduty")
        result = PollResult() if result is None else result
        for detector_id in self._detectors(client, pace_key):
            self._poll_detector(client, pace_key, detector_id, result, progress)
        log_fields(log, logging.INFO, "guardduty findings polled", account=account.account_id,
                   region=region, stored=result.stored, duplicates=result.duplicates)
        return result

    def _detectors(self, client: Any, pace_key: tuple[str, str]) -> list[str]:
        detectors: list[str] = []
        request: dict[str, Any] = {}
        while True:
            page = self.pacer.call(pace_key, lambda: client.list_detectors(**request))
            detectors.extend(page.get("DetectorIds", []))
            if not page.get("NextToken"):
                return detectors
            request["NextToken"] = page["NextToken"]

    def _poll_detector(self, client: Any, pace_key: tuple[str, str], detector_id: str,
                       result: PollResult, progress: Progress | None) -> None:
        key = checkpoint_key("guardduty", pace_key[0], pace_key[1].split("/")[0], detector_id)
        saved = self.checkpoints.get_valid(key, checkpoint_problem)
        since = (saved["updated_since"] - REREAD_MS if saved
                 else self.clock_ms() - self.settings.backfill_ms)
        newest = since
        request: dict[str, Any] = {
            "DetectorId": detector_id, "MaxResults": PAGE_SIZE,
            "FindingCriteria": {"Criterion": {"updatedAt": {"GreaterThanOrEqual": since}}},
            "SortCriteria": {"AttributeName": "updatedAt", "OrderBy": "ASC"},
        }
        while True:
            page = self.pacer.call(pace_key, lambda: client.list_findings(**request))
            findings = self._findings(client, pace_key, detector_id, page.get("FindingIds", []))
            received = self.clock_ms()
            events = [finding_event(finding, received) for finding in findings]
            # Only real updatedAt times move the checkpoint and the lag: a finding without
            # one is stored at its arrival, which must not skip findings updated before.
            page_newest = newest_time_ms(finding.get("UpdatedAt") for finding in findings)
            result.add_page(self.store.write(events), page_newest)
            newest = max(newest, page_newest or newest)
            self.checkpoints.save(key, {"updated_since": newest})
            if progress:
                progress(result.stored, result.pages, result.pages + bool(page.get("NextToken")))
            if not page.get("NextToken"):
                return
            request["NextToken"] = page["NextToken"]

    def _findings(self, client: Any, pace_key: tuple[str, str], detector_id: str,
                  finding_ids: list[str]) -> list[dict[str, Any]]:
        if not finding_ids:
            return []
        answer = self.pacer.call(pace_key, lambda: client.get_findings(
            DetectorId=detector_id, FindingIds=finding_ids))
        return list(answer.get("Findings", []))


def checkpoint_problem(state: Any) -> str | None:
    """What is wrong with a saved GuardDuty checkpoint, or None when it is usable."""
    if isinstance(state, dict) and is_epoch_ms(state.get("updated_since")):
        return None
    return 'not {"updated_since": <epoch milliseconds>}'


def finding_event(api_finding: dict[str, Any], received_ms: int) -> Event:
    """A GetFindings finding (PascalCase) as the `Log` event Firehose delivery makes."""
    # The envelope's `time` is the finding's updatedAt, so that is the event's timestamp.
    return log_event(wrap_finding(camel_case_keys(api_finding)), received_ms)
