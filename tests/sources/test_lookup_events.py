"""CloudTrail LookupEvents polling over real HTTP against the local fake (field case BL-14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from sources.fake_aws import FakeAws, iso_ms
from sources.support import FakeClock, count, sample_records

from trailguard.errors import SourceError
from trailguard.events import Event
from trailguard.sources.aws import AccountSession, Pacer
from trailguard.sources.checkpoints import Checkpoints
from trailguard.sources.lookup_events import LookupEventsPoller
from trailguard.sources.settings import LookupEventsSource
from trailguard.store import DuckDBStore
from trailguard.store.base import WriteResult

ACCOUNT = "111122223333"
REGION = "us-east-1"
T_2200 = iso_ms("2023-11-14T22:00:00Z")
MINUTE = 60_000


def timed_records(samples: Path, count_: int, start_ms: int, step_s: int = 5,
                  region: str = REGION, account: str = ACCOUNT) -> list[dict[str, Any]]:
    """`count_` real sample records re-timed `step_s` apart from `start_ms`."""
    records = []
    for index, record in enumerate(sample_records(samples)[:count_]):
        moment = (start_ms + index * step_s * 1000) // 1000
        records.append({**record, "awsRegion": region, "recipientAccountId": account,
                        "eventTime": _iso(moment)})
    return records


def _iso(epoch_s: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MovingClock:
    """The poller's wall clock in epoch ms, set by the test."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def make_poller(store: Any, data_dir: Path, pacer: Pacer, wall: MovingClock,
                backfill_min: int = 10, overlap_min: int = 5) -> LookupEventsPoller:
    settings = LookupEventsSource(backfill_ms=backfill_min * MINUTE,
                                  overlap_ms=overlap_min * MINUTE)
    return LookupEventsPoller(store, Checkpoints(data_dir), pacer, settings, wall)


def session_for(account: str = ACCOUNT, profile: str = "account-a") -> AccountSession:
    return AccountSession("a", account, boto3.Session(profile_name=profile), [REGION])


def test_bl14_three_pages_throttled_twice_overlap_stores_107(
        aws_env: dict[str, str], fake_aws: FakeAws, samples: Path, store: DuckDBStore,
        tmp_path: Path, clock: FakeClock, pacer: Pacer) -> None:
    fake_aws.state.add_records(ACCOUNT, REGION, timed_records(samples, 107, T_2200))
    fake_aws.state.throttle_page(ACCOUNT, REGION, page=2, times=2)
    wall = MovingClock(T_2200 + 10 * MINUTE)
    poller = make_poller(store, tmp_path / "data", pacer, wall)

    first = poller.poll(session_for(), REGION)
    wall.now_ms = T_2200 + 15 * MINUTE
    second = make_poller(store, tmp_path / "data", pacer, wall).poll(session_for(), REGION)

    assert (first.stored, first.pages, second.stored, second.duplicates) == (107, 3, 0, 47)
    assert count(store) == 107
    calls = fake_aws.state.lookup_calls
    assert [(c.token, c.throttled) for c in calls] == [
        (None, False),
        (f"tok-50-{T_2200}-{T_2200 + 10 * MINUTE}", True),
        (f"tok-50-{T_2200}-{T_2200 + 10 * MINUTE}", True),
        (f"tok-50-{T_2200}-{T_2200 + 10 * MINUTE}", False),
        (f"tok-100-{T_2200}-{T_2200 + 10 * MINUTE}", False),
        (None, False),
    ]
    # second window: 22:05-22:15, i.e. overlapping the first by 5 minutes
    assert (calls[-1].start_ms, calls[-1].end_ms) == (T_2200 + 5 * MINUTE, T_2200 + 15 * MINUTE)
    # pacing 0.5 s between calls (2/s), backoff 1 s then 2 s on the two throttles
    assert clock.sleeps == [0.5, 1.0, 2.0, 0.5, 0.5]
    assert Checkpoints(tmp_path / "data").get(f"lookup-events|{ACCOUNT}|{REGION}") == {
        "done_until": T_2200 + 15 * MINUTE}


class FailingStore:
    """Stores like the real store, but its `fail_on`-th write raises."""

    def __init__(self, inner: DuckDBStore, fail_on: int) -> None:
        self.inner, self.fail_on, self.writes = inner, fail_on, 0

    def write(self, events: list[Event], request_id: str | None = None,
              received_ms: int = 0) -> WriteResult:
        self.writes += 1
        if self.writes == self.fail_on:
            raise RuntimeError("disk full")
        return self.inner.write(events)


def test_checkpoint_moves_only_after_the_page_is_stored_and_restart_resumes(
        aws_env: dict[str, str], fake_aws: FakeAws, samples: Path, store: DuckDBStore,
        tmp_path: Path, pacer: Pacer) -> None:
    fake_aws.state.add_records(ACCOUNT, REGION, timed_records(samples, 107, T_2200))
    wall = MovingClock(T_2200 + 10 * MINUTE)
    failing = FailingStore(store, fail_on=2)

    with pytest.raises(RuntimeError, match="disk full"):
        make_poller(failing, tmp_path / "data", pacer, wall).poll(session_for(), REGION)
    saved = Checkpoints(tmp_path / "data").get(f"lookup-events|{ACCOUNT}|{REGION}")
    token_page_2 = f"tok-50-{T_2200}-{T_2200 + 10 * MINUTE}"
    assert saved == {"done_until": T_2200, "window": {
        "start": T_2200, "end": T_2200 + 10 * MINUTE, "next_token": token_page_2}}
    assert count(store) == 50

    resumed = make_poller(store, tmp_path / "data", pacer, wall).poll(session_for(), REGION)
    assert (resumed.stored, resumed.pages) == (57, 2)
    assert fake_aws.state.lookup_calls[2].token == token_page_2
    assert count(store) == 107


