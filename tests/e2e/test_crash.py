"""A 200 means on disk: SIGKILL the server mid-load, restart it, retry like Firehose.

Four client threads send 300 Firehose requests of 20 records each. The server is killed
with SIGKILL three times while they run (after 20%, 45% and 70% of the requests were
answered 200) and restarted on the same data directory and port. Clients retry every
request not answered 200 with the same requestId and body, as Firehose does. At the end
the store holds exactly the events that were sent: none lost, none twice.
"""

from __future__ import annotations

import base64
import gzip
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
from live_server import Server, start_server

from trailguard.store import DuckDBStore

pytestmark = pytest.mark.e2e

REQUESTS = 300
RECORDS = 20
THREADS = 4
KILL_AFTER_ACKS = (60, 135, 210)
MAX_ATTEMPTS = 600        # per request; bounds the test if the server never comes back
RETRY_PAUSE_S = 0.05
T0 = 1_700_000_000_000
QUIET = {"TRAILGUARD_LOG_LEVEL": "warning"}


def document(seq: int) -> dict:
    """Odd: a plain log with no identity (only the delivery key protects it from doubles).
    Even: a GuardDuty finding in its EventBridge envelope (content key too)."""
    if seq % 2:
        return {"message": f"seq-{seq:06d}", "timestamp": T0 + seq, "service": "crash"}
    return {"version": "0", "id": f"00000000-0000-0000-0000-{seq:012d}",
            "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
            "account": "111122223333", "time": "2023-11-14T22:13:20Z", "region": "us-east-1",
            "message": f"seq-{seq:06d}",
            "detail": {"id": f"finding-{seq}", "type": "Recon:EC2/PortProbeUnprotectedPort",
                       "severity": 2, "updatedAt": "2023-11-14T22:13:20Z",
                       "service": {"serviceName": "guardduty", "count": 1}}}


def request_body(number: int) -> tuple[str, bytes]:
    request_id = f"crash-{number:04d}"
    records = [{"data": base64.b64encode(orjson.dumps(document(number * RECORDS + n))).decode()}
               for n in range(RECORDS)]
    body = {"requestId": request_id, "timestamp": T0, "records": records}
    return request_id, gzip.compress(orjson.dumps(body))


@dataclass
class Load:
    """Progress shared by the client threads and the killer."""

    port: int
    key: str
    acked: int = 0
    retries: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, client: httpx.Client, number: int) -> None:
        request_id, body = request_body(number)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   "X-Amz-Firehose-Request-Id": request_id,
                   "X-Amz-Firehose-Access-Key": self.key}
        for _ in range(MAX_ATTEMPTS):
            try:
                response = client.post(f"http://127.0.0.1:{self.port}/firehose/v1",
                                       content=body, headers=headers)
            except httpx.TransportError:
                status = 0  # connection refused or cut by the kill
            else:
                status = response.status_code
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.acked += 1
                    return
                self.retries += 1
            time.sleep(RETRY_PAUSE_S)
        raise AssertionError(f"{request_id} not accepted after {MAX_ATTEMPTS} attempts")

    def client_thread(self, numbers: range, failures: list[BaseException]) -> None:
        try:
            with httpx.Client(timeout=60) as client:
                for number in numbers:
                    self.deliver(client, number)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)


def drain(server: Server) -> None:
    """Read the server's output so a full pipe never stalls it."""
    threading.Thread(target=server.process.stdout.read, daemon=True).start()


def kill_and_restart(load: Load, server: Server, data_dir: Path,
                     clients: list[threading.Thread]) -> tuple[Server, int]:
    kills = 0
    for threshold in KILL_AFTER_ACKS:
        while load.acked < threshold and any(client.is_alive() for client in clients):
            time.sleep(0.01)
        if not any(client.is_alive() for client in clients):
            break  # the clients finished or failed: nothing left to interrupt
        server.process.kill()  # SIGKILL: no shutdown hook, no checkpoint
        server.process.wait()
        kills += 1
        server = start_server(data_dir, port=load.port, extra_env=QUIET)
        drain(server)
    return server, kills


def test_sigkill_mid_load_loses_and_duplicates_nothing(tmp_path: Path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir, extra_env=QUIET)
    drain(server)
    load = Load(int(server.base_url.rsplit(":", 1)[1]), server.firehose_key)
    failures: list[BaseException] = []
    threads = [threading.Thread(target=load.client_thread,
                                args=(range(t, REQUESTS, THREADS), failures))
               for t in range(THREADS)]
    for thread in threads:
        thread.start()

    server, kills = kill_and_restart(load, server, data_dir, threads)
    for thread in threads:
        thread.join()
    server.stop()

    assert failures == []
    assert kills == 3
    assert load.acked == REQUESTS
    assert set(load.statuses) <= {0, 200, 503}, load.statuses
    store = DuckDBStore(data_dir, read_only=True)
    try:
        total, distinct = store.read(
            "SELECT count(*), count(DISTINCT a_message) FROM events", {}).rows[0]
        messages = {row[0] for row in store.read("SELECT a_message FROM events", {}).rows}
        deliveries = store.read("SELECT count(*) FROM delivery_requests", {}).rows[0][0]
    finally:
        store.close()
    assert (total, distinct) == (REQUESTS * RECORDS, REQUESTS * RECORDS)
    assert messages == {f"seq-{seq:06d}" for seq in range(REQUESTS * RECORDS)}
    assert deliveries == REQUESTS


def test_sigterm_commits_and_checkpoints_before_exiting(tmp_path: Path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    _, body = request_body(0)
    response = httpx.post(f"{server.base_url}/firehose/v1", content=body, headers={
        "Content-Encoding": "gzip", "X-Amz-Firehose-Request-Id": "crash-0000",
        "X-Amz-Firehose-Access-Key": server.firehose_key})
    assert response.status_code == 200

    output = server.stop()

    assert 'msg="server stopped"' in output
    # No .wal left, no spooled request and no decoded rows left to hand over;
    # alerts.sqlite is the alert service's (it runs in every serve).
    assert sorted(path.name for path in data_dir.iterdir()) == [
        "alerts.sqlite", "handoff", "spool", "trailguard.duckdb"]
    assert list((data_dir / "spool").iterdir()) == []
    assert list((data_dir / "handoff").iterdir()) == []
    store = DuckDBStore(data_dir, read_only=True)
    try:
        assert store.read("SELECT count(*) FROM events", {}).rows == [(RECORDS,)]
    finally:
        store.close()
