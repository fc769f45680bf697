"""The `sources` section: booleans, account ids and regions are parsed strictly, so a
config that means something else than it says refuses to start (and names the key)."""

from __future__ import annotations

import re

import pytest

from trailguard.errors import ConfigError
from trailguard.sources.settings import parse_sources

ACCOUNT = {"name": "a", "regions": ["us-east-1"]}


@pytest.mark.parametrize(("text", "api", "findings"), [
    ('{"accounts": [], "cloudtrail_api": {"enabled": "false"}}', False, True),
    (('{"accounts": [], "guardduty": {"enabled": "FALSE"}, '
      '"cloudtrail_api": {"enabled": "true"}}'), True, False),
    ("cloudtrail_api: {enabled: false}\nguardduty: {enabled: true}\n", False, True),
    ("cloudtrail_api: {enabled: 'false'}\nguardduty: {enabled: 'false'}\n", False, False),
    ("accounts: []\n", True, True),
])
def test_enabled_strings_from_json_or_yaml_mean_what_they_say(
        text: str, api: bool, findings: bool) -> None:
    parsed = parse_sources(text)
    assert (parsed.cloudtrail_api.enabled, parsed.guardduty.enabled) == (api, findings)


@pytest.mark.parametrize(("section", "value"), [
    ("cloudtrail_api", "no"), ("guardduty", "off"), ("guardduty", 0), ("cloudtrail_api", 1),
    ("cloudtrail_api", ""), ("guardduty", None),
])
def test_anything_else_for_enabled_is_refused_naming_the_key(section: str,
                                                             value: object) -> None:
    with pytest.raises(ConfigError) as error:
        parse_sources({section: {"enabled": value}})
    assert str(error.value) == (f"sources: {section}.enabled must be true or false, "
                                f"not {value!r}")


def test_unquoted_account_id_in_yaml_says_quote_it() -> None:
    # YAML 1.1 reads a leading zero as octal: 011122223333 -> 1229530843.
    with pytest.raises(ConfigError) as error:
        parse_sources("accounts:\n  - {name: a, account_id: 011122223333}\n")
    assert str(error.value).startswith(
        "sources.accounts[0].account_id: quote it, e.g. account_id: \"111122223333\" "
        "(YAML read 1229530843 as a number")
    with pytest.raises(ConfigError, match="account_id: quote it"):
        parse_sources("accounts:\n  - {name: a, account_id: 111122223333}\n")


@pytest.mark.parametrize("bad", ["abc", "12345", "1111222233334", "11112222333a", True, [1]])
def test_account_id_must_be_twelve_digits(bad: object) -> None:
    with pytest.raises(ConfigError) as error:
        parse_sources({"accounts": [{**ACCOUNT, "account_id": bad}]})
    assert str(error.value) == ("sources.accounts[0].account_id must be the 12-digit AWS "
                                f"account id in quotes, like \"111122223333\", not {bad!r}")


def test_quoted_account_id_keeps_its_leading_zero() -> None:
    parsed = parse_sources("accounts:\n  - {account_id: '011122223333'}\n")
    assert (parsed.accounts[0].account_id, parsed.accounts[0].name) == (
        "011122223333", "011122223333")


@pytest.mark.parametrize(("account", "key", "bad"), [
    ({"regions": ["not-a-region"]}, "sources.accounts[0].regions[0]", "not-a-region"),
    ({"regions": ["us-east-1", "US-EAST-1"]}, "sources.accounts[0].regions[1]", "US-EAST-1"),
    ({"regions": ["us-east-1", 5]}, "sources.accounts[0].regions[1]", 5),
    ({"home_region": "useast1"}, "sources.accounts[0].home_region", "useast1"),
])
def test_region_names_are_checked(account: dict[str, object], key: str, bad: object) -> None:
    with pytest.raises(ConfigError) as error:
        parse_sources({"accounts": [{**ACCOUNT, **account}]})
    assert str(error.value) == (f"{key} must be an AWS region name like us-east-1 or "
                                f"eu-west-2, not {bad!r}")


def test_bucket_region_is_checked() -> None:
    with pytest.raises(ConfigError, match=re.escape(
            "sources.cloudtrail_buckets[0].bucket_region must be an AWS region name")):
        parse_sources({"accounts": [ACCOUNT], "cloudtrail_buckets": [
            {"bucket": "b", "account": "a", "bucket_region": "everywhere"}]})


@pytest.mark.parametrize("regions", ["none", [], "us-east-1"])
def test_regions_must_be_a_list_or_all(regions: object) -> None:
    with pytest.raises(ConfigError, match=re.escape(
            "sources.accounts[0].regions must be a list of region names or 'all'")):
        parse_sources({"accounts": [{**ACCOUNT, "regions": regions}]})


def test_real_region_names_and_all_are_accepted() -> None:
    regions = ["us-east-1", "eu-central-2", "ap-southeast-4", "us-gov-west-1", "cn-north-1",
               "us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1", "il-central-1"]
    parsed = parse_sources({"accounts": [{**ACCOUNT, "regions": regions,
                                          "home_region": "us-gov-west-1"},
                                         {"name": "b", "regions": "all"}]})
    assert parsed.accounts[0].regions == regions
    assert parsed.accounts[0].home_region == "us-gov-west-1"
    assert parsed.accounts[1].regions == "all"
