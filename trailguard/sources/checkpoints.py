"""Where each source stopped, kept in one JSON file in the data directory.

A checkpoint is saved only after the events it covers are committed to the store,
so a crash between the two re-reads a little (harmless: the store de-duplicates)
and never skips anything. Writes go to a temporary file renamed into place.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import orjson

from trailguard.errors import SourceError

CHECKPOINTS_FILE = "source-checkpoints.json"


class Checkpoints:
    """A small persistent mapping of source key -> JSON-able state."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / CHECKPOINTS_FILE
        self._lock = threading.Lock()
        self._states: dict[str, Any] = self._load()

    def get(self, key: str) -> Any:
        """The state saved under `key`, or None."""
        with self._lock:
            return self._states.get(key)

    def save(self, key: str, state: Any) -> None:
        """Record `state` for `key` durably (call only after its events are stored)."""
        with self._lock:
            self._states[key] = state
            self._write()

    def keys(self) -> list[str]:
        """Every key with a saved state, sorted."""
        with self._lock:
            return sorted(self._states)

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            loaded = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise SourceError(f"cannot read source checkpoints {self.path}: {exc}; fix or "
                              "delete the file (deleting re-reads the backfill period)") from exc
        if not isinstance(loaded, dict):
            raise SourceError(f"{self.path} must hold a JSON object; delete it to start over")
        return loaded

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        payload = orjson.dumps(self._states, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


def checkpoint_key(*parts: str) -> str:
    """A readable key such as `lookup-events|111122223333|us-east-1`."""
    return "|".join(parts)
