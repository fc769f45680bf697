"""Fuzzing the receivers in-process: every hostile request gets a 4xx that says why.

The real ASGI app over a real DuckDB store, called through Starlette's TestClient. No
request may produce a 500, and the app must keep storing valid deliveries afterwards.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_hostile import (
    ACCEPTED,
    CASES,
    FIREHOSE_KEY,
    KEPT_AS_TEXT,
    T0,
    envelope,
    firehose_headers,
)
from starlette.testclient import TestClient

from trailguard.config import Config
from trailguard.store import DuckDBStore
from trailguard.web.app import create_app

API_KEY = "fuzz-api-key-0123456"
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    store = DuckDBStore(data_dir)
    config = Config(data_dir=data_dir, firehose_access_key=FIREHOSE_KEY, api_key=API_KEY)
    with TestClient(create_app(config, store), raise_server_exceptions=False) as test_client:
        yield test_client
    store.close()


def post(client: TestClient, body: bytes, headers: dict[str, str] | None = None,
         path: str = "/firehose/v1"):
    all_headers = firehose_headers() if path == "/firehose/v1" else {"Api-Key": FIREHOSE_KEY}
    return client.post(path, content=body, headers={**all_headers, **(headers or {})})


def refusal(response) -> str:
    """The error message of a refused request (both receivers' shapes)."""
    answer = response.json()
    return answer.get("errorMessage") or answer.get("error") or ""


def assert_still_serving(client: TestClient, request_id: str) -> None:
    response = post(client, envelope(b'{"alive": 1}', request_id=request_id),
                    firehose_headers(request_id))
    assert (response.status_code, response.json()["requestId"]) == (200, request_id)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_request_is_refused_with_a_reason(client, case):
    response = post(client, case.body, case.headers, case.path)

    assert response.status_code == case.status, response.text
    assert case.says in refusal(response)
    if case.path == "/firehose/v1":
        assert response.json()["requestId"] == "hostile"
    assert_still_serving(client, f"alive-after-{case.name}")


@pytest.mark.parametrize(("name", "body"), ACCEPTED, ids=[name for name, _ in ACCEPTED])
def test_odd_but_valid_record_is_stored(client, name, body):
    request_id = f"odd-{name}"
    response = post(client, body.replace(b'"hostile"', json.dumps(request_id).encode()),
                    firehose_headers(request_id))

    assert (response.status_code, response.json()["requestId"]) == (200, request_id)


def test_a_huge_request_id_is_refused_without_echoing_it_whole(client):
    huge = "r" * 100_000
    response = post(client, envelope(b"{}", request_id=huge), firehose_headers(huge))

    assert response.status_code == 400
    assert "longer than 256 characters" in refusal(response)
    assert response.json()["requestId"] == "r" * 256 + "..."
    assert len(response.content) < 1_000


@pytest.mark.parametrize(("name", "record", "says"), KEPT_AS_TEXT,
                         ids=[name for name, _, _ in KEPT_AS_TEXT])
def test_a_record_past_a_limit_is_kept_as_text_beside_the_good_ones(client, name, record, says):
    request_id = f"kept-{name}"
    good = json.dumps({"message": good_message(name), "timestamp": T0}).encode()
    response = post(client, envelope(good, record, request_id=request_id),
                    firehose_headers(request_id))
    assert (response.status_code, response.json()["requestId"]) == (200, request_id)

    query = ("FROM Log SELECT message, `trailguard.parseError` WHERE message = {text} OR "
             "message = {good} SINCE 30 years ago LIMIT MAX")
    rows = client.post("/api/v1/nrql", headers={"X-Api-Key": API_KEY}, json={
        "query": query.format(text=nrql_string(record.decode()),
                              good=nrql_string(good_message(name)))}).json()["results"]
    by_message = {row["message"]: row["trailguard.parseError"] for row in rows}
    assert by_message[good_message(name)] is None
    assert says in by_message[record.decode()]


def good_message(name: str) -> str:
    return f"good beside {name}"


def nrql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def json_values() -> st.SearchStrategy:
    scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
               | st.text(max_size=30))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                        max_leaves=20)


@FUZZ
@given(body=st.binary(max_size=300), gzipped=st.booleans())
def test_arbitrary_bytes_get_a_4xx(client, body, gzipped):
    headers = {"Content-Encoding": "gzip"} if gzipped else {}
    response = post(client, body, headers)

    assert response.status_code == 400, response.text
    assert refusal(response)


@FUZZ
@given(request_id=json_values(), timestamp=json_values(), records=json_values())
def test_arbitrary_envelope_fields_get_200_or_a_4xx(client, request_id, timestamp, records):
    body = json.dumps({"requestId": request_id, "timestamp": timestamp,
                       "records": records}).encode()
    header_id = request_id if isinstance(request_id, str) and request_id.isascii() else ""
    response = post(client, body, {"X-Amz-Firehose-Request-Id": header_id})

    assert response.status_code in (200, 400, 413), response.text
    if response.status_code != 200:
        assert refusal(response)


@FUZZ
@given(records=st.lists(st.binary(max_size=200) | json_values().map(
    lambda value: json.dumps(value).encode()), max_size=5),
       gzip_records=st.booleans())
def test_arbitrary_record_contents_are_stored_or_refused(client, records, gzip_records):
    data = [gzip.compress(record) if gzip_records else record for record in records]
    response = post(client, envelope(*data, request_id="fuzz-records"),
                    firehose_headers("fuzz-records"))

    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert refusal(response).startswith("records[")


@FUZZ
@given(text=st.text(max_size=200))
def test_json_text_with_escapes_is_stored_or_refused(client, text):
    # Raw JSON escapes, including lone surrogates, which hypothesis's text() never makes.
    record = b'{"value": "' + text.encode("unicode_escape").replace(b'"', b'\\"') + b'"}'
    response = post(client, envelope(record, request_id="fuzz-escapes"),
                    firehose_headers("fuzz-escapes"))

    assert response.status_code in (200, 400), response.text


@FUZZ
@given(header=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                      max_size=80))
def test_arbitrary_common_attributes_header_gets_200_or_400(client, header):
    response = post(client, envelope(b"{}", request_id="fuzz-header"),
                    firehose_headers("fuzz-header", **{
                        "X-Amz-Firehose-Common-Attributes": header}))

    assert response.status_code in (200, 400), response.text


@FUZZ
@given(payload=json_values())
def test_arbitrary_log_api_payload_gets_202_or_400(client, payload):
    response = post(client, json.dumps(payload).encode(), path="/log/v1")

    assert response.status_code in (202, 400), response.text
    if response.status_code == 400:
        assert refusal(response)


def test_records_over_the_count_limit_get_413(client):
    body = json.dumps({"requestId": "many", "timestamp": T0,
                       "records": [{"data": ""}] * 100_001}).encode()
    response = post(client, body, firehose_headers("many"))

    assert response.status_code == 413
    assert refusal(response) == "request has 100001 records; the limit is 100000"


def test_base64_of_nothing_stores_nothing(client):
    body = envelope(b"", request_id="empty-record")
    assert base64.b64encode(b"") == b""
    response = post(client, body, firehose_headers("empty-record"))

    assert (response.status_code, response.json()["requestId"]) == (200, "empty-record")
