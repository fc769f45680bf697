"""Big Firehose requests decoded in worker processes: same rows, same errors, no loss."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal

import orjson
import pytest
from firehose_client import BIG_REQUEST_RECORDS, big_cloudtrail_request

from trailguard.errors import IngestError
from trailguard.ingest.decode_pool import POOL_MIN_BODY_BYTES, DecodePool, decode_in_process
from trailguard.ingest.firehose import Limits

GZIP = {"content-encoding": "gzip"}


def big_request(number: int = 1) -> bytes:
    data = big_cloudtrail_request(number)[1]
    assert len(data) >= POOL_MIN_BODY_BYTES  # otherwise the server would not use the pool
    return data


@pytest.fixture
def pool():
    decode_pool = DecodePool(2)
    yield decode_pool
    decode_pool.close()


def test_a_worker_gives_the_same_rows_as_in_process_decoding(pool: DecodePool) -> None:
    body = big_request()
    in_worker = asyncio.run(pool.decode_firehose(body, GZIP, Limits()))
    in_process = decode_in_process(body, GZIP, Limits())

    assert in_worker.request_id == in_process.request_id == "big-1"
    assert in_worker.delivery_key == in_process.delivery_key
    assert in_worker.table.num_rows == BIG_REQUEST_RECORDS
    assert in_worker.table.equals(in_process.table)


def test_a_refusal_in_a_worker_keeps_its_message_and_status(pool: DecodePool) -> None:
    body = orjson.loads(gzip.decompress(big_request()))
    body["records"][3] = {"data": 5}
    data = gzip.compress(orjson.dumps(body))

    with pytest.raises(IngestError, match=r"records\[3\] must be an object") as caught:
        asyncio.run(pool.decode_firehose(data, GZIP, Limits()))
    assert caught.value.status == 400

    with pytest.raises(IngestError, match="the decompressed size limit") as caught:
        asyncio.run(pool.decode_firehose(big_request(), GZIP, Limits(max_inflated_bytes=10_000)))
    assert caught.value.status == 413


def test_a_killed_worker_does_not_lose_the_request(pool: DecodePool) -> None:
    first = asyncio.run(pool.decode_firehose(big_request(1), GZIP, Limits()))
    assert first.table.num_rows == BIG_REQUEST_RECORDS
    for pid in list(pool._executor._processes):  # the pool's own worker processes
        os.kill(pid, signal.SIGKILL)

    after_kill = asyncio.run(pool.decode_firehose(big_request(2), GZIP, Limits()))
    assert (after_kill.request_id, after_kill.table.num_rows) == ("big-2", BIG_REQUEST_RECORDS)

    later = asyncio.run(pool.decode_firehose(big_request(3), GZIP, Limits()))
    assert (later.request_id, later.table.num_rows) == ("big-3", BIG_REQUEST_RECORDS)


def test_sigterm_to_the_process_group_leaves_the_workers_to_the_server(pool: DecodePool) -> None:
    # `systemctl stop` and `timeout` signal every process of the service; workers keep
    # going until the server, shutting down gracefully, closes the pool.
    asyncio.run(pool.decode_firehose(big_request(1), GZIP, Limits()))
    workers = list(pool._executor._processes)
    for pid in workers:
        os.kill(pid, signal.SIGTERM)

    after = asyncio.run(pool.decode_firehose(big_request(2), GZIP, Limits()))
    assert after.table.num_rows == BIG_REQUEST_RECORDS
    assert list(pool._executor._processes) == workers
    assert all(process.is_alive() for process in pool._executor._processes.values())


def test_a_pool_that_stops_answering_is_replaced(pool: DecodePool, monkeypatch) -> None:
    from trailguard.ingest import decode_pool

    asyncio.run(pool.decode_firehose(big_request(1), GZIP, Limits()))
    stopped, workers = pool._executor, list(pool._executor._processes.values())
    for worker in workers:
        os.kill(worker.pid, signal.SIGSTOP)  # alive, but never answers
    monkeypatch.setattr(decode_pool, "DECODE_TIMEOUT_S", 0.5)
    try:
        late = asyncio.run(pool.decode_firehose(big_request(2), GZIP, Limits()))
        for worker in workers:
            worker.join(30)
        exit_codes = [worker.exitcode for worker in workers]
    finally:
        for worker in workers:
            if worker.exitcode is None:
                os.kill(worker.pid, signal.SIGKILL)

    assert (late.request_id, late.table.num_rows) == ("big-2", BIG_REQUEST_RECORDS)
    assert pool._executor is not stopped
    # The stuck workers are killed, not left beside the new pool holding the server's exit.
    assert exit_codes == [-signal.SIGKILL] * len(workers)


def test_an_abandoned_answer_is_not_logged_as_never_retrieved(pool: DecodePool, monkeypatch,
                                                               caplog) -> None:
    # The pool fails the request it was given up on (BrokenProcessPool) once its workers
    # are killed; while the server's loop runs, asyncio logged that as a traceback.
    import gc

    from trailguard.ingest import decode_pool

    async def give_up_and_carry_on() -> None:
        await pool.decode_firehose(big_request(1), GZIP, Limits())
        for worker in pool._executor._processes.values():
            os.kill(worker.pid, signal.SIGSTOP)
        monkeypatch.setattr(decode_pool, "DECODE_TIMEOUT_S", 0.5)
        await pool.decode_firehose(big_request(2), GZIP, Limits())
        await asyncio.sleep(1)  # the broken pool fails what it held
        gc.collect()
        await asyncio.sleep(0.1)

    asyncio.run(give_up_and_carry_on())

    assert not [record for record in caplog.records if "never retrieved" in record.getMessage()]


def test_closing_the_pool_kills_a_stuck_worker(monkeypatch) -> None:
    import threading

    from trailguard.ingest import decode_pool

    monkeypatch.setattr(decode_pool, "CLOSE_WAIT_S", 0.5)
    pool = DecodePool(1)
    asyncio.run(pool.decode_firehose(big_request(1), GZIP, Limits()))
    worker = next(iter(pool._executor._processes.values()))
    os.kill(worker.pid, signal.SIGSTOP)  # never takes the pool's "stop" message

    closing = threading.Thread(target=pool.close, daemon=True)
    closing.start()
    closing.join(30)
    try:
        assert not closing.is_alive(), "closing the pool waited for a stuck worker"
        worker.join(30)
        assert worker.exitcode == -signal.SIGKILL
    finally:
        if worker.exitcode is None:
            os.kill(worker.pid, signal.SIGKILL)


def test_without_the_c_module_a_request_decodes_to_the_same_table(monkeypatch) -> None:
    from trailguard.ingest import decode_rows, documents, flatten, payloads
    from trailguard.store import rows

    body = big_request()
    with_c = decode_in_process(body, GZIP, Limits())
    for module, name in ((rows, "_crows"), (flatten, "_flatten_plain"),
                         (payloads, "_has_digit_run")):
        monkeypatch.setattr(module, name, None)
    for module in (decode_rows, documents):
        monkeypatch.setattr(module, "NATIVE_ROWS", False)

    _, _, chunks = decode_rows.decode_firehose_rows(body, GZIP, Limits())
    without_c = decode_in_process(body, GZIP, Limits())

    assert all(isinstance(chunk, list) for chunk in chunks)  # rows, for the server to pack
    assert without_c.table.equals(with_c.table)


def test_a_worker_that_dies_halfway_through_its_answer_is_noticed(
        monkeypatch, caplog) -> None:
    from decode_sabotage import die_halfway_through_sending

    from trailguard.ingest import decode_pool

    # Long enough that only noticing the dead worker, not the timeout, can answer first.
    monkeypatch.setattr(decode_pool, "DECODE_TIMEOUT_S", 3_600)
    pool = DecodePool(1)
    try:
        asyncio.run(pool.decode_firehose(big_request(1), GZIP, Limits()))
        broken = pool._executor
        result_writer = broken._result_queue._writer
        broken.submit(die_halfway_through_sending)  # runs first on the only worker

        after = asyncio.run(pool.decode_firehose(big_request(2), GZIP, Limits()))
    finally:
        pool.close()

    assert (after.request_id, after.table.num_rows) == ("big-2", BIG_REQUEST_RECORDS)
    assert pool._executor is not broken
    [failure] = [record.fields["reason"] for record in caplog.records
                 if record.getMessage().startswith("decode worker failed")]
    assert "died while the pool waited for it" in failure  # not the timeout
    # The broken pool's thread, stuck reading the half-sent answer, gets end-of-file once
    # no writer is left; else it would hold up this interpreter's exit forever.
    assert result_writer.closed
