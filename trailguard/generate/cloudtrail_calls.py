"""The AWS API calls the CloudTrail generator draws from, with their parameters.

Read-only calls log `requestParameters` and no `responseElements`, as CloudTrail
does; writes log both. A few writes carry the large parameters real trails are
full of (RunInstances, bucket and role policies). Builders return fresh dicts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from trailguard.generate.common import (
    BUCKET_NAMES,
    ROLE_NAMES,
    USER_NAMES,
    hex_id,
    key_id,
    uuid4,
)

Params = dict[str, Any] | None
Builder = Callable[[random.Random, str, str, int], Params]


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One API an account's principals call, and how often relative to the others."""

    source: str
    name: str
    read_only: bool
    weight: int
    request: Builder
    response: Builder | None = None

    @property
    def service(self) -> str:
        """`ec2` of `ec2.amazonaws.com`, the prefix IAM actions use."""
        return self.source.split(".", 1)[0]


def _sdk_date(ms: int) -> str:
    """`Sep 27, 2022, 5:09:18 PM`, how CloudTrail prints dates inside IAM/STS responses."""
    moment = time.gmtime(ms // 1000)
    hour = moment.tm_hour % 12 or 12
    half = "PM" if moment.tm_hour >= 12 else "AM"
    return (f"{time.strftime('%b', moment)} {moment.tm_mday}, {moment.tm_year}, "
            f"{hour}:{moment.tm_min:02d}:{moment.tm_sec:02d} {half}")


def _none(rng: random.Random, account: str, region: str, ms: int) -> Params:
    return None


def _const(value: dict[str, Any]) -> Builder:
    text = orjson.dumps(value)
    return lambda rng, account, region, ms: orjson.loads(text)


def _bucket(rng: random.Random, account: str, region: str, ms: int) -> Params:
    name = rng.choice(BUCKET_NAMES)
    return {"bucketName": name, "Host": f"{name}.s3.{region}.amazonaws.com"}


def _bucket_with(key: str) -> Builder:
    def build(rng: random.Random, account: str, region: str, ms: int) -> Params:
        params = _bucket(rng, account, region, ms)
        assert params is not None
        params[key] = ""
        return params
    return build


def _field(key: str, choices: tuple[str, ...]) -> Builder:
    return lambda rng, account, region, ms: {key: rng.choice(choices)}


def _instance_id(rng: random.Random) -> str:
    return "i-" + hex_id(rng, 17)


def _instances(rng: random.Random, account: str, region: str, ms: int) -> Params:
    return {"instancesSet": {"items": [{"instanceId": _instance_id(rng)}]}}


def _state_change(current: tuple[int, str], previous: tuple[int, str]) -> Builder:
    def build(rng: random.Random, account: str, region: str, ms: int) -> Params:
        item = {"instanceId": _instance_id(rng),
                "currentState": {"code": current[0], "name": current[1]},
                "previousState": {"code": previous[0], "name": previous[1]}}
        return {"requestId": uuid4(rng), "instancesSet": {"items": [item]}}
    return build


def _run_instances(rng: random.Random, account: str, region: str, ms: int) -> Params:
    count = rng.randint(1, 4)
    return {
        "instancesSet": {"items": [{"imageId": "ami-" + hex_id(rng, 17), "minCount": count,
                                    "maxCount": count, "keyName": "example-key"}]},
        "userData": "<sensitiveDataRemoved>",
        "instanceType": rng.choice(("t3.micro", "m5.large", "c5.4xlarge", "p3.2xlarge")),
        "blockDeviceMapping": {"items": [{"deviceName": "/dev/xvda", "ebs": {
            "volumeSize": rng.choice((8, 30, 100)), "deleteOnTermination": True,
            "volumeType": "gp3", "encrypted": True}}]},
        "monitoring": {"enabled": False},
        "disableApiTermination": False,
        "disableApiStop": False,
        "clientToken": uuid4(rng),
        "networkInterfaceSet": {"items": [{
            "deviceIndex": 0, "subnetId": "subnet-" + hex_id(rng, 17),
            "associatePublicIpAddress": rng.random() < 0.3,
            "groupSet": {"items": [{"groupId": "sg-" + hex_id(rng, 17)}]}}]},
        "iamInstanceProfile": {"name": "example-instance-profile"},
        "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": [
            {"key": "Name", "value": "example-worker"}, {"key": "team", "value": "example"},
            {"key": "launched-by", "value": "example-ci"}]}]},
        "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
    }


