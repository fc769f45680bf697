"""Assumed-role credentials renew themselves before they expire (moto's STS over HTTP).

Time is moved on the credentials' own clock (botocore's `time_fetcher`), so hours of a
backfill pass in a second while every AssumeRole, S3 and LookupEvents call is real.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path

import pytest
from sources.fake_aws import FakeAws
from sources.support import FakeClock, count

from trailguard.errors import SourceError
from trailguard.sources.aws import Pacer, open_account
from trailguard.sources.checkpoints import Checkpoints
from trailguard.sources.lookup_events import LookupEventsPoller
from trailguard.sources.settings import AccountSource, LookupEventsSource
from trailguard.store import DuckDBStore

ROLE = "arn:aws:iam::111122223333:role/trailguard-reader"
DAY_MS = 86_400_000


class CredentialsClock:
    """A timezone-aware wall clock that the test moves forward."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


def member(regions: list[str] | None = None) -> AccountSource:
    return AccountSource(name="member", role_arn=ROLE, external_id="trailguard-ext-1",
                         regions=regions or ["us-east-1"])


def access_key(session: object) -> str:
    return session.get_credentials().get_frozen_credentials().access_key  # type: ignore


def test_role_credentials_are_reused_then_renewed_15_minutes_before_expiry(
        aws_env: dict[str, str]) -> None:
    clock = CredentialsClock()
    opened = open_account(member(), clock)
    s3 = opened.client("s3", "us-east-1")
    s3.list_buckets()
    first = access_key(opened.session)

    clock.advance(44)  # 16 minutes left: still good
    s3.list_buckets()
    assert access_key(opened.session) == first

    clock.advance(2)  # 14 minutes left: renewed before the next request is signed
    s3.list_buckets()
    renewed = access_key(opened.session)
    assert renewed != first
    assert first.startswith("ASIA") and renewed.startswith("ASIA")
    assert opened.account_id == "111122223333"


def test_multi_hour_backfill_signs_every_call_with_unexpired_credentials(
        aws_env: dict[str, str], fake_aws: FakeAws, store: DuckDBStore,
        tmp_path: Path) -> None:
    """20 daily windows, each call 10 minutes after the last: 3 h 10 min of calls."""
    now_ms = 1_700_000_000_000
    fake_aws.state.add_records("111122223333", "us-east-1", [
        {"eventID": f"00000000-0000-0000-0000-{day:012d}", "eventName": "DescribeInstances",
         "eventSource": "ec2.amazonaws.com", "awsRegion": "us-east-1",
         "recipientAccountId": "111122223333",
         "eventTime": datetime.fromtimestamp((now_ms - day * DAY_MS - 3_600_000) / 1000,
                                             tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for day in range(20)])
    credentials_clock = CredentialsClock()
    pacer_clock = FakeClock()

    def sleep(seconds: float) -> None:
        pacer_clock.sleep(seconds)
        credentials_clock.advance(10)

    opened = open_account(member(), credentials_clock)
    poller = LookupEventsPoller(store, Checkpoints(tmp_path / "data"),
                                Pacer(interval=0.5, clock=pacer_clock, sleep=sleep),
                                LookupEventsSource(backfill_ms=20 * DAY_MS), lambda: now_ms)
    result = poller.poll(opened, "us-east-1")

    keys = [call.access_key for call in fake_aws.state.lookup_calls]
    runs = [(key, len(list(group))) for key, group in groupby(keys)]
    # Each hour-long session signs calls at +0..+40 min; at +50 (10 min left) it is renewed.
    assert [length for _, length in runs] == [5, 5, 5, 5]
    assert len({key for key, _ in runs}) == 4
    assert (result.stored, result.pages) == (20, 20)
    assert count(store) == 20


def test_wrong_role_is_a_credentials_error_of_the_account(aws_env: dict[str, str]) -> None:
    bad = AccountSource(name="member", role_arn="not-an-arn", regions=["us-east-1"])
    with pytest.raises(SourceError, match="account member: cannot get AWS credentials"):
        open_account(bad)
