"""Retention: per event type, default forever, content keys and old delivery keys go too."""

from __future__ import annotations

from pathlib import Path

import pytest

from trailguard.config import load_config
from trailguard.errors import ConfigError
from trailguard.events import INFRASTRUCTURE_EVENT, LOG, Event
from trailguard.store import Delivery, DuckDBStore, WriteResult
from trailguard.store.retention import (
    DAY_MS,
    RetentionJob,
    enforce_retention,
    expire_in_slices,
)

NOW = 1_700_000_000_000


@pytest.fixture
def store(tmp_path: Path):
    opened = DuckDBStore(tmp_path)
    yield opened
    opened.close()


def event(event_type: str, age_days: float, name: str) -> Event:
    return Event(event_type, NOW - int(age_days * DAY_MS), {"message": name}, f"k:{name}")


def kept(store: DuckDBStore) -> list[tuple[str, str]]:
    rows = store.read("SELECT event_type, a_message FROM events ORDER BY 1, 2", {}).rows
    return [tuple(row) for row in rows]


def fill(store: DuckDBStore) -> None:
    store.write_deliveries([
        Delivery([event(LOG, 100, "old-log"), event(LOG, 10, "new-log"),
                  event(INFRASTRUCTURE_EVENT, 400, "old-ct")], "req-old", NOW - 8 * DAY_MS),
        Delivery([event(INFRASTRUCTURE_EVENT, 1, "new-ct")], "req-new", NOW - DAY_MS)])


def test_only_listed_types_expire(store):
    fill(store)

    removed = enforce_retention(store, {LOG: 30}, NOW)

    assert removed == {LOG: 1, "(delivery keys)": 1}
    assert kept(store) == [(INFRASTRUCTURE_EVENT, "new-ct"), (INFRASTRUCTURE_EVENT, "old-ct"),
                           (LOG, "new-log")]
    assert store.read("SELECT request_id FROM delivery_requests", {}).rows == [("req-new",)]


def test_no_setting_keeps_every_event(store):
    fill(store)

    assert enforce_retention(store, {}, NOW) == {"(delivery keys)": 1}
    assert len(kept(store)) == 4


def test_an_expired_event_delivered_again_is_stored_again_and_expires_again(store):
    fill(store)
    enforce_retention(store, {LOG: 30, INFRASTRUCTURE_EVENT: 365}, NOW)

    assert store.write([event(LOG, 100, "old-log")]) == WriteResult(1, 0)
    assert store.write([event(LOG, 10, "new-log")]) == WriteResult(0, 1)
    assert enforce_retention(store, {LOG: 30}, NOW)[LOG] == 1


def test_the_job_runs_at_start_with_its_clock(store):
    fill(store)
    job = RetentionJob(store, {INFRASTRUCTURE_EVENT: 365}, interval_s=3600,
                       clock=lambda: NOW / 1000)

    assert job.run_once() == {INFRASTRUCTURE_EVENT: 1, "(delivery keys)": 1}
    assert job.run_once() == {INFRASTRUCTURE_EVENT: 0, "(delivery keys)": 0}
    assert job.runs == 2


@pytest.mark.parametrize(("raw", "expected"), [
    ('{"Log": 90}', {"Log": 90.0}), ('{"Log": 0.5, "InfrastructureEvent": 365}',
                                     {"Log": 0.5, "InfrastructureEvent": 365.0}), ("", {})])
def test_retention_from_the_environment(raw, expected):
    config = load_config(environ={"TRAILGUARD_RETENTION_DAYS": raw} if raw else {})
    assert config.retention_days == expected


@pytest.mark.parametrize(("raw", "message"), [
    ('{"Log": 0}', "Log: 0 is not a positive number of days"),
    ('{"Log": "x"}', "Log: 'x' is not a positive number of days"),
    ("[90]", "must map event types to days")])
def test_bad_retention_names_the_key(raw, message):
    with pytest.raises(ConfigError, match=f"configuration key retention_days: {message}"):
        load_config(environ={"TRAILGUARD_RETENTION_DAYS": raw})


def test_a_long_history_is_deleted_in_slices_oldest_first(store):
    # 30 events an hour apart; the 20 oldest are past the cutoff.
    store.write([Event(LOG, NOW - hours * 3_600_000, {"message": f"h{hours}"}, f"k:h{hours}")
                 for hours in range(30)])
    calls: list[int] = []
    real_expire = store.expire

    def expire(event_type: str, before_ms: int) -> int:
        deleted = real_expire(event_type, before_ms)
        calls.append(deleted)
        return deleted

    store.expire = expire
    cutoff = NOW - 9 * 3_600_000  # events 10..29 hours old are past it

    assert expire_in_slices(store, LOG, cutoff, slice_events=4) == 20
    assert len(calls) > 2 and max(calls) <= 8  # many small transactions, not one big one
    assert sorted(row[0] for row in kept(store)) == [LOG] * 10


def test_a_stopping_job_leaves_the_rest_for_its_next_pass(store):
    store.write([Event(LOG, NOW - hours * 3_600_000, {"message": f"h{hours}"}, f"k:h{hours}")
                 for hours in range(10, 30)])

    assert expire_in_slices(store, LOG, NOW, slice_events=4, stopping=lambda: True) == 0
    assert len(kept(store)) == 20
    assert store.oldest(LOG) == NOW - 29 * 3_600_000
    assert store.oldest(INFRASTRUCTURE_EVENT) is None
