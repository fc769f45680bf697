"""AWS on 127.0.0.1 for the source tests: moto in server mode (S3, SQS, STS, EC2) and
the local LookupEvents/GuardDuty fake. Nothing here can reach real AWS: every endpoint
is set to a local server, credentials are fake, and the metadata service is disabled.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer
from sources.fake_aws import FakeAws
from sources.support import FakeClock

from trailguard.sources.aws import Pacer
from trailguard.store import DuckDBStore


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server for the session, on a free port of 127.0.0.1."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def fake_aws() -> Iterator[FakeAws]:
    """A fresh LookupEvents/GuardDuty fake per test."""
    fake = FakeAws()
    yield fake
    fake.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_url: str,
            fake_aws: FakeAws) -> dict[str, str]:
    """Fake credentials and local endpoints for every AWS service the sources call."""
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = fake\n"
        "[account-a]\naws_access_key_id = AKIAACCOUNTA\naws_secret_access_key = fake\n"
        "[account-b]\naws_access_key_id = AKIAACCOUNTB\naws_secret_access_key = fake\n")
    (tmp_path / "aws-config").write_text("[default]\nregion = us-east-1\n")
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_CLOUDTRAIL": fake_aws.url,
        "AWS_ENDPOINT_URL_GUARDDUTY": fake_aws.url,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    fake_aws.state.accounts_by_key.update(
        {"AKIAACCOUNTA": "111122223333", "AKIAACCOUNTB": "444455556666"})
    return env


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pacer(clock: FakeClock) -> Pacer:
    """AWS pacing (2 calls/s, backoff 1 s doubling) on the fake clock: no real waiting."""
    return Pacer(interval=0.5, clock=clock, sleep=clock.sleep)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path / "data")
    yield opened
    opened.close()
