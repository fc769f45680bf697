"""Firehose ingest throughput against a real server, next to DuckDB's own bulk load.

    .venv/bin/python bench/ingest.py                    # 100k events, about a minute
    .venv/bin/python bench/ingest.py --events 10000000  # the 10M run

Sends gzip'd 500-record Firehose requests of generated CloudTrail records and GuardDuty
findings (trailguard.generate) from several client threads to `trailguard serve` on
127.0.0.1, then loads the same events as NDJSON with DuckDB's read_json_objects into the
same table layout. Prints events/s of both and their ratio, the server's peak RSS, and
bytes on disk per event next to the gzip'd raw JSON. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import multiprocessing
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import orjson

from trailguard.generate import generate_cloudtrail, generate_findings
from trailguard.store.schema import ATTRS_COLUMN, HOT_COLUMNS, TABLE, create_statements

KEY = "bench-firehose-key-0123456789"
DAY_MS = 86_400_000
POOL = 20_000          # distinct generated events; copies get fresh ids
SEQ = b"@@SEQ@@@@@@@"  # 12 bytes, replaced by a 12-digit copy number
TIME = b"@@TIME@@"      # replaced by the copy's event time
SPAN_MS = 3_600_000     # the templates cover one hour; each copy the next


def main() -> None:
    args = _arguments()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="tg-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = _templates(min(POOL, args.events), args.findings_share, args.events)
    print(f"workdir {workdir}; {args.events} events in requests of {args.batch} records, "
          f"{args.threads} client threads, {len(corpus.templates)} distinct templates, "
          f"{corpus.copies} hours of events", flush=True)

    ndjson_gz = workdir / "events.ndjson.gz"
    inputs = _reusable_inputs(workdir, args)
    if inputs:
        raw_bytes, gz_bytes = inputs["raw_bytes"], inputs["gz_bytes"]
        print("reusing the events and request bodies an earlier run left in the workdir")
    else:
        raw_bytes, gz_bytes = _write_ndjson(ndjson_gz, corpus, args.events)
    for leftover in (workdir / "data", workdir / "bulk.duckdb"):
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() \
            else leftover.unlink(missing_ok=True)
    server = _Server(workdir / "data", args.memory_limit)
    try:
        sent, elapsed, bodies = _send_all(server, corpus, args, workdir / "bodies",
                                          reuse=bool(inputs))
        _save_inputs(workdir, args, raw_bytes, gz_bytes)
        peak_rss = server.peak_rss_kib()
    finally:
        server.stop()
    stored, disk_bytes = _stored(workdir / "data")

    bulk_elapsed, bulk_disk = _bulk_load(workdir / "bulk.duckdb", ndjson_gz)
    if not args.workdir:  # a 10M run leaves ~12 GB behind
        shutil.rmtree(workdir)
    _report(args.events, sent, stored, elapsed, bulk_elapsed, peak_rss,
            disk_bytes, bulk_disk, raw_bytes, gz_bytes, bodies)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to send")
    parser.add_argument("--batch", type=int, default=500, help="records per request")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--findings-share", type=float, default=0.2,
                        help="share of GuardDuty findings (the rest is CloudTrail)")
    parser.add_argument("--memory-limit", default="",
                        help="the server's store_memory_limit (default: the server's own)")
    parser.add_argument("--workdir", help="keep files here (default: a new temp folder)")
    return parser.parse_args()


@dataclass(frozen=True)
class _Corpus:
    """Serialised events whose identity fields hold SEQ and whose time holds TIME.

    Copy c of the templates gets ids numbered c and is moved c spans later, so the
    stream runs forward in time like a live account's (about POOL events per span),
    instead of replaying the same hour: copies of one event are otherwise never near
    each other in time, which real deliveries are.
    """

    templates: list[bytes]
    times_s: list[int]  # each template's own time, epoch seconds
    copies: int


def _templates(count: int, findings_share: float, total: int) -> _Corpus:
    end = int(time.time() * 1000)
    findings = generate_findings(7, end - SPAN_MS, end, int(count * findings_share))
    trail = generate_cloudtrail(7, end - SPAN_MS, end, count - len(findings))
    templates, times = [], []
    for finding in findings:
        finding["id"] = finding["id"][:-12] + SEQ.decode()
        finding["detail"]["id"] = finding["detail"]["id"][:-12] + SEQ.decode()
        times.append(finding["time"])
        finding["time"] = TIME.decode()
        templates.append(orjson.dumps(finding))
    for record in trail:
        record["eventID"] = record["eventID"][:-12] + SEQ.decode()
        times.append(record["eventTime"])
        record["eventTime"] = TIME.decode()
        templates.append(orjson.dumps(record))
    seconds = [int(datetime.fromisoformat(moment).timestamp())
               for moment in times]
    return _Corpus(templates, seconds, -(-total // len(templates)))


def _events(corpus: _Corpus, start: int, count: int) -> Iterator[bytes]:
    templates = corpus.templates
    for number in range(start, start + count):
        copy, index = divmod(number, len(templates))
        moved = corpus.times_s[index] - (corpus.copies - 1 - copy) * SPAN_MS // 1000
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moved)).encode()
        yield templates[index].replace(SEQ, b"%012d" % copy).replace(TIME, stamp)


def _inputs_key(args: argparse.Namespace) -> dict:
    return {"events": args.events, "batch": args.batch, "findings_share": args.findings_share,
            "layout": "time-ordered copies"}


def _reusable_inputs(workdir: Path, args: argparse.Namespace) -> dict | None:
    """What an earlier run with the same --events/--batch left in --workdir, if anything."""
    meta = workdir / "inputs.json"
    if not meta.exists():
        return None
    saved = orjson.loads(meta.read_bytes())
    return saved if saved.get("key") == _inputs_key(args) else None


def _save_inputs(workdir: Path, args: argparse.Namespace, raw: int, gz: int) -> None:
    (workdir / "inputs.json").write_bytes(orjson.dumps(
        {"key": _inputs_key(args), "raw_bytes": raw, "gz_bytes": gz}))


def _write_ndjson(path: Path, corpus: _Corpus, total: int) -> tuple[int, int]:
    raw = 0
    with gzip.open(path, "wb", compresslevel=6) as out:
        for start in range(0, total, 10_000):
            chunk = b"\n".join(_events(corpus, start, min(10_000, total - start))) + b"\n"
            raw += len(chunk)
            out.write(chunk)
    return raw, path.stat().st_size


def _request(corpus: _Corpus, number: int, batch: int, total: int) -> bytes:
    start = number * batch
    records = [{"data": base64.b64encode(data).decode()}
               for data in _events(corpus, start, min(batch, total - start))]
    body = {"requestId": f"bench-{number:08d}", "timestamp": int(time.time() * 1000),
            "records": records}
    return gzip.compress(orjson.dumps(body), compresslevel=6)


_pool_job: tuple[_Corpus, int, int] | None = None


def _keep_corpus(corpus: _Corpus, batch: int, total: int) -> None:
    global _pool_job
    _pool_job = (corpus, batch, total)


def _numbered_request(number: int) -> bytes:
    corpus, batch, total = _pool_job
    return _request(corpus, number, batch, total)


def _send_all(server: _Server, corpus: _Corpus, args: argparse.Namespace,
              spool: Path, reuse: bool) -> tuple[int, float, int]:
    """POST every request (retrying 503s like Firehose); events acknowledged and seconds.

    Bodies are built before the clock starts (into `spool` when there are many), so the
    client threads on this same machine only send. Every minute a progress line shows
    the events acknowledged so far and the server's RSS.
    """
    requests = -(-args.events // args.batch)
    in_memory = requests <= 2_000  # up to ~1M events
    if not in_memory and not reuse:
        spool.mkdir(parents=True, exist_ok=True)
        print(f"building {requests} request bodies in {spool} before the clock starts",
              flush=True)
    bodies: queue.Queue[tuple[int, bytes | Path]] = queue.Queue()
    body_bytes = 0
    built: Iterator[bytes] = iter(())
    if in_memory or not reuse:
        # Building (gzip) is the slow part of a 10M run: one process per core.
        with multiprocessing.get_context("fork").Pool(
                initializer=_keep_corpus, initargs=(corpus, args.batch, args.events)) as pool:
            built = iter(pool.imap(_numbered_request, range(requests), chunksize=16))
            for number in range(requests):
                body = next(built)
                body_bytes += len(body)
                path = spool / f"{number:08d}.json.gz"
                if not in_memory:
                    path.write_bytes(body)
                bodies.put((number, body if in_memory else path))
    else:
        for number in range(requests):
            path = spool / f"{number:08d}.json.gz"
            body_bytes += path.stat().st_size
            bodies.put((number, path))

    acked = [0] * args.threads
    busy = [0] * args.threads  # 503 answers (the server's queue was full)
    threads = [threading.Thread(target=_client, args=(server.port, args, bodies, acked, busy, i))
               for i in range(args.threads)]
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        next(thread for thread in threads if thread.is_alive()).join(timeout=60)
        if any(thread.is_alive() for thread in threads):
            server_kib, workers_kib = server.peak_rss_kib()
            seconds = time.perf_counter() - started
            print(f"  {sum(acked):>10,} events acknowledged after {seconds:5.0f} s "
                  f"({sum(acked) / seconds:,.0f}/s); peak RSS server {server_kib // 1024} MiB, "
                  f"workers {workers_kib // 1024} MiB", flush=True)
    elapsed = time.perf_counter() - started
    server_cpu, workers_cpu, client_cpu = (after - before for after, before
                                           in zip(server.cpu_seconds(), cpu_before, strict=True))
    print(f"CPU busy per wall second during the run: server {server_cpu / elapsed:.2f}, "
          f"decode workers {workers_cpu / elapsed:.2f}, load client {client_cpu / elapsed:.2f} "
          f"(of {os.cpu_count()} cores); {sum(busy)} requests answered 503 (queue full) "
          "and retried after 0.2 s", flush=True)
    return sum(acked), elapsed, body_bytes


def _client(port: int, args: argparse.Namespace, bodies: queue.Queue, acked: list[int],
            busy: list[int], index: int) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
               "X-Amz-Firehose-Access-Key": KEY}
    with httpx.Client(timeout=180) as client:
        while True:
            try:
                number, body = bodies.get_nowait()
            except queue.Empty:
                return
            if isinstance(body, Path):
                body = body.read_bytes()
            headers["X-Amz-Firehose-Request-Id"] = f"bench-{number:08d}"
            while True:
                response = client.post(f"http://127.0.0.1:{port}/firehose/v1",
                                       content=body, headers=headers)
                if response.status_code == 200:
                    break
                if response.status_code != 503:
                    raise SystemExit(f"request {number}: {response.status_code} {response.text}")
                busy[index] += 1
                time.sleep(0.2)
            acked[index] += min(args.batch, args.events - number * args.batch)


class _Server:
    """`python -m trailguard serve` on 127.0.0.1 and a free port."""

    def __init__(self, data_dir: Path, memory_limit: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {**os.environ, "TRAILGUARD_FIREHOSE_ACCESS_KEY": KEY,
               "TRAILGUARD_API_KEY": "bench-api-key-0123456789",
               "TRAILGUARD_LOG_LEVEL": "warning"}
        if memory_limit:
            env["TRAILGUARD_STORE_MEMORY_LIMIT"] = memory_limit
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trailguard", "serve", "--data-dir", str(data_dir),
             "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(300):
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited: {self.process.stderr.read().decode()}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1)
                threading.Thread(target=self.process.stderr.read, daemon=True).start()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.process.kill()
        raise SystemExit("the server did not answer /health within 30 s")

    def peak_rss_kib(self) -> tuple[int, int]:
        """Peak RSS of the server process, and the sum of its decode workers' peaks."""
        workers = sum(_peak_rss_kib(pid) for pid in _children(self.process.pid))
        return _peak_rss_kib(self.process.pid), workers

    def cpu_seconds(self) -> tuple[float, float, float]:
        """CPU seconds used so far by the server, its decode workers, and this process."""
        workers = sum(_cpu_seconds(pid) for pid in _children(self.process.pid))
        own = os.times()
        return _cpu_seconds(self.process.pid), workers, own.user + own.system

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=120)


