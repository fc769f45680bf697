"""The `sources` section of the config: which AWS accounts, regions and feeds to pull.

Plain typed data, parsed from the YAML mapping (or a `TRAILGUARD_SOURCES` JSON/YAML
string); no AWS calls here. See docs/aws-sources.md for an example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from trailguard.errors import ConfigError

MAX_BACKFILL_MS = 90 * 24 * 3600 * 1000  # LookupEvents keeps 90 days; so does the poller
ALL_REGIONS = "all"
MIN_INTERVAL_MS = 1000
MAX_LOOKBACK_DAYS = 31
_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
# AWS's own region pattern: us-east-1, eu-central-2, us-gov-west-1, us-isob-east-1, ...
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_BOOLEANS = {"true": True, "false": False}


@dataclass(slots=True)
class AccountSource:
    """One AWS account: how to get credentials for it and which regions to read."""

    name: str
    account_id: str | None = None
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    regions: list[str] | str = field(default_factory=lambda: ["us-east-1"])
    home_region: str = "us-east-1"


@dataclass(slots=True)
class LookupEventsSource:
    """CloudTrail LookupEvents polling for every configured account and region."""

    enabled: bool = True
    backfill_ms: int = 86_400_000
    overlap_ms: int = 15 * 60_000


@dataclass(slots=True)
class TrailBucketSource:
    """CloudTrail log files in one S3 bucket, optionally announced through SQS."""

    bucket: str
    account: str
    prefix: str = ""
    bucket_region: str = "us-east-1"
    queue_url: str | None = None
    # Day folders before the newest one listed again, for files CloudTrail delivers
    # into a day that has already begun a later folder (e.g. just after midnight).
    lookback_days: int = 1


@dataclass(slots=True)
class FindingsSource:
    """GuardDuty ListFindings/GetFindings for every configured account and region."""

    enabled: bool = True
    backfill_ms: int = 30 * 86_400_000


@dataclass(slots=True)
class SourcesConfig:
    """Everything `trailguard poll` reads."""

    accounts: list[AccountSource] = field(default_factory=list)
    cloudtrail_api: LookupEventsSource = field(default_factory=LookupEventsSource)
    cloudtrail_buckets: list[TrailBucketSource] = field(default_factory=list)
    guardduty: FindingsSource = field(default_factory=FindingsSource)
    interval_ms: int = 5 * 60_000  # between poll starts: `poll` and `serve`

    def account(self, name: str) -> AccountSource:
        """The account called `name`; `ConfigError` when there is none."""
        for account in self.accounts:
            if account.name == name:
                return account
        raise ConfigError(f"sources: no account named {name!r} (known: "
                          f"{', '.join(a.name for a in self.accounts) or 'none'})")


def parse_duration_ms(raw: Any, key: str) -> int:
    """`'15m'`, `'7d'`, `'12h'`, `'30s'` (or a number of seconds) as milliseconds."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return int(raw * 1000)
    match = _DURATION.match(str(raw))
    if not match:
        raise ConfigError(f"sources: {key} must be a duration like 15m, 12h or 7d, not {raw!r}")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_bool(raw: Any, key: str) -> bool:
    """`true`/`false`, or the strings "true"/"false" (JSON in `TRAILGUARD_SOURCES`).

    Anything else is a `ConfigError`: `bool("false")` is True, and a switch that reads
    "off" as on is worse than one that refuses to start.
    """
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _BOOLEANS:
        return _BOOLEANS[raw.strip().lower()]
    raise ConfigError(f"sources: {key} must be true or false, not {raw!r}")


def parse_region(raw: Any, key: str) -> str:
    """A region name like `us-east-1`; `ConfigError` naming `key` for anything else."""
    if not isinstance(raw, str) or not _REGION.match(raw):
        raise ConfigError(f"{key} must be an AWS region name like us-east-1 or eu-west-2, "
                          f"not {raw!r}")
    return raw


