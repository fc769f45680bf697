"""Big requests go through the server's decode worker processes, durably and once.

Requests of generated CloudTrail records (well over the pool's body threshold) are sent
to a real server; it is SIGKILLed with some acknowledged, restarted, and every request is
sent again with the same requestId, as Firehose retries. The store must hold each record
exactly once, and no decode worker may outlive the killed server.
"""

from __future__ import annotations

import os
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


def test_a_stop_is_not_held_by_a_request_waiting_on_a_stuck_worker(tmp_path: Path) -> None:
    # A worker that never answers kept the request waiting for the decode timeout (120 s),
    # and the stop waited for the request: past systemd's 90 s. Now the stop cancels the
    # request after stop_grace_s (it was never acknowledged) and kills the worker.
    import threading

    settings = {**SETTINGS, "TRAILGUARD_INGEST_DECODE_WORKERS": "1",
                "TRAILGUARD_STOP_GRACE_S": "2"}
    server = start_server(tmp_path / "data", extra_env=settings)
    try:
        assert send_big(server, 0).status_code == 200  # acknowledged before the worker sticks
        # The decode worker, not multiprocessing's resource tracker beside it.
        workers = {pid for pid in children_of(server.process.pid)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}
        assert len(workers) == 1
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        waiting = threading.Thread(target=lambda: _send_quietly(server, 1), daemon=True)
        waiting.start()
        time.sleep(1)

        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=60)
        left = alive(workers)
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=30)
        for pid in alive(workers):
            os.kill(pid, signal.SIGKILL)

    assert left == set()

    again = start_server(tmp_path / "data", extra_env=SETTINGS)
    try:
        window = f"SINCE {BIG_REQUEST_START_MS} UNTIL {BIG_REQUEST_START_MS + 3_600_001}"
        assert again.count(f"SELECT count(*) FROM Log {window}") >= BIG_REQUEST_RECORDS
    finally:
        again.stop()


def _send_quietly(server: Server, number: int) -> None:
    try:
        send_big(server, number)
    except httpx.HTTPError:
        pass  # cancelled by the stop: never acknowledged