def _peak_rss_kib(pid: int) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("VmHWM:")), 0)


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime: fields 14 and 15 of /proc/<pid>/stat, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _stored(data_dir: Path) -> tuple[int, int]:
    """Events in the server's store and the bytes its files take (after checkpoint)."""
    files = [data_dir / "trailguard.duckdb", data_dir / "trailguard.duckdb.wal"]
    disk = sum(path.stat().st_size for path in files if path.exists())
    connection = duckdb.connect(str(files[0]), read_only=True)
    try:
        used, free, block = connection.execute(
            "SELECT used_blocks, free_blocks, block_size FROM pragma_database_size()").fetchone()
        print(f"store file        : {disk / 2**20:,.0f} MiB with the WAL; "
              f"{used * block / 2**20:,.0f} MiB in used blocks, {free * block / 2**20:,.0f} "
              "MiB in free blocks (reused by later writes)")
        return connection.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0], disk
    finally:
        connection.close()


def _bulk_load(path: Path, ndjson_gz: Path) -> tuple[float, int]:
    """DuckDB alone: NDJSON -> the events table (hot columns extracted, the rest as JSON).

    It neither flattens arrays nor de-duplicates, so it is an upper bound for ingest.
    """
    connection = duckdb.connect(str(path))
    for statement in create_statements():
        connection.execute(statement)
    paths = [_json_path(column.attribute) for column in HOT_COLUMNS]
    hot = [_hot_expression(column.attribute, column.sql_type, number)
           for number, column in enumerate(HOT_COLUMNS, start=1)]
    columns = ", ".join(['"event_type"', '"timestamp"']
                        + [f'"{column.column}"' for column in HOT_COLUMNS] + [ATTRS_COLUMN])
    started = time.perf_counter()
    # One json_extract_string over a list of paths parses each document once.
    connection.execute(
        f"INSERT INTO {TABLE} ({columns}) SELECT 'Log', coalesce(epoch_ms(TRY_CAST("
        "coalesce(v[1], v[2]) AS TIMESTAMP)), 0), "
        f"{', '.join(hot)}, json FROM (SELECT json, json_extract_string(json, "
        "['$.eventTime', '$.time', '$.eventID', " + ", ".join(f"'{p}'" for p in paths)
        + "]) AS v FROM read_json_objects(?, format='newline_delimited'))",
        [str(ndjson_gz)])
    elapsed = time.perf_counter() - started
    connection.execute("CHECKPOINT")
    connection.close()
    return elapsed, path.stat().st_size


