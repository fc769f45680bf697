"""What the HTTP app shares between requests."""

from __future__ import annotations

from dataclasses import dataclass

from trailguard.config import Config
from trailguard.ingest.firehose import Limits
from trailguard.store.base import EventStore
from trailguard.store.writer import GroupCommitWriter


@dataclass(slots=True)
class AppState:
    config: Config
    store: EventStore
    limits: Limits
    writer: GroupCommitWriter
