"""Writing a decode worker's result into a spare hand-over file, against a new file.

    .venv/bin/python bench/handoff.py                 # 40 results of 500 records, 5 rounds
    .venv/bin/python bench/handoff.py --records 200   # smaller results

Decodes generated CloudTrail requests once, then writes their column buffers as a worker
does (`trailguard.ingest.handoff.write_rows_file`), reads them back as the server does
and lets go of them, so each file becomes a spare. The baseline is the same with no
room for spares (every file is deleted and the next one made anew), measured in the same
run, rounds of the two alternating. Prints the CPU time of the write per result and the
ratio. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from trailguard.generate import generate_cloudtrail
from trailguard.ingest import handoff
from trailguard.ingest.decode_rows import decode_firehose_rows
from trailguard.ingest.firehose import Limits
from trailguard.store.rows import NATIVE_ROWS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from firehose_client import firehose_body  # found through the path above

START_MS = 1_764_000_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=40)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not NATIVE_ROWS:
        raise SystemExit("the C row writer is not built: results are not handed over in files")

    results = [_decoded(number, args.records) for number in range(args.results)]
    size = sum(len(buffer) for _, columns in results[0] for column in columns
               for buffer in column[1:] if buffer is not None)
    print(f"{args.results} results of {args.records} records, ~{size / 2**20:.1f} MiB each")

    budget = handoff.SPARE_BUDGET_BYTES
    timings: dict[str, list[float]] = {"new files": [], "spares": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for mode, spare_bytes in (("new files", 0), ("spares", budget)):
                handoff.SPARE_BUDGET_BYTES = spare_bytes
                timings[mode].append(_write_all(folder, results))
    for mode, values in timings.items():
        print(f"{mode:9s}: {statistics.median(values) * 1e3:.3f} ms per result "
              f"(median of {len(values)} rounds)")
    ratio = statistics.median(timings["new files"]) / statistics.median(timings["spares"])
    print(f"ratio    : writing into a spare is {ratio:.1f}x as fast as into a new file")


def _decoded(number: int, records: int) -> list:
    generated = generate_cloudtrail(number, START_MS, START_MS + 3_600_000, records)
    body = firehose_body([json.dumps(record).encode() for record in generated],
                         f"bench-{number}", START_MS)
    return decode_firehose_rows(json.dumps(body).encode(), {}, Limits())[2]


def _write_all(folder: str, results: list) -> float:
    """CPU seconds per result for writing every result; each is then read and let go."""
    spent = 0.0
    for chunks in results:
        started = time.process_time()
        rows_file = handoff.write_rows_file(folder, chunks)
        spent += time.process_time() - started
        handoff.read_rows_file(rows_file)  # dropped at once: a spare, or deleted
        gc.collect()
    return spent / len(results)


if __name__ == "__main__":
    main()
