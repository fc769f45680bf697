"""The `resource` part of a generated GuardDuty finding, by resource type.

Shapes follow the finding format GuardDuty documents (instanceDetails,
accessKeyDetails, s3BucketDetails, eksClusterDetails); values are placeholders.
Every call builds fresh dicts, so callers may mutate what they get.
"""

from __future__ import annotations

import random
from typing import Any

from trailguard.generate.common import (
    BUCKET_NAMES,
    ROLE_NAMES,
    USER_NAMES,
    hex_id,
    iso_seconds,
    key_id,
    placeholder_ip,
)

INSTANCE_TYPES = ("t3.micro", "t3.large", "m5.xlarge", "c5.2xlarge", "r6g.large")


def resource_for(rng: random.Random, resource_type: str, account: str, region: str,
                 now_ms: int, public_bucket: bool = False) -> dict[str, Any]:
    """`resource` for `resource_type` (Instance, AccessKey, S3Bucket, EKSCluster...)."""
    if resource_type == "Instance":
        return {"resourceType": "Instance",
                "instanceDetails": instance_details(rng, account, region, now_ms)}
    if resource_type == "AccessKey":
        return {"resourceType": "AccessKey", "accessKeyDetails": access_key_details(rng)}
    if resource_type == "S3Bucket":
        return {"resourceType": "S3Bucket", "accessKeyDetails": access_key_details(rng),
                "s3BucketDetails": [s3_bucket_details(rng, now_ms, public_bucket)]}
    if resource_type == "EKSCluster":
        return {"resourceType": "EKSCluster",
                "eksClusterDetails": eks_cluster_details(rng, account, region, now_ms),
                "kubernetesDetails": kubernetes_details(rng)}
    return {"resourceType": resource_type}


def instance_details(rng: random.Random, account: str, region: str,
                     now_ms: int) -> dict[str, Any]:
    """An EC2 instance with one network interface, profile and tags."""
    instance_id = "i-" + hex_id(rng, 17)
    private_ip = f"10.0.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"
    zone = region + rng.choice("abc")
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    private_dns = f"ip-{private_ip.replace('.', '-')}.{domain}"
    return {
        "instanceId": instance_id,
        "instanceType": rng.choice(INSTANCE_TYPES),
        "launchTime": iso_seconds(now_ms - rng.randrange(3_600_000, 90 * 86_400_000)),
        "platform": None,
        "productCodes": [],
        "iamInstanceProfile": {
            "arn": f"arn:aws:iam::{account}:instance-profile/example-instance-profile",
            "id": key_id(rng, "AIPA"),
        },
        "networkInterfaces": [{
            "ipv6Addresses": [],
            "networkInterfaceId": "eni-" + hex_id(rng, 17),
            "privateDnsName": private_dns,
            "privateIpAddress": private_ip,
            "privateIpAddresses": [{"privateDnsName": private_dns,
                                    "privateIpAddress": private_ip}],
            "subnetId": "subnet-" + hex_id(rng, 17),
            "vpcId": "vpc-" + hex_id(rng, 17),
            "securityGroups": [{"groupName": "example-web-sg",
                                "groupId": "sg-" + hex_id(rng, 17)}],
            "publicDnsName": "",
            "publicIp": placeholder_ip(rng),
        }],
        "tags": [{"key": "Name", "value": f"example-{rng.choice(('web', 'api', 'batch'))}"},
                 {"key": "env", "value": rng.choice(("prod", "staging", "dev"))}],
        "instanceState": "running",
        "availabilityZone": zone,
        "imageId": "ami-" + hex_id(rng, 17),
        "imageDescription": "example base image",
    }


def access_key_details(rng: random.Random) -> dict[str, Any]:
    """The IAM principal whose credentials were used."""
    if rng.random() < 0.7:
        name = rng.choice(USER_NAMES)
        return {"accessKeyId": key_id(rng, "AKIA"), "principalId": key_id(rng, "AIDA"),
                "userName": name, "userType": "IAMUser"}
    role = rng.choice(ROLE_NAMES)
    return {"accessKeyId": key_id(rng, "ASIA"),
            "principalId": f"{key_id(rng, 'AROA')}:example-session",
            "userName": role, "userType": "AssumedRole"}


def s3_bucket_details(rng: random.Random, now_ms: int, public: bool = False) -> dict[str, Any]:
    """One bucket with its encryption and public-access settings."""
    name = rng.choice(BUCKET_NAMES)
    return {
        "arn": f"arn:aws:s3:::{name}",
        "name": name,
        "type": "Destination",
        "createdAt": iso_seconds(now_ms - rng.randrange(86_400_000, 400 * 86_400_000)),
        "owner": {"id": hex_id(rng, 64)},
        "tags": [{"key": "team", "value": "example-team"}],
        "defaultServerSideEncryption": {"encryptionType": "AES256"},
        "publicAccess": public_access(public),
    }


def public_access(public: bool) -> dict[str, Any]:
    """`publicAccess` of a bucket: what its ACL, policy and Block Public Access allow."""
    flags = {"blockPublicAcls": not public, "ignorePublicAcls": not public,
             "blockPublicPolicy": not public, "restrictPublicBuckets": not public}
    return {
        "permissionConfiguration": {
            "bucketLevelPermissions": {
                "accessControlList": {"allowsPublicReadAccess": public,
                                      "allowsPublicWriteAccess": False},
                "bucketPolicy": {"allowsPublicReadAccess": public,
                                 "allowsPublicWriteAccess": False},
                "blockPublicAccess": dict(flags),
            },
            "accountLevelPermissions": {"blockPublicAccess": dict(flags)},
        },
        "effectivePermission": "PUBLIC" if public else "NOT_PUBLIC",
    }


def eks_cluster_details(rng: random.Random, account: str, region: str,
                        now_ms: int) -> dict[str, Any]:
    """An EKS cluster."""
    name = f"example-{rng.choice(('prod', 'staging'))}-cluster"
    return {
        "name": name,
        "arn": f"arn:aws:eks:{region}:{account}:cluster/{name}",
        "vpcId": "vpc-" + hex_id(rng, 17),
        "status": "ACTIVE",
        "tags": [{"key": "env", "value": "example"}],
        "createdAt": iso_seconds(now_ms - rng.randrange(86_400_000, 300 * 86_400_000)),
    }


def kubernetes_details(rng: random.Random) -> dict[str, Any]:
    """The Kubernetes user (and for workload findings, the workload) involved."""
    anonymous = rng.random() < 0.5
    return {"kubernetesUserDetails": {
        "username": "system:anonymous" if anonymous else "example-user",
        "uid": "" if anonymous else hex_id(rng, 32),
        "groups": ["system:unauthenticated"] if anonymous else ["system:authenticated"],
    }}
