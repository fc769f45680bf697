"""A decode job that dies halfway through sending its answer, as a worker SIGKILLed while
it hands back its rows does (for tests/ingest/test_decode_pool.py). It runs in a worker
of a ProcessPoolExecutor and reaches into CPython's worker loop for the result pipe."""

from __future__ import annotations

import os
import struct
import sys


def die_halfway_through_sending() -> None:
    # Called from concurrent.futures.process._process_worker, whose frame holds the queue.
    result_queue = sys._getframe(1).f_locals["result_queue"]
    # multiprocessing's framing: a 4-byte big-endian length, then that many bytes.
    os.write(result_queue._writer.fileno(), struct.pack("!i", 1_000_000) + b"x" * 1_000)
    os._exit(9)
