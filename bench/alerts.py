"""Time from the Firehose 200 to the notification received, for a real server.

    .venv/bin/python bench/alerts.py              # 60 s window (target: <= window + 2 s)
    .venv/bin/python bench/alerts.py --window 5   # a quick run

Starts `trailguard serve` on 127.0.0.1 with one condition (count above 0, CADENCE, no
delay) and a webhook destination served by this script, sends one finding through
/firehose/v1 and measures until the webhook request arrives. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from firehose_client import firehose_body, send
from live_server import start_server


def _webhook() -> tuple[ThreadingHTTPServer, threading.Event, list[float]]:
    arrived, at = threading.Event(), []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            if not at:
                at.append(time.monotonic())
            arrived.set()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, arrived, at


def _alerts_file(folder: Path, window_s: int) -> Path:
    path = folder / "alerts.yaml"
    path.write_text(yaml.safe_dump({
        "evaluation_interval_seconds": 0.5,
        "policies": [{"name": "bench", "conditions": [{
            "name": "any SSH brute force",
            "nrql": {"query": "FROM Log SELECT count(*) WHERE "
                              "detail.type = 'UnauthorizedAccess:EC2/SSHBruteForce'"},
            "terms": [{"operator": "ABOVE", "threshold": 0, "thresholdDuration": window_s,
                       "thresholdOccurrences": "AT_LEAST_ONCE"}],
            "signal": {"aggregationWindow": window_s, "aggregationMethod": "CADENCE",
                       "aggregationDelay": 0}}]}],
        "destinations": [{"name": "hook", "type": "webhook", "url_env": "TG_BENCH_HOOK"}],
        "workflows": [{"name": "all", "destinations": ["hook"]}]}))
    return path


def _record() -> bytes:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({
        "version": "0", "id": "bench-1", "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty", "account": "111122223333", "time": now,
        "region": "us-east-1", "resources": [],
        "detail": {"id": "f-bench", "type": "UnauthorizedAccess:EC2/SSHBruteForce",
                   "severity": 8, "updatedAt": now}}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=int, default=60, help="aggregation window, seconds")
    args = parser.parse_args()
    import os

    hook, arrived, at = _webhook()
    os.environ["TG_BENCH_HOOK"] = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder) / "data",
                              ("--alerts-file", str(_alerts_file(Path(folder), args.window))))
        try:
            response = send(server.base_url, server.firehose_key, firehose_body([_record()]))
            accepted = time.monotonic()
            assert response.status_code == 200, response.text
            arrived.wait(args.window * 3 + 30)
        finally:
            output = server.stop()
            hook.shutdown()
    if not at:
        print(f"no notification within {args.window * 3 + 30} s; server output:\n{output}")
        return 1
    latency = at[0] - accepted
    verdict = "ok" if latency <= args.window + 2 else "SLOW"
    print(f"window {args.window} s: Firehose 200 -> notification in {latency:.2f} s "
          f"(target <= {args.window + 2} s) {verdict}")
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
