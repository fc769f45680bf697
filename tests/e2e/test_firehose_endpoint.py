"""The Firehose HTTP endpoint over real HTTP(S): samples, errors, keys, TLS, Log API."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import ssl
from pathlib import Path

import httpx
import pytest
import trustme
from firehose_client import firehose_body, send
from live_server import start_server

pytestmark = pytest.mark.e2e

ALL_LOGS = "FROM Log SELECT count(*) SINCE 20 years ago"


def expected_events(body: dict, seen_log_event_ids: set) -> int:
    """New events a sample request carries, decoded here independently.

    CloudWatch Logs events already delivered (same log event id) are not new: two of
    the samples carry the same DATA_MESSAGE. A record that is not base64 is one event
    (kept as received, flagged).
    """
    total = 0
    for record in body["records"]:
        try:
            data = base64.b64decode(record["data"], validate=True)
        except binascii.Error:
            total += 1
            continue
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        try:
            document = json.loads(data)
        except ValueError:
            total += 1  # plain text: one message
            continue
        if isinstance(document, dict) and "messageType" in document:
            if document["messageType"] == "DATA_MESSAGE":
                ids = {entry["id"] for entry in document["logEvents"]}
                total += len(ids - seen_log_event_ids)
                seen_log_event_ids |= ids
            continue  # CONTROL_MESSAGE: a health check, not a log
        total += 1
    return total


def test_every_firehose_sample_is_accepted_with_every_record_kept(samples: Path, server):
    seen_log_event_ids: set = set()
    for path in sorted((samples / "firehose").glob("*.json")):
        body = json.loads(path.read_text())
        before = server.count(ALL_LOGS)
        expected = expected_events(body, seen_log_event_ids)

        response = send(server.base_url, server.firehose_key, body)

        assert response.status_code == 200, (path.name, response.text)
        assert response.json()["requestId"] == body["requestId"]
        assert server.count(ALL_LOGS) - before == expected, path.name


def test_a_record_that_is_not_base64_is_kept_flagged_beside_the_good_ones(samples: Path,
                                                                          server):
    # Its 2nd record is cut-off base64; the 1st is a CloudWatch Logs control message.
    body = json.loads((samples / "firehose" / "alloy_cw_logs_control_and_bad_records.json")
                      .read_text())
    body["requestId"] = "bad-record-request"
    body["records"].append({"data": base64.b64encode(b'{"message": "good one"}').decode()})

    assert send(server.base_url, server.firehose_key, body).status_code == 200

    rows = server.query("FROM Log SELECT message, `trailguard.parseError` WHERE "
                        "`trailguard.parseError` IS NOT NULL SINCE 20 years ago")["results"]
    assert [row["message"] for row in rows] == [body["records"][1]["data"]]
    assert rows[0]["trailguard.parseError"].startswith("records[1].data is not valid base64")
    assert server.count("FROM Log SELECT count(*) WHERE message = 'good one' "
                        "SINCE 20 years ago") == 1


def test_sample_values_land_as_attributes(samples: Path, server):
    body = json.loads((samples / "firehose" / "alloy_direct_put.json").read_text())
    assert send(server.base_url, server.firehose_key, body).status_code == 200
    rows = server.query("FROM Log SELECT TICKER_SYMBOL, PRICE WHERE SECTOR = 'ENERGY' "
                        "SINCE 20 years ago")["results"]
    assert sorted((row["TICKER_SYMBOL"], row["PRICE"]) for row in rows) == [
        ("HJV", 199.08), ("SLW", 82.56)]


def good_body() -> dict:
    return firehose_body([json.dumps({"message": "ok", "source": "test"}).encode()])


@pytest.mark.parametrize(("raw", "key", "headers", "status", "reason"), [
    (None, None, {}, 401, "missing X-Amz-Firehose-Access-Key"),
    (None, "wrong-key", {}, 403, "access key rejected"),
    (b"{this is not json", "good", {}, 400, "not valid JSON"),
    (json.dumps({"requestId": "r", "timestamp": 1, "records": [{"data": 5}]}).encode(),
     "good", {}, 400, "records[0] must be an object with a base64 'data' string"),
    (gzip.compress(json.dumps(firehose_body([b"x"])).encode())[:-20], "good",
     {"Content-Encoding": "gzip"}, 400, "truncated gzip"),
])
def test_bad_requests_get_a_clear_4xx_and_store_nothing(server, raw, key, headers, status,
                                                        reason):
    before = server.count(ALL_LOGS)
    access_key = server.firehose_key if key == "good" else (key or "")
    body = raw if raw is not None else good_body()
    sent_headers = dict(headers)
    if key is None:
        sent_headers["X-Amz-Firehose-Access-Key"] = ""

    response = send(server.base_url, access_key, body, headers=sent_headers)

    assert response.status_code == status
    assert reason in response.json()["errorMessage"]
    assert set(response.json()) == {"requestId", "timestamp", "errorMessage"}
    assert server.count(ALL_LOGS) == before
    follow_up = send(server.base_url, server.firehose_key, good_body())
    assert follow_up.status_code == 200  # the server keeps serving
    assert server.count(ALL_LOGS) == before + 1


def test_body_over_the_size_limit_is_413(tmp_path: Path):
    server = start_server(tmp_path / "data", extra_args=())
    try:
        oversized = b'{"requestId": "r", "timestamp": 1, "records": []}' + b" " * (65 * 2**20)
        response = send(server.base_url, server.firehose_key, oversized)
        assert response.status_code == 413
        assert "limit" in response.json()["errorMessage"]
    finally:
        server.stop()


def test_query_api_and_log_api_need_their_keys(server):
    refused = httpx.post(f"{server.base_url}/api/v1/nrql", json={"query": ALL_LOGS},
                         headers={"X-Api-Key": server.firehose_key})
    missing = httpx.post(f"{server.base_url}/log/v1", json={"message": "x"})
    assert (refused.status_code, missing.status_code) == (403, 401)


def test_log_api_shapes(server):
    payloads = [
        {"message": "one object", "service": "a"},
        [{"message": "array item", "service": "a"}, {"message": "array item 2", "service": "b"}],
        [{"common": {"attributes": {"service": "c", "env": "prod"}},
          "logs": [{"message": "detailed", "timestamp": 1_700_000_000_000,
                    "attributes": {"user": {"name": "example"}}}]}],
    ]
    for payload in payloads:
        response = httpx.post(f"{server.base_url}/log/v1", content=gzip.compress(
            json.dumps(payload).encode()), headers={"Api-Key": server.firehose_key,
                                                    "Content-Encoding": "gzip"})
        assert response.status_code == 202, response.text

    rows = server.query("FROM Log SELECT count(*) FACET service SINCE 5 years ago")["results"]
    detailed = server.query("FROM Log SELECT * WHERE env = 'prod' SINCE 5 years ago")["results"]
    assert {row["service"]: row["count"] for row in rows} == {"a": 2, "b": 1, "c": 1}
    assert detailed == [{"message": "detailed", "service": "c", "env": "prod",
                         "user.name": "example", "timestamp": 1_700_000_000_000}]


def test_firehose_over_https_with_a_certificate_made_here(tmp_path: Path):
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = (tmp_path / "cert.pem", tmp_path / "key.pem",
                                    tmp_path / "ca.pem")
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    certificate.private_key_pem.write_to_path(str(key_file))
    authority.cert_pem.write_to_path(str(ca_file))

    trust = ssl.create_default_context(cafile=str(ca_file))
    server = start_server(tmp_path / "data", ("--tls-cert", str(cert_file),
                                              "--tls-key", str(key_file)),
                          scheme="https", verify=trust)
    try:
        body = firehose_body([json.dumps({"message": "over tls"}).encode()])
        response = send(server.base_url, server.firehose_key, body, verify=trust)
        assert response.status_code == 200
        assert server.count("FROM Log SELECT count(*) WHERE message = 'over tls'") == 1
    finally:
        server.stop()


def test_without_keys_the_server_generates_and_keeps_them(tmp_path: Path):
    server = start_server(tmp_path / "data", env_keys=False)
    try:
        output_keys = json.loads((tmp_path / "data" / "keys.json").read_text())
        assert (tmp_path / "data" / "keys.json").stat().st_mode & 0o077 == 0
        no_key = send(server.base_url, "", good_body())
        with_key = send(server.base_url, output_keys["firehose_access_key"], good_body())
        assert (no_key.status_code, with_key.status_code) == (401, 200)
    finally:
        printed = server.stop()
    # Said where, never printed: stdout may end in a journal others can read.
    assert "generated one into" in printed and str(tmp_path / "data" / "keys.json") in printed
    assert output_keys["firehose_access_key"] not in printed
    assert output_keys["api_key"] not in printed
    assert (tmp_path / "data").stat().st_mode & 0o077 == 0
