"""One exception hierarchy for everything trailguard raises on purpose."""

from __future__ import annotations


class TrailguardError(Exception):
    """Base of every error trailguard raises with a message meant for a user."""


class ConfigError(TrailguardError):
    """The configuration (file, flags or environment) is invalid."""


class IngestError(TrailguardError):
    """A request or file could not be accepted; nothing from it was stored."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status

    def __reduce__(self) -> tuple[type[IngestError], tuple[str, int]]:
        # Keeps `status` when the error crosses from a decode worker process.
        return (type(self), (str(self), self.status))


class StoreError(TrailguardError):
    """The event store could not be opened or written."""


class StoreBusyError(StoreError):
    """The data directory is locked by another trailguard process."""


class QueryTooLargeError(StoreError):
    """A valid query needs more memory than the store may use (`store_memory_limit`):
    not worth retrying as it is (HTTP 422)."""


class StoreUnavailableError(StoreError):
    """The store cannot write anything now (disk full, I/O error): the fault of no single
    delivery, so nothing is set aside for it; the write is tried again later."""


class StoreOverloadedError(StoreError):
    """The write queue is full; the sender should retry later (HTTP 503)."""


class NrqlError(TrailguardError):
    """An NRQL query is invalid; the message names the position and the token."""

    def __init__(self, message: str, query: str = "", position: int | None = None) -> None:
        self.reason = message
        self.query = query
        self.position = position
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.position is None or not self.query:
            return self.reason
        line = self.query.count("\n", 0, self.position) + 1
        column = self.position - (self.query.rfind("\n", 0, self.position) + 1) + 1
        return f"{self.reason} at line {line}, column {column}"


class NrqlUnsupportedError(NrqlError):
    """Valid NRQL that trailguard does not implement yet."""

    def __init__(self, feature: str, query: str = "", position: int | None = None) -> None:
        self.feature = feature
        super().__init__(f"not supported: {feature}", query, position)


class SourceError(TrailguardError):
    """An AWS source (LookupEvents, S3 trail files, GuardDuty) could not be read."""


class AlertError(TrailguardError):
    """An alert condition, policy, destination or workflow is invalid, or a delivery failed."""


class AlertNotFoundError(AlertError):
    """No alert condition, policy, destination or incident has the id asked for."""


class AlertConflictError(AlertError):
    """The change contradicts the current state (read-only, in use, already closed)."""
