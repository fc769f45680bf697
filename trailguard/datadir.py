"""The data directory holds security events and keys: private to the user running trailguard."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from trailguard.logs import log_fields

log = logging.getLogger("trailguard.datadir")

PRIVATE_DIR_MODE = 0o700


def prepare_data_dir(data_dir: Path) -> None:
    """Create `data_dir` readable by this user only, and keep new files private.

    The umask covers every file the process creates from now on (the DuckDB file and
    its WAL, alerts.sqlite, checkpoints), including the ones DuckDB creates itself. A
    directory left open to others by an older version or by hand is closed, and said so.
    """
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    status = data_dir.stat()
    mode = status.st_mode & 0o777
    if mode & 0o077 and status.st_uid == os.geteuid():
        data_dir.chmod(PRIVATE_DIR_MODE)
        log_fields(log, logging.WARNING, "data directory was readable by other users; "
                   "now private", data_dir=data_dir, old_mode=oct(mode))

