"""Hostile requests against a real server process: each gets its 4xx, none kills it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from firehose_client import firehose_body, send
from ingest_hostile import CASES, firehose_headers
from live_server import start_server

pytestmark = pytest.mark.e2e


def test_hostile_requests_get_their_4xx_and_the_server_keeps_serving(tmp_path: Path):
    server = start_server(tmp_path / "data", extra_env={"TRAILGUARD_LOG_LEVEL": "error"})
    try:
        answers = []
        for case in CASES:
            headers = firehose_headers() if case.path == "/firehose/v1" else {
                "Api-Key": server.firehose_key}
            response = httpx.post(f"{server.base_url}{case.path}", content=case.body,
                                  headers={**headers, **case.headers}, timeout=120)
            answer = response.json()
            message = answer.get("errorMessage") or answer.get("error") or ""
            answers.append((case.name, response.status_code, case.says in message))

        assert answers == [(case.name, case.status, True) for case in CASES]
        assert server.process.poll() is None
        body = firehose_body([b'{"after": "hostile"}'], request_id="after-hostile")
        assert send(server.base_url, server.firehose_key, body).status_code == 200
        assert server.count("FROM Log SELECT count(*) SINCE 20 years ago") == 1
    finally:
        server.stop()
