"""Deliver queued notifications with retries and backoff; log every attempt.

The outbox row is written in the same transaction that changes the incident, so a
notification survives a restart. A row is marked sent right after the receiver
accepts it; it is sent again only if the process dies between those two steps, and
then with the same notification id, so the receiver can tell it is a replay.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable

from trailguard.alerts.destinations import DeliveryError, send
from trailguard.alerts.incidents import IncidentStore, OutboxItem
from trailguard.alerts.model import AlertsConfig, Retry
from trailguard.logs import log_fields

log = logging.getLogger("trailguard.alerts.delivery")


def backoff_ms(retry: Retry, attempts: int) -> int:
    """Wait before attempt number `attempts + 1`: base * 2^(attempts-1), capped."""
    return int(min(retry.max_s, retry.base_s * 2 ** max(0, attempts - 1)) * 1000)


class Deliverer:
    """Works through the outbox: sends what is due, reschedules failures."""

    def __init__(self, incidents: IncidentStore, config: AlertsConfig,
                 clock: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.incidents = incidents
        self.config = config
        self.clock = clock

    def deliver_due(self) -> int:
        """Try every due notification once; returns how many were sent."""
        sent = 0
        for item in self.incidents.due(self.clock()):
            sent += self._attempt(item)
        return sent

    def _attempt(self, item: OutboxItem) -> int:
        attempt = item.attempts + 1
        destination = self.config.destinations.get(item.destination)
        fields = {"notification": item.notification_id, "incident": item.incident_id,
                  "event": item.event,
                  "destination": item.destination, "attempt": attempt}
        try:
            if destination is None:
                raise DeliveryError("destination is no longer configured", retryable=False)
            fields["type"] = destination.type
            outcome = send(destination, self.incidents.get(item.incident_id), item.event,
                           item.notification_id)
        except DeliveryError as exc:
            self._failed(item, attempt, exc, fields)
            return 0
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
            self._failed(item, attempt, unexpected(exc), fields)
            return 0
        self.incidents.mark_attempt(item.id, status="sent", now_ms=self.clock())
        log_fields(log, logging.INFO, "notification sent", outcome=outcome, **fields)
        return 1

    def _failed(self, item: OutboxItem, attempt: int, exc: DeliveryError,
                fields: dict[str, object]) -> None:
        now = self.clock()
        if exc.retryable and attempt < self.config.retry.max_attempts:
            retry_at = now + backoff_ms(self.config.retry, attempt)
            self.incidents.mark_attempt(item.id, status="pending", now_ms=now,
                                        next_attempt_ms=retry_at, error=str(exc))
            log_fields(log, logging.WARNING, "notification failed, will retry",
                       error=str(exc), retry_in_ms=retry_at - now, **fields)
            return
        self.incidents.mark_attempt(item.id, status="failed", now_ms=now, error=str(exc))
        log_fields(log, logging.ERROR, "notification failed, giving up", error=str(exc),
                   **fields)


def unexpected(exc: Exception) -> DeliveryError:
    """A retryable `DeliveryError` for a bug or a bad setting found while sending.

    Only the exception's type and where it was raised are kept: its text can hold a URL
    (a Slack webhook URL is a secret) or a header value.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" in {frames[-1].name} ({frames[-1].filename.rsplit('/', 1)[-1]}:" \
            f"{frames[-1].lineno})" if frames else ""
    return DeliveryError(f"unexpected {type(exc).__name__}{where}")
