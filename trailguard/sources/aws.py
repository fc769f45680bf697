"""Credentials and regions the AWS way: default chain, named profiles, AssumeRole
(renewed before it expires).

Clients are built with botocore's own retries switched off: the pollers pace calls
and back off themselves, so that a throttled page resumes with the same NextToken
and the pacing is visible in tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError

from trailguard.errors import SourceError
from trailguard.logs import log_fields
from trailguard.sources.settings import ALL_REGIONS, AccountSource

log = logging.getLogger("trailguard.sources.aws")

SESSION_NAME = "trailguard"
ROLE_SESSION_SECONDS = 3600  # the longest STS allows when the caller is itself a role
Clock = Callable[[], datetime]
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


def utc_now() -> datetime:
    """The wall clock, timezone-aware (botocore compares it with expiry times)."""
    return datetime.now(UTC)


def open_account(account: AccountSource, clock: Clock = utc_now) -> AccountSession:
    """Credentials, account id and region list for `account`; `SourceError` on failure.

    `clock` is when assumed-role credentials count as expiring (tests move it).
    """
    try:
        session = _base_session(account)
        if account.role_arn:
            session = _assume_role(session, account, clock)
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


def _assume_role(base: boto3.Session, account: AccountSource, clock: Clock) -> boto3.Session:
    """A session whose role credentials renew themselves before they expire.

    One AssumeRole lasts an hour, and a first backfill can run for many: botocore's
    refreshable credentials call `fetch` again once less than 15 minutes remain
    (every client made from the session signs with the fresh ones). The first
    AssumeRole happens here, so a wrong role or external id fails as a credentials
    error of the account, not as an error of whichever source runs first.
    """
    sts = base.client("sts", region_name=account.home_region, config=_CLIENT_CONFIG)
    request: dict[str, Any] = {"RoleArn": account.role_arn, "RoleSessionName": SESSION_NAME,
                               "DurationSeconds": ROLE_SESSION_SECONDS}
    if account.external_id:
        request["ExternalId"] = account.external_id

    def fetch() -> dict[str, str]:
        # Expiry on our own clock, measured from before the call: STS's `Expiration` is
        # on AWS's clock, and a local clock minutes off would renew too late.
        expires = clock() + timedelta(seconds=ROLE_SESSION_SECONDS)
        credentials = sts.assume_role(**request)["Credentials"]
        log_fields(log, logging.INFO, "assumed role", account=account.name,
                   role=account.role_arn, expires=expires.isoformat())
        return {"access_key": credentials["AccessKeyId"],
                "secret_key": credentials["SecretAccessKey"],
                "token": credentials["SessionToken"], "expiry_time": expires.isoformat()}

    refreshing = DeferredRefreshableCredentials(fetch, "trailguard-assume-role", clock)
    refreshing.get_frozen_credentials()
    botocore_session = botocore.session.Session()
    botocore_session.register_component("credential_provider",
                                        CredentialResolver([_Fixed(refreshing)]))
    return boto3.Session(botocore_session=botocore_session)


class _Fixed(CredentialProvider):
    """Hands botocore the one refreshable credentials object of an assumed role."""

    METHOD = "trailguard-assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


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
        """Run `operation` paced for `key`; on throttling wait and repeat it unchanged.

        Still throttled after `max_attempts`: a `SourceError` counting trailguard's own
        attempts and waits (botocore's message would say "max retries: 0", its own
        retries being off).
        """
        backoff, waited = self.first_backoff, 0.0
        for attempt in range(1, self.max_attempts + 1):
            self._wait_turn(key)
            try:
                return operation()
            except ClientError as exc:
                if error_code(exc) not in THROTTLE_CODES:
                    raise
                if attempt == self.max_attempts:
                    raise _still_throttled(exc, attempt, waited) from exc
                log_fields(log, logging.INFO, "throttled by AWS, backing off", account=key[0],
                           region=key[1], attempt=attempt, wait_s=backoff)
                self.sleep(backoff)
                waited += backoff
                backoff = min(backoff * 2, self.max_backoff)
        raise AssertionError("unreachable")

    def _wait_turn(self, key: tuple[str, str]) -> None:
        now = self.clock()
        last = self._last_call.get(key)
        if last is not None and now - last < self.interval:
            self.sleep(self.interval - (now - last))
        self._last_call[key] = self.clock()


def _still_throttled(exc: ClientError, attempts: int, waited_s: float) -> SourceError:
    error = exc.response.get("Error", {})
    return SourceError(
        f"{exc.operation_name}: still throttled by AWS after {attempts} attempts over "
        f"{waited_s:.0f} s of backoff ({error.get('Code')}: {error.get('Message')}); the "
        "next poll resumes from the same page. Throttling that lasts usually means "
        "another tool shares this account's API rate: spread the polls (sources.interval)")
