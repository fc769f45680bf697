"""`trailguard poll --once` end to end: config file, profiles, AssumeRole, two accounts
x two regions, LookupEvents and GuardDuty through the fake, all over real HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sources.fake_aws import FakeAws
from sources.support import sample_records

from trailguard.cli import main
from trailguard.errors import ConfigError
from trailguard.sources.aws import open_account
from trailguard.sources.settings import AccountSource, parse_sources
from trailguard.store import DuckDBStore

ACCOUNT_A, ACCOUNT_B = "111122223333", "444455556666"
CONFIG = """\
sources:
  accounts:
    - {name: a, profile: account-a, account_id: "111122223333", regions: [us-east-1, eu-west-1]}
    - {name: b, profile: account-b, account_id: "444455556666", regions: [us-east-1, eu-west-1]}
  cloudtrail_api: {backfill: 2h, overlap: 15m}
  guardduty: {backfill: 1d}
"""
PER_KEY = {(ACCOUNT_A, "us-east-1"): 3, (ACCOUNT_A, "eu-west-1"): 4,
           (ACCOUNT_B, "us-east-1"): 5, (ACCOUNT_B, "eu-west-1"): 6}


def _recent(seconds_ago: int) -> str:
    moment = datetime.fromtimestamp(time.time() - seconds_ago, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_poll_once_two_accounts_two_regions_twice_stores_each_event_once(
        aws_env: dict[str, str], fake_aws: FakeAws, samples: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    records = iter(sample_records(samples))
    for (account, region), how_many in PER_KEY.items():
        fake_aws.state.add_records(account, region, [
            {**next(records), "recipientAccountId": account, "awsRegion": region,
             "eventTime": _recent(600 + index)} for index in range(how_many)])
    fake_aws.state.put_finding(ACCOUNT_B, "us-east-1", "detector-b", {
        "id": "finding-b-1", "type": "Recon:EC2/PortProbeUnprotectedPort", "severity": 2.0,
        "accountId": ACCOUNT_B, "region": "us-east-1", "schemaVersion": "2.0",
        "createdAt": _recent(900), "updatedAt": _recent(900),
        "service": {"serviceName": "guardduty", "count": 3, "archived": False}})
    config = tmp_path / "trailguard.yaml"
    config.write_text(CONFIG)
    argv = ["--config", str(config), "poll", "--once", "--no-progress",
            "--data-dir", str(tmp_path / "data")]

    assert main(argv) == 0
    assert main(argv) == 0

    store = DuckDBStore(tmp_path / "data", read_only=True)
    try:
        rows = store.read("SELECT a_recipientaccountid, a_awsregion, count(*) FROM events "
                          "WHERE a_provider = 'CloudTrail' GROUP BY ALL ORDER BY ALL", {}).rows
        findings = store.read("SELECT a_detail__id, a_account, a_detail__service__count "
                              "FROM events WHERE a_source = 'aws.guardduty'", {}).rows
    finally:
        store.close()
    assert rows == [(ACCOUNT_A, "eu-west-1", 4), (ACCOUNT_A, "us-east-1", 3),
                    (ACCOUNT_B, "eu-west-1", 6), (ACCOUNT_B, "us-east-1", 5)]
    assert findings == [("finding-b-1", ACCOUNT_B, 3.0)]
    output = capsys.readouterr().out
    assert "Polled 10 sources: 19 new events (0 already stored, 0 failed)." in output
    assert "Polled 10 sources: 0 new events (19 already stored, 0 failed)." in output


def test_assume_role_with_external_id_and_all_enabled_regions(aws_env: dict[str, str]) -> None:
    account = AccountSource(name="member", role_arn="arn:aws:iam::222233334444:role/reader",
                            external_id="trailguard-ext-1", regions="all")
    opened = open_account(account)
    credentials = opened.session.get_credentials()
    assert opened.account_id == "222233334444"
    assert credentials.access_key.startswith("ASIA") and credentials.token
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= set(opened.regions)
    assert opened.regions == sorted(opened.regions)


def test_poll_without_sources_says_what_to_do(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "trailguard.yaml"
    config.write_text("log_level: info\n")
    assert main(["--config", str(config), "poll", "--once",
                 "--data-dir", str(tmp_path / "data")]) == 1
    assert "no AWS sources configured" in capsys.readouterr().err


@pytest.mark.parametrize(("raw", "message"), [
    ({"accounts": [{"name": "a"}], "cloudtrail_api": {"backfill": "91d"}},
     "LookupEvents keeps 90 days"),
    ({"accounts": [{"name": "a", "external_id": "x"}]}, "external_id needs role_arn"),
    ({"accounts": [{"name": "a", "regions": "some"}]}, "must be a list of region names"),
    ({"cloudtrail_buckets": [{"bucket": "b", "account": "nobody"}]}, "no account named"),
    ({"accounts": [], "pollers": {}}, "unknown key(s) pollers"),
    ({"cloudtrail_api": {"overlap": "soon"}}, "duration like 15m"),
    ({"interval": "0s"}, "sources.interval must be at least 1s"),
    ({"accounts": [{"name": "a"}], "cloudtrail_buckets": [
        {"bucket": "b", "account": "a", "lookback_days": 40}]},
     "lookback_days must be a whole number of days from 0 to 31, not 40"),
])
def test_bad_sources_config_names_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_sources(raw)


def test_sources_config_values() -> None:
    parsed = parse_sources({"accounts": [{"name": "org-member", "role_arn": "arn:r",
                                          "external_id": "e", "regions": "all"}],
                            "cloudtrail_api": {"backfill": "90d", "overlap": "5m"},
                            "cloudtrail_buckets": [{"bucket": "trail", "account": "org-member",
                                                    "prefix": "org"}],
                            "interval": "1m"})
    assert (parsed.cloudtrail_api.backfill_ms, parsed.cloudtrail_api.overlap_ms) == (
        7_776_000_000, 300_000)
    assert (parsed.cloudtrail_buckets[0].prefix, parsed.interval_ms) == ("org/", 60_000)
    assert parsed.accounts[0].regions == "all"


def test_poll_while_the_data_dir_is_held_points_at_the_server(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    DuckDBStore(data_dir).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_STORE, str(data_dir)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        config = tmp_path / "trailguard.yaml"
        config.write_text(CONFIG)
        code = main(["--config", str(config), "poll", "--once", "--data-dir", str(data_dir)])
    finally:
        holder.kill()
        holder.wait()
    assert code == 1
    assert "POST /api/v1/sources/poll" in capsys.readouterr().err


# Another process with the store open, as a running server has it.
HOLD_STORE = """
import sys, time
from pathlib import Path
from trailguard.store import DuckDBStore
store = DuckDBStore(Path(sys.argv[1]))
print("holding", flush=True)
time.sleep(60)
"""
