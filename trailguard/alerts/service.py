"""The alerts service inside `trailguard serve`: an evaluator thread and a delivery thread."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from trailguard.alerts.delivery import Deliverer
from trailguard.alerts.evaluator import Evaluator
from trailguard.alerts.incidents import ALERTS_FILE, IncidentStore
from trailguard.alerts.loader import load_alerts
from trailguard.alerts.model import AlertsConfig
from trailguard.logs import log_fields
from trailguard.store.base import EventStore

log = logging.getLogger("trailguard.alerts")


class AlertService:
    """Evaluates conditions every `interval_s` and delivers notifications as they queue."""

    def __init__(self, store: EventStore, config: AlertsConfig, data_dir: Path) -> None:
        self.config = config
        self.incidents = IncidentStore(Path(data_dir) / ALERTS_FILE)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.evaluator = Evaluator(store, config, self.incidents, wake=self._wake.set)
        self.deliverer = Deliverer(self.incidents, config)
        self._threads = [threading.Thread(target=self._evaluate_loop, name="alerts-evaluator",
                                          daemon=True),
                         threading.Thread(target=self._deliver_loop, name="alerts-delivery",
                                          daemon=True)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        log_fields(log, logging.INFO, "alerts started", conditions=len(self.config.enabled),
                   destinations=len(self.config.destinations), interval_s=self.config.interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.incidents.close()

    def _evaluate_loop(self) -> None:
        while not self._stop.is_set():
            self._guarded(self.evaluator.tick)
            self._stop.wait(self.config.interval_s)

    def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._guarded(self.deliverer.deliver_due)
            self._wake.wait(min(self.config.interval_s, 1.0))

    def _guarded(self, step: object) -> None:
        try:
            step()  # type: ignore[operator]
        except Exception:
            log.exception("alerts step failed")


def start_alerts(store: EventStore, alerts_file: Path | None,
                 data_dir: Path) -> AlertService | None:
    """Start alerting from `alerts_file` beside the server, or None when there is none."""
    if alerts_file is None:
        return None
    service = AlertService(store, load_alerts(alerts_file), data_dir)
    service.start()
    return service
