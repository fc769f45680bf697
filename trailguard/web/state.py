"""What the HTTP app shares between requests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from trailguard.config import Config
from trailguard.ingest.decode_pool import DecodePool
from trailguard.ingest.firehose import Limits
from trailguard.store.base import EventStore
from trailguard.store.retention import RetentionJob
from trailguard.store.writer import GroupCommitWriter
from trailguard.web.admission import QueueAdmission

if TYPE_CHECKING:
    from trailguard.alerts.service import AlertService
    from trailguard.sources.service import SourceService


@dataclass(slots=True)
class AppState:
    config: Config
    store: EventStore
    limits: Limits
    writer: GroupCommitWriter
    # Decoding is CPU-bound and holds a whole request's objects in memory; more decodes at
    # once than cores would only raise peak memory (the GIL serialises them anyway).
    decode_slots: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(max(2, os.cpu_count() or 2)))
    alerts: AlertService | None = None
    sources: SourceService | None = None  # the AWS pollers, when `sources` are configured
    decode_pool: DecodePool | None = None  # None: every request is decoded in-process
    retention: RetentionJob | None = None
    # How receivers submit to `writer`: waiting a little when its queue is full.
    admission: QueueAdmission = field(init=False)

    def __post_init__(self) -> None:
        self.admission = QueueAdmission(self.writer)
