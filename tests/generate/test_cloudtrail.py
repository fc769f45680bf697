"""CloudTrail record generation: the mix, identity shapes, errors, times, determinism."""

from __future__ import annotations

import re
import uuid
from collections import Counter

import orjson
import pytest

from trailguard.generate import generate_cloudtrail, iter_cloudtrail_records
from trailguard.ingest.timestamps import parse_iso_ms

START_MS = 1_700_000_000_250
END_MS = START_MS + 86_400_000
COUNT = 20_000


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return generate_cloudtrail(21, START_MS, END_MS, COUNT)


def test_times_inside_the_range_in_order(records: list[dict]) -> None:
    times = [parse_iso_ms(record["eventTime"]) for record in records]
    assert len(times) == COUNT
    assert times == sorted(times)
    assert START_MS <= times[0] and times[-1] < END_MS


def test_common_fields(records: list[dict]) -> None:
    for record in records:
        assert record["eventVersion"] in ("1.08", "1.09")
        assert record["eventType"] in ("AwsApiCall", "AwsConsoleSignIn")
        assert (record["managementEvent"], record["eventCategory"]) == (True, "Management")
        assert record["recipientAccountId"] in ("111122223333", "444455556666")
        assert uuid.UUID(record["eventID"]).version == 4
        assert isinstance(record["readOnly"], bool)
    assert len({record["eventID"] for record in records}) == COUNT


def test_mostly_read_only(records: list[dict]) -> None:
    read_only = sum(record["readOnly"] for record in records)
    assert 0.7 * COUNT <= read_only <= 0.9 * COUNT
    names = Counter(record["eventName"] for record in records)
    assert names.most_common(1)[0][0] == "DescribeInstances"


def test_console_logins_succeed_and_fail_with_mfa_flag(records: list[dict]) -> None:
    logins = [record for record in records if record["eventName"] == "ConsoleLogin"]
    outcomes = Counter((record["responseElements"]["ConsoleLogin"],
                        record["additionalEventData"]["MFAUsed"]) for record in logins)
    assert set(outcomes) == {("Success", "Yes"), ("Success", "No"), ("Failure", "No")}
    for record in logins:
        assert record["eventType"] == "AwsConsoleSignIn"
        assert record["eventSource"] == "signin.amazonaws.com"
        failed = record["responseElements"]["ConsoleLogin"] == "Failure"
        assert ("errorMessage" in record) == failed
        assert record["userIdentity"]["type"] in ("IAMUser", "Root")


def test_access_denied_carries_code_and_message(records: list[dict]) -> None:
    errors = [record for record in records if "errorCode" in record]
    assert {record["errorCode"] for record in errors} == {
        "AccessDenied", "Client.UnauthorizedOperation"}
    for record in errors:
        assert record["responseElements"] is None
        if record["errorCode"] == "AccessDenied":
            action = f"{record['eventSource'].split('.')[0]}:{record['eventName']}"
            assert record["errorMessage"] == (
                f"User: {record['userIdentity']['arn']} is not authorized to perform: "
                f"{action} because no identity-based policy allows the {action} action")


@pytest.mark.parametrize(("identity_type", "keys"), [
    ("IAMUser", {"type", "principalId", "arn", "accountId", "accessKeyId", "userName"}),
    ("AssumedRole", {"type", "principalId", "arn", "accountId", "accessKeyId",
                     "sessionContext"}),
    ("Root", {"type", "principalId", "arn", "accountId", "accessKeyId", "sessionContext"}),
    ("AWSService", {"type", "invokedBy"}),
])
def test_user_identity_shapes(records: list[dict], identity_type: str, keys: set[str]) -> None:
    api_calls = [record for record in records if record["userIdentity"]["type"] == identity_type
                 and record["eventName"] != "ConsoleLogin"]
    assert api_calls
    for record in api_calls:
        assert set(record["userIdentity"]) == keys


def test_assumed_role_session_names_its_role(records: list[dict]) -> None:
    for record in records:
        identity = record["userIdentity"]
        if identity["type"] == "AssumedRole":
            issuer = identity["sessionContext"]["sessionIssuer"]
            role = issuer["userName"]
            assert issuer["arn"] == f"arn:aws:iam::{identity['accountId']}:role/{role}"
            assert identity["arn"].startswith(
                f"arn:aws:sts::{identity['accountId']}:assumed-role/{role}/")
            assert identity["principalId"].startswith(issuer["principalId"] + ":")


def test_service_calls_come_from_the_service(records: list[dict]) -> None:
    for record in records:
        if record["userIdentity"]["type"] == "AWSService":
            service = record["userIdentity"]["invokedBy"]
            assert record["sourceIPAddress"] == record["userAgent"] == service
            assert record["eventName"] == "AssumeRole"
            assert "tlsDetails" not in record


def test_rare_but_present_kinds(records: list[dict]) -> None:
    names = Counter(record["eventName"] for record in records)
    for name in ("StopLogging", "CreateAccessKey", "AttachUserPolicy", "PutBucketPolicy",
                 "RunInstances", "AuthorizeSecurityGroupIngress"):
        assert names[name] > 0, name
    root_calls = [record for record in records if record["userIdentity"]["type"] == "Root"
                  and record["eventName"] != "ConsoleLogin"]
    assert root_calls


def test_some_records_have_big_request_parameters(records: list[dict]) -> None:
    sizes = [len(orjson.dumps(record["requestParameters"])) for record in records]
    assert max(sizes) > 4000
    assert sum(size > 1000 for size in sizes) >= 20


def test_only_placeholder_addresses(records: list[dict]) -> None:
    addresses = {record["sourceIPAddress"] for record in records}
    assert {address for address in addresses if re.fullmatch(r"[\d.]+", address)
            and not address.startswith(("198.51.100.", "203.0.113.", "192.0.2."))} == set()


def test_same_seed_same_records_other_seed_other_records() -> None:
    first = orjson.dumps(generate_cloudtrail(5, START_MS, END_MS, 500))
    assert orjson.dumps(list(iter_cloudtrail_records(5, START_MS, END_MS, 500))) == first
    assert orjson.dumps(generate_cloudtrail(6, START_MS, END_MS, 500)) != first


def test_range_without_a_whole_second_is_refused() -> None:
    with pytest.raises(ValueError, match="no whole second"):
        generate_cloudtrail(1, 1_000_001, 1_000_900, 3)