def test_expired_token_after_restart_rereads_the_window(
        aws_env: dict[str, str], fake_aws: FakeAws, samples: Path, store: DuckDBStore,
        tmp_path: Path, pacer: Pacer) -> None:
    fake_aws.state.add_records(ACCOUNT, REGION, timed_records(samples, 60, T_2200))
    Checkpoints(tmp_path / "data").save(f"lookup-events|{ACCOUNT}|{REGION}", {
        "done_until": T_2200, "window": {"start": T_2200, "end": T_2200 + 10 * MINUTE,
                                         "next_token": "tok-50-1-2"}})
    wall = MovingClock(T_2200 + 10 * MINUTE)
    result = make_poller(store, tmp_path / "data", pacer, wall).poll(session_for(), REGION)
    assert (result.stored, result.pages) == (60, 2)
    assert [c.token for c in fake_aws.state.lookup_calls] == [
        "tok-50-1-2", None, f"tok-50-{T_2200}-{T_2200 + 10 * MINUTE}"]


def test_late_event_is_caught_by_the_overlap(
        aws_env: dict[str, str], fake_aws: FakeAws, samples: Path, store: DuckDBStore,
        tmp_path: Path, pacer: Pacer) -> None:
    records = timed_records(samples, 11, T_2200, step_s=60)  # 22:00 ... 22:10
    fake_aws.state.add_records(ACCOUNT, REGION, records[:10])
    wall = MovingClock(T_2200 + 10 * MINUTE)
    make_poller(store, tmp_path / "data", pacer, wall, overlap_min=15).poll(
        session_for(), REGION)
    assert count(store) == 10

    # CloudTrail shows an event from 22:07 only now, after the first poll's window closed.
    late = {**records[10], "eventTime": "2023-11-14T22:07:30Z"}
    fake_aws.state.add_records(ACCOUNT, REGION, [late])
    wall.now_ms = T_2200 + 20 * MINUTE
    second = make_poller(store, tmp_path / "data", pacer, wall, overlap_min=15).poll(
        session_for(), REGION)
    assert (second.stored, second.duplicates) == (1, 10)
    assert count(store) == 11


def test_polling_the_same_period_twice_stores_every_event_once(
        aws_env: dict[str, str], fake_aws: FakeAws, samples: Path, store: DuckDBStore,
        tmp_path: Path, pacer: Pacer) -> None:
    fake_aws.state.add_records(ACCOUNT, REGION, timed_records(samples, 120, T_2200))
    wall = MovingClock(T_2200 + 10 * MINUTE)
    for data_dir in ("first-checkpoints", "second-checkpoints"):
        make_poller(store, tmp_path / data_dir, pacer, wall).poll(session_for(), REGION)
    assert count(store) == 120
    assert count(store, "a_provider = 'CloudTrail'") == 120
    assert len(fake_aws.state.lookup_calls) == 6


def test_pacer_spaces_calls_per_account_and_region() -> None:
    clock = FakeClock(start=0.0)
    pacer = Pacer(interval=0.5, clock=clock, sleep=clock.sleep)
    moments: list[tuple[str, float]] = []
    for key in [("a", "us-east-1")] * 3 + [("a", "eu-west-1"), ("b", "us-east-1")]:
        pacer.call(key, lambda k=key: moments.append((f"{k[0]}/{k[1]}", clock.now)))
    assert moments == [("a/us-east-1", 0.0), ("a/us-east-1", 0.5), ("a/us-east-1", 1.0),
                       ("a/eu-west-1", 1.0), ("b/us-east-1", 1.0)]


def test_throttled_past_the_last_attempt_says_trailguards_attempts_and_wait(
        aws_env: dict[str, str], fake_aws: FakeAws, samples: Path, store: DuckDBStore,
        tmp_path: Path, clock: FakeClock, pacer: Pacer) -> None:
    fake_aws.state.add_records(ACCOUNT, REGION, timed_records(samples, 3, T_2200))
    fake_aws.state.throttle_page(ACCOUNT, REGION, page=1, times=8)
    poller = make_poller(store, tmp_path / "data", pacer, MovingClock(T_2200 + 10 * MINUTE))

    with pytest.raises(SourceError) as error:
        poller.poll(session_for(), REGION)

    # 8 attempts, 7 waits between them: 1 + 2 + 4 + 8 + 16 + 20 + 20 s
    assert str(error.value).startswith(
        "LookupEvents: still throttled by AWS after 8 attempts over 71 s of backoff "
        "(ThrottlingException: Rate exceeded); the next poll resumes from the same page.")
    assert "max retries" not in str(error.value)
    assert [sleep for sleep in clock.sleeps if sleep >= 1] == [1, 2, 4, 8, 16, 20, 20]
    assert Checkpoints(tmp_path / "data").get(f"lookup-events|{ACCOUNT}|{REGION}") is None
