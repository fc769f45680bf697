"""Fixtures shared by every test folder: sample data and a real server process."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import Server, start_server

from trailguard.store import DuckDBStore

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
SAMPLES = SHARED / "samples"


@pytest.fixture(autouse=True)
def _fresh_trailguard_logger() -> Iterator[None]:
    """Undo what an in-process CLI run's `setup_logging` did to the "trailguard" logger.

    It sets a level, stops propagation and writes to the stderr of the moment (which
    pytest closes after that test), so later tests would lose INFO records from caplog
    and print "I/O operation on closed file".
    """
    yield
    logger = logging.getLogger("trailguard")
    logger.handlers[:] = []
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


@pytest.fixture(scope="session")
def samples() -> Path:
    """`../shared/samples`, or skip: those tests need the public sample data beside the repo."""
    if not SAMPLES.is_dir():
        pytest.skip(f"public sample data not found at {SAMPLES} (../shared is absent)")
    return SAMPLES


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    """An empty DuckDB store in a temporary data directory."""
    opened = DuckDBStore(tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server on an empty data directory."""
    running = start_server(tmp_path / "data")
    yield running
    running.stop()
