"""Write generated benchmark input: gzip'd CloudTrail files and Firehose request bodies.

    .venv/bin/python bench/ingest_data.py --out /tmp/tg-bench --cloudtrail 1000000 --findings 10000

Prints how fast the records were generated and written. Output files can be fed
to `trailguard import` (CloudTrail files, saved Firehose bodies) or POSTed to
/firehose/v1 to measure ingest.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import orjson

from trailguard.generate import cloudtrail_file, firehose_request, generate_findings
from trailguard.generate.cloudtrail import iter_cloudtrail_records

DAY_MS = 86_400_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--cloudtrail", type=int, default=100_000, help="CloudTrail records")
    parser.add_argument("--findings", type=int, default=1_000, help="GuardDuty events")
    parser.add_argument("--days", type=int, default=7, help="time span ending now")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-file", type=int, default=10_000,
                        help="records per CloudTrail file / events per Firehose body")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    end_ms = int(time.time() * 1000)
    start_ms = end_ms - args.days * DAY_MS

    began = time.perf_counter()
    records = iter_cloudtrail_records(args.seed, start_ms, end_ms, args.cloudtrail)
    for index in itertools.count():
        chunk = list(itertools.islice(records, args.per_file))
        if not chunk:
            break
        path = args.out / f"cloudtrail-{index:05d}.json.gz"
        path.write_bytes(cloudtrail_file(chunk, gzip_file=True))
    _report("CloudTrail records", args.cloudtrail, began)

    began = time.perf_counter()
    events = generate_findings(args.seed, start_ms, end_ms, args.findings)
    for index in range(0, len(events), args.per_file):
        body = firehose_request(events[index:index + args.per_file],
                                request_id=f"bench-{args.seed}-{index}")
        (args.out / f"firehose-{index // args.per_file:05d}.json").write_bytes(
            orjson.dumps(body))
    _report("GuardDuty events", args.findings, began)


def _report(what: str, count: int, began: float) -> None:
    elapsed = time.perf_counter() - began
    rate = count / elapsed if elapsed else float("inf")
    print(f"generated={what!r} count={count} seconds={elapsed:.2f} per_second={rate:,.0f}")


if __name__ == "__main__":
    main()
