"""`trailguard import`: files from disk into the store, with progress."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from trailguard.errors import IngestError
from trailguard.ingest.files import discover, read_file
from trailguard.logs import log_fields
from trailguard.store.base import EventStore

log = logging.getLogger("trailguard.import")


@dataclass(slots=True)
class ImportSummary:
    files: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [(f"Imported {self.stored} events from {self.files} files "
                  f"({self.duplicates} already stored, {len(self.skipped)} files skipped, "
                  f"{len(self.failed)} failed).")]
        lines += [f"  skipped {item}" for item in self.skipped]
        lines += [f"  failed  {item}" for item in self.failed]
        return "\n".join(lines)


def import_paths(store: EventStore, paths: list[Path], show_progress: bool = True) -> ImportSummary:
    """Import every file under `paths`; one bad file is reported, not fatal."""
    files = discover(paths)
    summary = ImportSummary(files=len(files))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[events]} events"))
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        task = progress.add_task("importing", total=len(files), events=0)
        for path in files:
            _import_one(store, path, summary)
            progress.update(task, advance=1, events=summary.stored)
    return summary


def _import_one(store: EventStore, path: Path, summary: ImportSummary) -> None:
    try:
        parsed = read_file(path)
    except (IngestError, OSError) as exc:
        summary.failed.append(str(exc) if isinstance(exc, IngestError) else f"{path}: {exc}")
        log_fields(log, logging.WARNING, "file not imported", path=path, reason=str(exc))
        return
    if parsed.skipped:
        summary.skipped.append(f"{path} ({parsed.skipped})")
        return
    result = store.write(parsed.events)
    summary.stored += result.stored
    summary.duplicates += result.duplicates
