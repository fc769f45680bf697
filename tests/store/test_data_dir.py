"""The data directory and everything in it are private to the user running trailguard."""

from __future__ import annotations

import stat
from pathlib import Path

from trailguard.config import Config, ensure_keys
from trailguard.events import LOG, Event
from trailguard.store import DuckDBStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_dir_and_its_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ensure_keys(Config(data_dir=data_dir))
    store = DuckDBStore(data_dir)
    store.write([Event(LOG, 1_700_000_000_000, {"message": "m"}, None)])
    store.close()

    assert mode(data_dir) == 0o700
    created = sorted(path.name for path in data_dir.iterdir())
    assert "trailguard.duckdb" in created and "keys.json" in created
    assert {path.name: mode(path) for path in data_dir.iterdir()} == dict.fromkeys(created, 0o600)


def test_an_existing_open_data_dir_is_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)

    DuckDBStore(data_dir).close()

    assert mode(data_dir) == 0o700