def _json_path(attribute: str) -> str:
    return "$." + ".".join(f'"{part}"' for part in attribute.split("."))


def _hot_expression(attribute: str, sql_type: str, number: int) -> str:
    if attribute == "message":
        return "json::VARCHAR"
    if attribute == "provider":
        return "CASE WHEN v[3] IS NOT NULL THEN 'CloudTrail' END"
    value = f"v[{number + 3}]"
    return f"TRY_CAST({value} AS DOUBLE)" if sql_type == "DOUBLE" else value


def _report(total: int, sent: int, stored: int, elapsed: float, bulk_elapsed: float,
            peak_rss_kib: tuple[int, int], disk: int, bulk_disk: int, raw: int, gz: int,
            bodies: int) -> None:
    rate, bulk_rate = sent / elapsed, total / bulk_elapsed
    print(f"trailguard ingest : {sent} events acknowledged in {elapsed:.1f} s = "
          f"{rate:,.0f} events/s; stored {stored} (expected {total})")
    print(f"duckdb bulk load  : {total} events in {bulk_elapsed:.1f} s = {bulk_rate:,.0f} events/s")
    print(f"ratio             : trailguard is {rate / bulk_rate:.2f}x DuckDB's bulk load")
    server_kib, workers_kib = peak_rss_kib
    print(f"server peak RSS   : {server_kib / 1024:.0f} MiB; decode workers "
          f"{workers_kib / 1024:.0f} MiB together; {(server_kib + workers_kib) / 1024:.0f} MiB "
          "in all")
    print(f"raw JSON          : {raw / total:,.0f} B/event; gzip'd {gz / total:,.0f} B/event")
    if bodies:
        print(f"gzip'd requests   : {bodies / total:,.0f} B/event (base64 records inside)")
    print(f"trailguard on disk: {disk / total:,.0f} B/event "
          f"({disk / gz:.2f}x the gzip'd JSON)")
    print(f"bulk-load on disk : {bulk_disk / total:,.0f} B/event")


if __name__ == "__main__":
    main()
