"""Credentials and regions the AWS way: default chain, named profiles, AssumeRole.

Clients are built with botocore's own retries switched off: the pollers pace calls
and back off themselves, so that a throttled page resumes with the same NextToken
and the pacing is visible in tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from trailguard.errors import SourceError
from trailguard.logs import log_fields
from trailguard.sources.settings import ALL_REGIONS, AccountSource

log = logging.getLogger("trailguard.sources.aws")

SESSION_NAME = "trailguard"
THROTTLE_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException",
                            "RequestLimitExceeded", "SlowDown"})
_CLIENT_CONFIG = BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"},
                            connect_timeout=10, read_timeout=60,
                            user_agent_extra="trailguard")


@dataclass(slots=True)
class AccountSession:
    """A boto3 session for one account, with the account id and regions it covers."""

    name: str
    account_id: str
    session: boto3.Session
    regions: list[str]

    def client(self, service: str, region: str) -> Any:
        """A client for `service` in `region` without botocore's automatic retries."""
        return self.session.client(service, region_name=region, config=_CLIENT_CONFIG)


def open_account(account: AccountSource) -> AccountSession:
    """Credentials, account id and region list for `account`; `SourceError` on failure."""
    try:
        session = _base_session(account)
        if account.role_arn:
            session = _assume_role(session, account)
        account_id = account.account_id or _caller_account(session, account.home_region)
        regions = _regions(session, account)
    except (BotoCoreError, ClientError) as exc:
        raise SourceError(f"account {account.name}: cannot get AWS credentials or regions: "
                          f"{exc} (check profile/role_arn/external_id and the IAM policy in "
                          "docs/aws-sources.md)") from exc
    return AccountSession(account.name, account_id, session, regions)


def _base_session(account: AccountSource) -> boto3.Session:
    if account.profile:
        return boto3.Session(profile_name=account.profile)
    return boto3.Session()


def _assume_role(base: boto3.Session, account: AccountSource) -> boto3.Session:
    """Temporary credentials for the member-account role (valid one hour, one poll run)."""
    sts = base.client("sts", region_name=account.home_region, config=_CLIENT_CONFIG)
    request: dict[str, Any] = {"RoleArn": account.role_arn, "RoleSessionName": SESSION_NAME,
                               "DurationSeconds": 3600}
    if account.external_id:
        request["ExternalId"] = account.external_id
    credentials = sts.assume_role(**request)["Credentials"]
    log_fields(log, logging.INFO, "assumed role", account=account.name, role=account.role_arn)
    return boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                         aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"])


def _caller_account(session: boto3.Session, region: str) -> str:
    sts = session.client("sts", region_name=region, config=_CLIENT_CONFIG)
    return str(sts.get_caller_identity()["Account"])


def _regions(session: boto3.Session, account: AccountSource) -> list[str]:
    if account.regions != ALL_REGIONS:
        return list(account.regions)
    ec2 = session.client("ec2", region_name=account.home_region, config=_CLIENT_CONFIG)
    # Without AllRegions, DescribeRegions lists only the regions enabled for the account.
    answer = ec2.describe_regions(AllRegions=False)
    return sorted(region["RegionName"] for region in answer["Regions"])


def error_code(exc: ClientError) -> str:
    """The AWS error code of a failed call (`ThrottlingException`, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(slots=True)
class Pacer:
    """Calls per (account, region) spaced at least `interval` seconds apart, with backoff.

    `clock` and `sleep` are injectable so tests check the pacing without waiting.
    """

    interval: float = 0.5
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    max_attempts: int = 8
    first_backoff: float = 1.0
    max_backoff: float = 20.0
    _last_call: dict[tuple[str, str], float] = field(default_factory=dict)

    def call(self, key: tuple[str, str], operation: Callable[[], Any]) -> Any:
        """Run `operation` paced for `key`; on throttling wait and repeat it unchanged."""
        backoff = self.first_backoff
        for attempt in range(1, self.max_attempts + 1):
            self._wait_turn(key)
            try:
                return operation()
            except ClientError as exc:
                if error_code(exc) not in THROTTLE_CODES or attempt == self.max_attempts:
                    raise
                log_fields(log, logging.INFO, "throttled by AWS, backing off", account=key[0],
                           region=key[1], attempt=attempt, wait_s=backoff)
                self.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
        raise AssertionError("unreachable")

    def _wait_turn(self, key: tuple[str, str]) -> None:
        now = self.clock()
        last = self._last_call.get(key)
        if last is not None and now - last < self.interval:
            self.sleep(self.interval - (now - last))
        self._last_call[key] = self.clock()
