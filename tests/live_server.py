"""A real `trailguard serve` process on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A `trailguard serve` process on 127.0.0.1 with known keys."""

    process: subprocess.Popen
    base_url: str
    data_dir: Path
    firehose_key: str
    api_key: str
    verify: object = True

    def query(self, nrql: str) -> dict:
        response = httpx.post(f"{self.base_url}/api/v1/nrql", json={"query": nrql},
                              headers={"X-Api-Key": self.api_key}, verify=self.verify, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def count(self, nrql: str) -> int:
        return self.query(nrql)["results"][0]["count"]

    def stop(self) -> str:
        self.process.terminate()
        try:
            output, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output


def start_server(data_dir: Path, extra_args: tuple[str, ...] = (), scheme: str = "http",
                 verify: object = True, env_keys: bool = True, port: int | None = None,
                 extra_env: dict[str, str] | None = None) -> Server:
    """Start `python -m trailguard serve` and wait until /health answers.

    `port` restarts a server where a killed one listened; `extra_env` adds settings
    (e.g. `TRAILGUARD_LOG_LEVEL`).
    """
    port = port or free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAILGUARD_")}
    env.update(extra_env or {})
    firehose_key, api_key = "test-firehose-key-0123456789", "test-api-key-0123456789"
    if env_keys:
        env["TRAILGUARD_FIREHOSE_ACCESS_KEY"] = firehose_key
        env["TRAILGUARD_API_KEY"] = api_key
    command = [sys.executable, "-m", "trailguard", "serve", "--data-dir", str(data_dir),
               "--host", "127.0.0.1", "--port", str(port), *extra_args]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base_url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{process.stdout.read()}")
        try:
            if httpx.get(f"{base_url}/health", verify=verify, timeout=2).status_code == 200:
                return Server(process, base_url, data_dir, firehose_key, api_key, verify)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not answer /health within 60 s:\n{process.stdout.read()}")