def _run_instances_response(rng: random.Random, account: str, region: str,
                            ms: int) -> Params:
    items = [{"instanceId": _instance_id(rng), "imageId": "ami-" + hex_id(rng, 17),
              "instanceState": {"code": 0, "name": "pending"},
              "privateIpAddress": f"10.0.{rng.randrange(255)}.{rng.randrange(1, 255)}",
              "launchTime": ms, "placement": {"availabilityZone": region + "a",
                                              "tenancy": "default"},
              "monitoring": {"state": "disabled"}, "architecture": "x86_64",
              "rootDeviceType": "ebs", "rootDeviceName": "/dev/xvda"}]
    return {"requestId": uuid4(rng), "reservationId": "r-" + hex_id(rng, 17),
            "ownerId": account, "groupSet": {}, "instancesSet": {"items": items}}


def _policy_statements(rng: random.Random, resource: str, many: int) -> list[dict[str, Any]]:
    statements = []
    for index in range(many):
        statements.append({
            "Sid": f"ExampleStatement{index}",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::444455556666:role/{rng.choice(ROLE_NAMES)}"},
            "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"][: rng.randint(1, 3)],
            "Resource": [resource, resource + "/*"],
            "Condition": {"IpAddress": {"aws:SourceIp": ["198.51.100.0/24", "203.0.113.0/24"]}},
        })
    return statements


def _put_bucket_policy(rng: random.Random, account: str, region: str, ms: int) -> Params:
    params = _bucket(rng, account, region, ms)
    assert params is not None
    statements = _policy_statements(rng, f"arn:aws:s3:::{params['bucketName']}",
                                     rng.randint(1, 25))
    params["policy"] = ""
    params["bucketPolicy"] = {"Version": "2012-10-17", "Statement": statements}
    return params


def _put_role_policy(rng: random.Random, account: str, region: str, ms: int) -> Params:
    statements = _policy_statements(rng, "arn:aws:s3:::example-data-bucket", rng.randint(1, 12))
    document = {"Version": "2012-10-17", "Statement": statements}
    return {"roleName": rng.choice(ROLE_NAMES), "policyName": "example-inline-policy",
            "policyDocument": orjson.dumps(document).decode()}


def _authorize_ingress(rng: random.Random, account: str, region: str, ms: int) -> Params:
    port = rng.choice((22, 443, 3389, 5432))
    cidr = rng.choice(("0.0.0.0/0", "198.51.100.0/24", "10.0.0.0/16"))
    return {"groupId": "sg-" + hex_id(rng, 17), "ipPermissions": {"items": [{
        "ipProtocol": "tcp", "fromPort": port, "toPort": port, "groups": {},
        "ipRanges": {"items": [{"cidrIp": cidr}]}, "ipv6Ranges": {}, "prefixListIds": {}}]}}


def _user_name(rng: random.Random, account: str, region: str, ms: int) -> Params:
    return {"userName": rng.choice(USER_NAMES)}


def _create_user_response(rng: random.Random, account: str, region: str, ms: int) -> Params:
    name = rng.choice(USER_NAMES)
    return {"user": {"path": "/", "userName": name, "userId": key_id(rng, "AIDA"),
                     "arn": f"arn:aws:iam::{account}:user/{name}",
                     "createDate": _sdk_date(ms)}}


def _access_key_response(rng: random.Random, account: str, region: str, ms: int) -> Params:
    return {"accessKey": {"userName": rng.choice(USER_NAMES), "accessKeyId": key_id(rng, "AKIA"),
                          "status": "Active", "createDate": _sdk_date(ms)}}


def _attach_policy(rng: random.Random, account: str, region: str, ms: int) -> Params:
    policy = rng.choice(("AdministratorAccess", "ReadOnlyAccess", "AmazonS3FullAccess"))
    return {"userName": rng.choice(USER_NAMES), "policyArn": f"arn:aws:iam::aws:policy/{policy}"}


