"""The alerts service inside `trailguard serve`: an evaluator thread and a delivery thread.

It always runs, so conditions can be added through the API to a server started without an
alerts file; with neither, it evaluates nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from trailguard.alerts.catalog import Catalog
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
        self.file_config = config
        self.incidents = IncidentStore(Path(data_dir) / ALERTS_FILE)
        self.catalog = Catalog(self.incidents)
        try:
            with self.incidents.transaction():
                self.catalog.sync_file(config, int(time.time() * 1000))
                # One object shared by evaluator, lifecycle and deliverer; `reload` updates it.
                self.config = self.catalog.merged(config)
        except BaseException:
            self.incidents.close()
            raise
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._changed = threading.Event()
        self.evaluator = Evaluator(store, self.config, self.incidents, wake=self._wake.set)
        self.deliverer = Deliverer(self.incidents, self.config)
        self._threads = [threading.Thread(target=self._evaluate_loop, name="alerts-evaluator",
                                          daemon=True),
                         threading.Thread(target=self._deliver_loop, name="alerts-delivery",
                                          daemon=True)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        log_fields(log, logging.INFO, "alerts started", conditions=len(self.config.enabled),
                   destinations=len(self.config.destinations), interval_s=self.config.interval_s)

    def reload(self) -> None:
        """Take in catalog changes; callers hold `incidents.transaction()`, which every
        evaluation also holds, so no condition is evaluated half-changed."""
        merged = self.catalog.merged(self.file_config)
        self.config.conditions = merged.conditions
        self.config.destinations = merged.destinations
        self.config.workflows = merged.workflows
        self._changed.set()  # a new condition starts now, not an interval from now
        log_fields(log, logging.INFO, "alerts configuration changed",
                   conditions=len(merged.enabled), destinations=len(merged.destinations))

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._changed.set()
        for thread in self._threads:
            if thread.ident is not None:  # started
                thread.join(timeout=30)
        self.incidents.close()

    def _evaluate_loop(self) -> None:
        while not self._stop.is_set():
            self._changed.clear()
            self._guarded(self.evaluator.tick)
            self._changed.wait(self.config.interval_s)

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
                 data_dir: Path) -> AlertService:
    """Start alerting beside the server: the alerts file's conditions (if any) and the
    ones made through the API."""
    config = load_alerts(alerts_file) if alerts_file is not None else AlertsConfig()
    service = AlertService(store, config, data_dir)
    service.start()
    return service
