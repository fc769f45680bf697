"""A small local stand-in for the CloudTrail LookupEvents and GuardDuty findings APIs.

moto (5.2) implements neither LookupEvents nor ListFindings/GetFindings, so this is a
real HTTP server on 127.0.0.1 speaking the same wire protocols (JSON 1.1 for
CloudTrail, REST-JSON for GuardDuty) that boto3 talks to through AWS_ENDPOINT_URL_*.
The account is told by the access key, the region by the SigV4 credential scope.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

DEFAULT_ACCOUNT = "111122223333"
_SCOPE = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def iso_ms(text: str) -> int:
    """`2023-11-14T22:00:00Z` (or with millis) as epoch milliseconds."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@dataclass
class LookupCall:
    """One LookupEvents request as the fake saw it."""

    account: str
    region: str
    start_ms: int
    end_ms: int
    token: str | None
    throttled: bool
    access_key: str = ""


@dataclass
class FakeAwsState:
    """Everything the fake serves, and what it was asked."""

    accounts_by_key: dict[str, str] = field(default_factory=dict)
    trails: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    throttles: dict[tuple[str, str, int], int] = field(default_factory=dict)
    detectors: dict[tuple[str, str], dict[str, dict[str, dict[str, Any]]]] = field(
        default_factory=dict)
    lookup_calls: list[LookupCall] = field(default_factory=list)
    findings_calls: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_records(self, account: str, region: str, records: list[dict[str, Any]]) -> None:
        """Make `records` visible to LookupEvents in `account`/`region`."""
        with self.lock:
            self.trails.setdefault((account, region), []).extend(records)

    def throttle_page(self, account: str, region: str, page: int, times: int) -> None:
        """Answer ThrottlingException `times` times before serving page `page` (1-based)."""
        self.throttles[(account, region, page)] = times

    def put_finding(self, account: str, region: str, detector: str,
                    finding: dict[str, Any]) -> None:
        """Create or update (same id) a finding, in GuardDuty's wire shape (camelCase)."""
        with self.lock:
            findings = self.detectors.setdefault((account, region), {}).setdefault(detector, {})
            findings[finding["id"]] = finding


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: FakeAwsState

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = orjson.loads(self.rfile.read(length)) if length else {}
        scope = _SCOPE.search(self.headers.get("Authorization", ""))
        if not scope:
            return self._reply(403, {"__type": "MissingAuthenticationTokenException"})
        access_key, region, service = scope.groups()
        account = self.state.accounts_by_key.get(access_key, DEFAULT_ACCOUNT)
        if service == "cloudtrail":
            return self._cloudtrail(account, region, body, access_key)
        if service == "guardduty":
            return self._guardduty(account, region, body)
        return self._reply(400, {"__type": "UnknownServiceException", "message": service})

    def _cloudtrail(self, account: str, region: str, body: dict[str, Any],
                    access_key: str) -> None:
        if not self.headers.get("X-Amz-Target", "").endswith(".LookupEvents"):
            return self._reply(400, {"__type": "UnknownOperationException"})
        start_ms, end_ms = int(body["StartTime"] * 1000), int(body["EndTime"] * 1000)
        token = body.get("NextToken")
        offset = _token_offset(token, start_ms, end_ms)
        page_number = offset // 50 + 1 if offset is not None else 0
        with self.state.lock:
            remaining = self.state.throttles.get((account, region, page_number), 0)
            if remaining:
                self.state.throttles[(account, region, page_number)] = remaining - 1
            self.state.lookup_calls.append(LookupCall(account, region, start_ms, end_ms,
                                                      token, bool(remaining), access_key))
            records = list(self.state.trails.get((account, region), []))
        if remaining:
            return self._reply(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
        if offset is None:
            return self._reply(400, {"__type": "InvalidNextTokenException",
                                     "message": "Invalid NextToken"})
        return self._reply(200, _lookup_page(records, start_ms, end_ms, offset,
                                             int(body.get("MaxResults", 50))))

    def _guardduty(self, account: str, region: str, body: dict[str, Any]) -> None:
        detectors = self.state.detectors.get((account, region), {})
        parts = self.path.split("?")[0].strip("/").split("/")
        self.state.findings_calls.append((account, region, self.path))
        if parts == ["detector"]:
            return self._reply(200, {"detectorIds": sorted(detectors)})
        if len(parts) < 3 or parts[1] not in detectors:
            return self._reply(400, {"__type": "BadRequestException", "message": "no detector"})
        findings = detectors[parts[1]]
        if parts[2:] == ["findings"]:
            return self._reply(200, _list_findings(findings, body))
        wanted = body.get("findingIds", [])
        return self._reply(200, {"findings": [findings[i] for i in wanted if i in findings],
                                 "unprocessedFindings": []})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        raw = orjson.dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def _token_offset(token: str | None, start_ms: int, end_ms: int) -> int | None:
    """The record offset a NextToken stands for; None when it belongs to another query."""
    if token is None:
        return 0
    offset, token_start, token_end = (int(part) for part in token.split("-")[1:])
    return offset if (token_start, token_end) == (start_ms, end_ms) else None


def _lookup_page(records: list[dict[str, Any]], start_ms: int, end_ms: int, offset: int,
                 size: int) -> dict[str, Any]:
    matching = [r for r in records if start_ms <= iso_ms(r["eventTime"]) <= end_ms]
    matching.sort(key=lambda r: (iso_ms(r["eventTime"]), r["eventID"]), reverse=True)
    page = matching[offset:offset + size]
    answer: dict[str, Any] = {"Events": [{
        "EventId": record["eventID"], "EventName": record.get("eventName"),
        "ReadOnly": str(record.get("readOnly", "false")).lower(),
        "EventTime": iso_ms(record["eventTime"]) / 1000,
        "EventSource": record.get("eventSource"), "Resources": [],
        "CloudTrailEvent": orjson.dumps(record).decode()} for record in page]}
    if offset + size < len(matching):
        answer["NextToken"] = f"tok-{offset + size}-{start_ms}-{end_ms}"
    return answer


def _list_findings(findings: dict[str, dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    criterion = (body.get("findingCriteria") or {}).get("criterion") or {}
    since = (criterion.get("updatedAt") or {}).get("greaterThanOrEqual", 0)
    ordered = sorted((f for f in findings.values() if iso_ms(f["updatedAt"]) >= since),
                     key=lambda f: (iso_ms(f["updatedAt"]), f["id"]))
    offset = int(body.get("nextToken") or 0)
    size = int(body.get("maxResults", 50))
    answer: dict[str, Any] = {"findingIds": [f["id"] for f in ordered[offset:offset + size]]}
    if offset + size < len(ordered):
        answer["nextToken"] = str(offset + size)
    return answer


class FakeAws:
    """The fake on a free port of 127.0.0.1; `url` is its endpoint."""

    def __init__(self) -> None:
        self.state = FakeAwsState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Shut the server down and free its port."""
        self._server.shutdown()
        self._server.server_close()