def _assume_role(rng: random.Random, account: str, region: str, ms: int) -> Params:
    role = rng.choice(ROLE_NAMES)
    return {"roleArn": f"arn:aws:iam::{account}:role/{role}",
            "roleSessionName": "example-session", "durationSeconds": 3600}


def _assume_role_response(rng: random.Random, account: str, region: str, ms: int) -> Params:
    role_id = key_id(rng, "AROA")
    return {"credentials": {"accessKeyId": key_id(rng, "ASIA"),
                            "sessionToken": "example-session-token",
                            "expiration": _sdk_date(ms + 3_600_000)},
            "assumedRoleUser": {"assumedRoleId": f"{role_id}:example-session",
                                "arn": f"arn:aws:sts::{account}:assumed-role/"
                                       f"{rng.choice(ROLE_NAMES)}/example-session"}}


def _trail(rng: random.Random, account: str, region: str, ms: int) -> Params:
    return {"name": f"arn:aws:cloudtrail:{region}:{account}:trail/example-trail"}


def _key(rng: random.Random, account: str, region: str, ms: int) -> Params:
    return {"keyId": f"arn:aws:kms:{region}:{account}:key/{uuid4(rng)}"}


def _schedule_deletion(rng: random.Random, account: str, region: str, ms: int) -> Params:
    return {**(_key(rng, account, region, ms) or {}), "pendingWindowInDays": 7}


