"""A full ingest queue answers 503 with Firehose's error body; nothing is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ingest_hostile import FIREHOSE_KEY, envelope, firehose_headers
from starlette.testclient import TestClient

from trailguard.config import Config
from trailguard.store import Delivery, DuckDBStore, WriteResult
from trailguard.web.app import create_app


class GatedStore:
    """The real store; the first write waits until the test opens the gate."""

    def __init__(self, store: DuckDBStore) -> None:
        self.store = store
        self.entered = threading.Event()
        self.gate = threading.Event()

    def write_deliveries(self, deliveries: list[Delivery]) -> list[WriteResult]:
        self.entered.set()
        self.gate.wait()
        return self.store.write_deliveries(deliveries)

    def __getattr__(self, name: str):
        return getattr(self.store, name)


def test_full_queue_gets_503_then_the_retry_is_stored(tmp_path: Path):
    store, gated, client, state, answers, _deliver, threads = blocked_server(tmp_path)
    state.admission.wait_s = 0  # refused at once rather than after waiting for room

    refused = client.post("/firehose/v1", content=envelope(b"{}", request_id="third"),
                          headers=firehose_headers("third"))

    assert refused.status_code == 503
    assert refused.json()["requestId"] == "third"
    assert refused.json()["errorMessage"] == (
        "ingest queue is full (2 events waiting, bound 1); retry later")  # first and second
    gated.gate.set()
    for thread in threads:
        thread.join()
    assert answers == {"first": 200, "second": 200}
    state.writer.flush()  # the store catches up: "second" leaves the spool's batch
    retried = client.post("/firehose/v1", content=envelope(b"{}", request_id="third"),
                          headers=firehose_headers("third"))
    assert retried.status_code == 200
    assert store.read("SELECT count(*) FROM events", {}).rows == [(3,)]
    state.writer.close()
    store.close()


def blocked_server(tmp_path: Path):
    """A client whose store holds its first write until `gate` opens, with "first"
    inside that write and "second" waiting behind it: the queue (bound 1 event) is full."""
    store = DuckDBStore(tmp_path)
    gated = GatedStore(store)
    config = Config(data_dir=tmp_path, firehose_access_key=FIREHOSE_KEY, api_key="a" * 16,
                    ingest_queue_events=1)
    client = TestClient(create_app(config, gated))
    answers: dict[str, int] = {}

    def deliver(request_id: str, body: bytes = b"{}") -> threading.Thread:
        def post() -> None:
            answers[request_id] = client.post(
                "/firehose/v1", content=envelope(body, request_id=request_id),
                headers=firehose_headers(request_id)).status_code
        thread = threading.Thread(target=post)
        thread.start()
        return thread

    threads = [deliver("first")]
    gated.entered.wait()
    threads.append(deliver("second"))
    state = client.app.state.trailguard
    # "second" acknowledged (spooled and batched), so the queue cannot look empty to a
    # third sender while the writer's intake holds "second" in hand.
    wait_until(lambda: answers.get("second") == 200 and state.writer._queued_events == 2)
    return store, gated, client, state, answers, deliver, threads


def wait_until(condition) -> None:
    for _ in range(10_000):
        if condition():
            return
        time.sleep(0.001)
    raise AssertionError("the server never got there")


def test_a_request_that_finds_the_queue_full_waits_for_room(tmp_path: Path):
    store, gated, _client, state, answers, deliver, threads = blocked_server(tmp_path)

    threads.append(deliver("third"))
    wait_until(lambda: state.admission._waiting == 1)  # decoded, waiting for room
    gated.gate.set()  # the commit ends well within the wait
    for thread in threads:
        thread.join()

    assert answers == {"first": 200, "second": 200, "third": 200}
    state.writer.flush()
    assert store.read("SELECT count(*) FROM events", {}).rows == [(3,)]
    state.writer.close()
    store.close()


def test_with_waiters_at_the_bound_a_request_is_refused_before_decoding(tmp_path: Path):
    store, gated, client, state, answers, deliver, threads = blocked_server(tmp_path)
    state.admission.max_waiters = 1
    threads.append(deliver("third"))
    wait_until(lambda: state.admission._waiting == 1)

    # Not even base64: decoded, it would be a 400. Refused first, it is a 503.
    refused = client.post("/firehose/v1", content=b'{"not": "decoded"}',
                          headers=firehose_headers("fourth"))

    assert refused.status_code == 503
    assert refused.json()["errorMessage"] == (
        "ingest queue is full and 1 requests wait for room; retry later")
    gated.gate.set()
    for thread in threads:
        thread.join()
    assert answers == {"first": 200, "second": 200, "third": 200}
    state.writer.close()
    store.close()
