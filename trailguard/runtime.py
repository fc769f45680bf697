"""How the long-running processes (the server, its decode workers) set up Python's
cyclic garbage collector.

Both allocate many short-lived objects (parsed documents, key tuples, rows) that
reference counting frees; the collector finds almost nothing among them, yet by default
runs every 700 allocations and now and then walks every object the process holds.
Measured on bench/ingest.py: a decode worker spent 36-45 ms in it per 100,000 events,
~6 ms after this; the server ~835 ms in a 24 s run of a million events, most of it in
full collections of ~43 ms each over the objects built at start.
"""

from __future__ import annotations

import gc

# Allocations (less frees) between two young-generation collections; Python's is 700.
GEN0_THRESHOLD = 10_000


def settle_collector() -> None:
    """Freeze what the process has built so far (it lives as long as the process, and the
    collector stops walking it) and collect the young generation less often."""
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, *gc.get_threshold()[1:])