READ_CALLS: tuple[ApiCall, ...] = (
    ApiCall("ec2.amazonaws.com", "DescribeInstances", True, 10,
            _const({"instancesSet": {}, "filterSet": {}})),
    ApiCall("ec2.amazonaws.com", "DescribeSecurityGroups", True, 5,
            _const({"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}})),
    ApiCall("ec2.amazonaws.com", "DescribeVolumes", True, 4,
            _const({"volumeSet": {}, "filterSet": {}})),
    ApiCall("ec2.amazonaws.com", "DescribeRegions", True, 2, _const({"regionSet": {}})),
    ApiCall("s3.amazonaws.com", "ListBuckets", True, 6,
            _const({"Host": "s3.amazonaws.com"})),
    ApiCall("s3.amazonaws.com", "GetBucketAcl", True, 4, _bucket_with("acl")),
    ApiCall("s3.amazonaws.com", "GetBucketPolicy", True, 3, _bucket_with("policy")),
    ApiCall("s3.amazonaws.com", "GetBucketLocation", True, 4, _bucket_with("location")),
    ApiCall("iam.amazonaws.com", "ListUsers", True, 3, _none),
    ApiCall("iam.amazonaws.com", "ListRoles", True, 3, _none),
    ApiCall("iam.amazonaws.com", "GetRole", True, 3, _field("roleName", ROLE_NAMES)),
    ApiCall("iam.amazonaws.com", "ListAccessKeys", True, 2, _user_name),
    ApiCall("sts.amazonaws.com", "GetCallerIdentity", True, 8, _none),
    ApiCall("cloudtrail.amazonaws.com", "DescribeTrails", True, 2,
            _const({"includeShadowTrails": False})),
    ApiCall("cloudtrail.amazonaws.com", "LookupEvents", True, 2, _const({"maxResults": 50})),
    ApiCall("lambda.amazonaws.com", "ListFunctions20150331", True, 3, _none),
    ApiCall("logs.amazonaws.com", "DescribeLogGroups", True, 4, _const({"limit": 50})),
    ApiCall("monitoring.amazonaws.com", "DescribeAlarms", True, 4,
            _const({"maxRecords": 100})),
    ApiCall("kms.amazonaws.com", "DescribeKey", True, 3, _key),
    ApiCall("kms.amazonaws.com", "ListAliases", True, 1, _none),
    ApiCall("rds.amazonaws.com", "DescribeDBInstances", True, 3, _none),
    ApiCall("ssm.amazonaws.com", "GetParameter", True, 4,
            _field("name", ("/example/app/db-host", "/example/app/feature-flags"))),
    ApiCall("secretsmanager.amazonaws.com", "GetSecretValue", True, 3,
            _field("secretId", ("example/db-password", "example/api-token"))),
    ApiCall("cloudformation.amazonaws.com", "DescribeStacks", True, 3,
            _const({"stackName": "example-stack"})),
    ApiCall("guardduty.amazonaws.com", "ListDetectors", True, 1, _none),
)

WRITE_CALLS: tuple[ApiCall, ...] = (
    ApiCall("ec2.amazonaws.com", "RunInstances", False, 3, _run_instances,
            _run_instances_response),
    ApiCall("ec2.amazonaws.com", "StartInstances", False, 3, _instances,
            _state_change((0, "pending"), (80, "stopped"))),
    ApiCall("ec2.amazonaws.com", "StopInstances", False, 3, _instances,
            _state_change((64, "stopping"), (16, "running"))),
    ApiCall("ec2.amazonaws.com", "TerminateInstances", False, 1, _instances,
            _state_change((32, "shutting-down"), (16, "running"))),
    ApiCall("ec2.amazonaws.com", "CreateTags", False, 5,
            lambda rng, account, region, ms: {
                "resourcesSet": {"items": [{"resourceId": _instance_id(rng)}]},
                "tagSet": {"items": [{"key": "owner", "value": "example-team"}]}},
            _const({"_return": True})),
    ApiCall("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", False, 2,
            _authorize_ingress, _const({"_return": True})),
    ApiCall("s3.amazonaws.com", "PutBucketPolicy", False, 1, _put_bucket_policy),
    ApiCall("s3.amazonaws.com", "PutBucketAcl", False, 1, _bucket_with("acl")),
    ApiCall("s3.amazonaws.com", "DeleteBucketPublicAccessBlock", False, 1,
            _bucket_with("publicAccessBlock")),
    ApiCall("sts.amazonaws.com", "AssumeRole", True, 6, _assume_role, _assume_role_response),
    ApiCall("logs.amazonaws.com", "CreateLogStream", False, 4,
            lambda rng, account, region, ms: {"logGroupName": "/example/app",
                                               "logStreamName": hex_id(rng, 16)}),
    ApiCall("kms.amazonaws.com", "ScheduleKeyDeletion", False, 1, _schedule_deletion),
    ApiCall("kms.amazonaws.com", "DisableKey", False, 1, _key),
)

IAM_CHANGES: tuple[ApiCall, ...] = (
    ApiCall("iam.amazonaws.com", "CreateUser", False, 2, _user_name, _create_user_response),
    ApiCall("iam.amazonaws.com", "CreateAccessKey", False, 3, _user_name, _access_key_response),
    ApiCall("iam.amazonaws.com", "AttachUserPolicy", False, 2, _attach_policy),
    ApiCall("iam.amazonaws.com", "PutRolePolicy", False, 2, _put_role_policy),
    ApiCall("iam.amazonaws.com", "DeleteUser", False, 1, _user_name),
    ApiCall("iam.amazonaws.com", "CreateLoginProfile", False, 1,
            lambda rng, account, region, ms: {"userName": rng.choice(USER_NAMES),
                                               "passwordResetRequired": True}),
)

LOGGING_TAMPERING: tuple[ApiCall, ...] = (
    ApiCall("cloudtrail.amazonaws.com", "StopLogging", False, 3, _trail),
    ApiCall("cloudtrail.amazonaws.com", "DeleteTrail", False, 1, _trail),
    ApiCall("cloudtrail.amazonaws.com", "PutEventSelectors", False, 1,
            lambda rng, account, region, ms: {
                "trailName": "example-trail",
                "eventSelectors": [{"readWriteType": "WriteOnly",
                                    "includeManagementEvents": True, "dataResources": [],
                                    "excludeManagementEventSources": []}]}),
    ApiCall("guardduty.amazonaws.com", "DeleteDetector", False, 1,
            lambda rng, account, region, ms: {"detectorId": hex_id(rng)}),
    ApiCall("config.amazonaws.com", "StopConfigurationRecorder", False, 1,
            _const({"configurationRecorderName": "default"})),
)