def parse_account_id(raw: Any, key: str) -> str | None:
    """A 12-digit account id as a string, or None when not given."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        # YAML reads 111122223333 as a number and 011122223333 as octal 1229530843:
        # digits may already be lost, so only a quoted id can be trusted.
        raise ConfigError(f"{key}: quote it, e.g. account_id: \"111122223333\" (YAML read "
                          f"{raw!r} as a number, which drops leading zeros or reads octal)")
    if not isinstance(raw, str) or not _ACCOUNT_ID.match(raw):
        raise ConfigError(f"{key} must be the 12-digit AWS account id in quotes, "
                          f"like \"111122223333\", not {raw!r}")
    return raw


def parse_sources(raw: Any) -> SourcesConfig:
    """Validate the `sources` mapping; raises `ConfigError` naming the bad key."""
    if isinstance(raw, SourcesConfig):
        return raw
    if isinstance(raw, str):
        raw = yaml.safe_load(raw) or {}
    if not isinstance(raw, dict):
        raise ConfigError("sources must be a mapping (accounts, cloudtrail_api, ...)")
    _reject_unknown(raw, {"accounts", "cloudtrail_api", "cloudtrail_buckets", "guardduty",
                          "interval"}, "sources")
    config = SourcesConfig(
        accounts=[_account(item, index) for index, item in enumerate(raw.get("accounts") or [])],
        cloudtrail_api=_lookup_events(raw.get("cloudtrail_api") or {}),
        cloudtrail_buckets=[_bucket(item, index)
                            for index, item in enumerate(raw.get("cloudtrail_buckets") or [])],
        guardduty=_findings(raw.get("guardduty") or {}),
        interval_ms=_interval(raw.get("interval", "5m")),
    )
    for bucket in config.cloudtrail_buckets:
        config.account(bucket.account)
    names = [account.name for account in config.accounts]
    if len(set(names)) != len(names):
        raise ConfigError(f"sources.accounts: names must be unique, got {names}")
    return config


def _interval(raw: Any) -> int:
    interval = parse_duration_ms(raw, "interval")
    if interval < MIN_INTERVAL_MS:
        raise ConfigError(f"sources.interval must be at least 1s, not {raw!r} "
                          "(5m is a good start)")
    return interval


def _account(raw: Any, index: int) -> AccountSource:
    where = f"sources.accounts[{index}]"
    _require_mapping(raw, where)
    _reject_unknown(raw, {"name", "account_id", "profile", "role_arn", "external_id",
                          "regions", "home_region"}, where)
    if raw.get("external_id") and not raw.get("role_arn"):
        raise ConfigError(f"{where}: external_id needs role_arn (the role to assume)")
    account_id = parse_account_id(raw.get("account_id"), f"{where}.account_id")
    return AccountSource(
        name=str(raw.get("name") or account_id or f"account-{index}"),
        account_id=account_id,
        profile=_optional_str(raw.get("profile")),
        role_arn=_optional_str(raw.get("role_arn")),
        external_id=_optional_str(raw.get("external_id")),
        regions=_regions(raw.get("regions", ["us-east-1"]), f"{where}.regions"),
        home_region=parse_region(raw.get("home_region", "us-east-1"), f"{where}.home_region"),
    )


def _regions(raw: Any, where: str) -> list[str] | str:
    if raw == ALL_REGIONS:
        return ALL_REGIONS
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where} must be a list of region names or 'all', not {raw!r}")
    return [parse_region(region, f"{where}[{index}]") for index, region in enumerate(raw)]


def _lookup_events(raw: Any) -> LookupEventsSource:
    _require_mapping(raw, "sources.cloudtrail_api")
    _reject_unknown(raw, {"enabled", "backfill", "overlap"}, "sources.cloudtrail_api")
    backfill = parse_duration_ms(raw.get("backfill", "1d"), "cloudtrail_api.backfill")
    if backfill > MAX_BACKFILL_MS:
        raise ConfigError("sources.cloudtrail_api.backfill: LookupEvents keeps 90 days; "
                          "use 90d or less (older events: import the trail's S3 files)")
    return LookupEventsSource(
        enabled=parse_bool(raw.get("enabled", True), "cloudtrail_api.enabled"),
        backfill_ms=backfill,
        overlap_ms=parse_duration_ms(raw.get("overlap", "15m"), "cloudtrail_api.overlap"))


def _bucket(raw: Any, index: int) -> TrailBucketSource:
    where = f"sources.cloudtrail_buckets[{index}]"
    _require_mapping(raw, where)
    _reject_unknown(raw, {"bucket", "account", "prefix", "bucket_region", "queue_url",
                          "lookback_days"}, where)
    if not raw.get("bucket") or not raw.get("account"):
        raise ConfigError(f"{where}: needs bucket and account (the name of an account entry "
                          "whose credentials can read it)")
    prefix = str(raw.get("prefix") or "")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return TrailBucketSource(
        bucket=str(raw["bucket"]), account=str(raw["account"]), prefix=prefix,
        bucket_region=parse_region(raw.get("bucket_region", "us-east-1"),
                                   f"{where}.bucket_region"),
        queue_url=_optional_str(raw.get("queue_url")),
        lookback_days=_lookback_days(raw.get("lookback_days", 1), where))


def _lookback_days(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_LOOKBACK_DAYS:
        raise ConfigError(f"{where}.lookback_days must be a whole number of days from 0 to "
                          f"{MAX_LOOKBACK_DAYS}, not {raw!r}")
    return raw


def _findings(raw: Any) -> FindingsSource:
    _require_mapping(raw, "sources.guardduty")
    _reject_unknown(raw, {"enabled", "backfill"}, "sources.guardduty")
    backfill = parse_duration_ms(raw.get("backfill", "30d"), "guardduty.backfill")
    if backfill > MAX_BACKFILL_MS:
        raise ConfigError("sources.guardduty.backfill: GuardDuty keeps findings 90 days; "
                          "use 90d or less")
    return FindingsSource(enabled=parse_bool(raw.get("enabled", True), "guardduty.enabled"),
                          backfill_ms=backfill)


def _require_mapping(raw: Any, where: str) -> None:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, not {type(raw).__name__}")


def _reject_unknown(raw: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(known))})")


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
