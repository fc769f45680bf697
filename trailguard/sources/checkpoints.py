"""Where each source stopped, kept in one JSON file in the data directory.

A checkpoint is saved only after the events it covers are committed to the store,
so a crash between the two re-reads a little (harmless: the store de-duplicates)
and never skips anything. Writes go to a temporary file renamed into place.

The file is hand-editable, so what it holds is checked before use: an unreadable file
or a malformed entry fails the sources that need it with a message naming the file
and key, never a traceback, and never an overwrite of what the others still need.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from trailguard.errors import SourceError

CHECKPOINTS_FILE = "source-checkpoints.json"
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
# What is wrong with a saved state, or None when it is usable.
ShapeCheck = Callable[[Any], str | None]


class Checkpoints:
    """A small persistent mapping of source key -> JSON-able state."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / CHECKPOINTS_FILE
        self._lock = threading.Lock()
        # A file that cannot be read fails each source that uses it (not the whole poll:
        # credentials and the status of every source still come out right).
        self._load_error: str | None = None
        self._states: dict[str, Any] = {}
        try:
            self._states = self._load()
        except SourceError as exc:
            self._load_error = str(exc)

    def get(self, key: str) -> Any:
        """The state saved under `key`, or None."""
        with self._lock:
            return self._loaded().get(key)

    def get_valid(self, key: str, problem: ShapeCheck) -> Any:
        """The state saved under `key` (or None) once `problem` finds nothing wrong in it."""
        state = self.get(key)
        found = None if state is None else problem(state)
        if found:
            raise SourceError(
                f"source checkpoint {key!r} in {self.path} is not valid: {found}. Delete "
                "that key from the file (or the whole file) to start this source over; "
                "what is read again is de-duplicated, nothing is stored twice")
        return state

    def save(self, key: str, state: Any) -> None:
        """Record `state` for `key` durably (call only after its events are stored)."""
        with self._lock:
            self._loaded()[key] = state
            self._write()

    def keys(self) -> list[str]:
        """Every key with a saved state, sorted."""
        with self._lock:
            return sorted(self._loaded())

    def _loaded(self) -> dict[str, Any]:
        if self._load_error:
            raise SourceError(self._load_error)
        return self._states

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            loaded = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise SourceError(f"cannot read source checkpoints {self.path}: {exc}; fix or "
                              "delete the file (deleting re-reads the backfill period, "
                              "which stores nothing twice)") from exc
        if not isinstance(loaded, dict):
            raise SourceError(f"source checkpoints {self.path} must hold a JSON object; "
                              "delete the file to start over (re-reading stores nothing twice)")
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


def is_epoch_ms(value: Any) -> bool:
    """True for a whole number of epoch milliseconds a datetime can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and (
        0 <= value <= MAX_EPOCH_MS)
