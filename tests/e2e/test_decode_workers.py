"""Big requests go through the server's decode worker processes, durably and once.

Requests of generated CloudTrail records (well over the pool's body threshold) are sent
to a real server; it is SIGKILLed with some acknowledged, restarted, and every request is
sent again with the same requestId, as Firehose retries. The store must hold each record
exactly once, and no decode worker may outlive the killed server.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from firehose_client import BIG_REQUEST_RECORDS, BIG_REQUEST_START_MS, big_cloudtrail_request
from live_server import Server, start_server

pytestmark = pytest.mark.e2e

SETTINGS = {"TRAILGUARD_LOG_LEVEL": "warning", "TRAILGUARD_INGEST_DECODE_WORKERS": "2"}
REQUESTS = 4


def children_of(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited while we looked
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def send_big(server: Server, number: int) -> httpx.Response:
    request_id, body = big_cloudtrail_request(number)
    return httpx.post(f"{server.base_url}/firehose/v1", content=body, timeout=120, headers={
        "Content-Encoding": "gzip", "Content-Type": "application/json",
        "X-Amz-Firehose-Request-Id": request_id,
        "X-Amz-Firehose-Access-Key": server.firehose_key})


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def test_big_requests_survive_sigkill_and_retries(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", extra_env=SETTINGS)
    try:
        for number in range(REQUESTS // 2):
            assert send_big(server, number).status_code == 200
        workers = children_of(server.process.pid)
        assert workers, "big requests should have been decoded in worker processes"
    finally:
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)

    for _ in range(100):  # workers read EOF from their parent's pipe and exit
        if not alive(workers):
            break
        time.sleep(0.1)
    assert not alive(workers), "decode workers outlived the killed server"
    # Rows a worker left for the killed server to take (see trailguard.ingest.handoff).
    handoff = tmp_path / "data" / "handoff"
    (handoff / "99999-0.rows").write_bytes(b"rows nobody took")

    server = start_server(tmp_path / "data", extra_env=SETTINGS)
    try:
        for number in range(REQUESTS):  # the first half again, as Firehose retries
            assert send_big(server, number).status_code == 200
        window = f"SINCE {BIG_REQUEST_START_MS} UNTIL {BIG_REQUEST_START_MS + 3_600_001}"
        expected = BIG_REQUEST_RECORDS * REQUESTS
        assert server.count(f"SELECT count(*) FROM Log {window}") == expected
        distinct = server.query(f"SELECT uniqueCount(eventID) AS ids FROM Log {window}")
        assert distinct["results"][0]["ids"] == expected
        # The leftover cleared, and every result taken: what is left are spares (files
        # whose rows were committed, kept for the workers to write over).
        assert [path.name for path in handoff.iterdir() if not path.name.endswith(".spare")
                ] == []
    finally:
        server.stop()
