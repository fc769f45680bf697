"""GuardDuty findings as the EventBridge events GuardDuty publishes.

Each event is `{"version", "id", "detail-type": "GuardDuty Finding", "source":
"aws.guardduty", "account", "time", "region", "resources": [], "detail": finding}`
with the camelCase finding as `detail`. GuardDuty republishes a finding it sees
again under the same id with a later `updatedAt` and a higher `service.count`;
`update_rate` is the share of events that are such updates.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import orjson

from trailguard.generate.common import (
    ACCOUNTS,
    REGIONS,
    USER_NAMES,
    as_rng,
    hex_id,
    iso_millis,
    iso_seconds,
    placeholder_ip,
    spread_times,
    uuid4,
)
from trailguard.generate.finding_actions import action_for, causing_api, resource_role_for
from trailguard.generate.finding_resources import resource_for
from trailguard.generate.finding_types import (
    BANDS,
    FINDING_TYPES,
    NO_ACTION,
    FindingType,
    severity_band,
)

# The value GuardDuty gives most findings of a band; others are spread inside it.
_TYPICAL_SEVERITY = {"low": 2.0, "medium": 5.0, "high": 8.0, "critical": 9.0}
_FEATURES = {"NETWORK_CONNECTION": "FlowLogs", "PORT_PROBE": "FlowLogs",
             "DNS_REQUEST": "DnsLogs", "AWS_API_CALL": "CloudTrail",
             "KUBERNETES_API_CALL": "EksAuditLogs", NO_ACTION: "Correlation"}


def generate_findings(seed: random.Random | int, start_ms: int, end_ms: int, count: int,
                      update_rate: float = 0.2,
                      types: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """`count` EventBridge GuardDuty events timed in [start_ms, end_ms), oldest first.

    About `update_rate` of them republish an earlier finding of the same list
    (same `detail.id`, later `updatedAt`, higher `service.count`). `types`
    limits the draw to those type names (default: every type in FINDING_TYPES,
    weighted by how common each is).
    """
    rng = as_rng(seed)
    pool = _type_pool(types)
    weights = [finding_type.weight for finding_type in pool]
    detectors = {(account, region): hex_id(rng) for account in ACCOUNTS for region in REGIONS}
    published: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for moment in spread_times(rng, start_ms, end_ms, count):
        if published and rng.random() < update_rate:
            index = rng.randrange(len(published))
            detail = updated_finding(rng, published[index], moment)
            published[index] = detail
        else:
            finding_type = rng.choices(pool, weights)[0]
            account, region = rng.choice(ACCOUNTS), rng.choice(REGIONS)
            detail = new_finding(rng, finding_type, account, region,
                                 detectors[(account, region)], moment)
            published.append(detail)
        events.append(eventbridge_event(rng, detail))
    return events


def eventbridge_event(rng: random.Random, finding: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge envelope GuardDuty puts around a finding it publishes."""
    return {
        "version": "0",
        "id": uuid4(rng),
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": finding["accountId"],
        "time": finding["updatedAt"][:19] + "Z",
        "region": finding["region"],
        "resources": [],
        "detail": finding,
    }


def new_finding(rng: random.Random, finding_type: FindingType, account: str, region: str,
                detector_id: str, created_ms: int) -> dict[str, Any]:
    """A first publication of a finding of `finding_type`, created at `created_ms`."""
    finding_id = hex_id(rng)
    role = resource_role_for(rng, finding_type)
    remote_ip = placeholder_ip(rng)
    public = finding_type.name.endswith(("AnonymousAccessGranted", "PublicAccessGranted"))
    resource = resource_for(rng, finding_type.resource_type, account, region, created_ms,
                            public)
    title, description = describe(rng, finding_type, resource, role, remote_ip)
    return {
        "schemaVersion": "2.0",
        "accountId": account,
        "region": region,
        "partition": "aws",
        "id": finding_id,
        "arn": f"arn:aws:guardduty:{region}:{account}:detector/{detector_id}"
               f"/finding/{finding_id}",
        "type": finding_type.name,
        "resource": resource,
        "service": _service(rng, finding_type, detector_id, role, remote_ip, created_ms),
        "severity": severity_for(rng, finding_type, role),
        "createdAt": iso_millis(created_ms),
        "updatedAt": iso_millis(created_ms),
        "title": title,
        "description": description,
    }


def updated_finding(rng: random.Random, previous: dict[str, Any],
                    moment_ms: int) -> dict[str, Any]:
    """`previous` seen again: same id and createdAt, later updatedAt, higher count.

    A full copy (through JSON, far cheaper than deepcopy), so the event that
    published `previous` keeps its own state.
    """
    updated: dict[str, Any] = orjson.loads(orjson.dumps(previous))
    service = updated["service"]
    service["count"] += rng.randint(1, 40)
    service["eventLastSeen"] = iso_seconds(moment_ms)
    updated["updatedAt"] = iso_millis(moment_ms)
    return updated


def severity_for(rng: random.Random, finding_type: FindingType, role: str) -> float:
    """A severity inside the type's band: usually the band's typical value."""
    band = severity_band(finding_type, role)
    if rng.random() < 0.7:
        return _TYPICAL_SEVERITY[band]
    low, high = BANDS[band]
    return round(rng.uniform(low, high), 1)


def describe(rng: random.Random, finding_type: FindingType, resource: dict[str, Any],
             role: str, remote_ip: str) -> tuple[str, str]:
    """A title and description in our own words, naming the resource and the address."""
    subject = _subject(resource)
    family = finding_type.threat_family
    if "BruteForce" in family:
        kind = family.removesuffix("BruteForce")
        attacker, victim = (remote_ip, subject) if role == "TARGET" else (subject, remote_ip)
        title = f"{kind} brute force attempts from {attacker} against {victim}."
        return title, title + f" Repeated {kind} logins try to guess a password."
    if finding_type.resource_type == "S3Bucket" and finding_type.threat_purpose == "Policy":
        api, _ = causing_api(rng, finding_type)
        title = f"Public access settings of {subject} were changed ({family})."
        return title, f"{api} changed who can read {subject}; review its ACL and policy."
    title = f"{finding_type.threat_purpose} behaviour ({family}) involving {subject}."
    return title, f"GuardDuty reported {finding_type.name} for {subject}, peer {remote_ip}."


def _subject(resource: dict[str, Any]) -> str:
    resource_type = resource["resourceType"]
    if resource_type == "Instance":
        return f"EC2 instance {resource['instanceDetails']['instanceId']}"
    if resource_type == "S3Bucket":
        return f"S3 bucket {resource['s3BucketDetails'][0]['name']}"
    if resource_type == "AccessKey":
        return f"IAM principal {resource['accessKeyDetails']['userName']}"
    if resource_type == "EKSCluster":
        return f"EKS cluster {resource['eksClusterDetails']['name']}"
    return f"IAMUser/{USER_NAMES[0]}"


def _service(rng: random.Random, finding_type: FindingType, detector_id: str, role: str,
             remote_ip: str, created_ms: int) -> dict[str, Any]:
    first_seen = created_ms - rng.randrange(60_000, 1_800_000)
    service: dict[str, Any] = {"serviceName": "guardduty", "detectorId": detector_id}
    action = action_for(rng, finding_type, role, remote_ip)
    if action is not None:
        service["action"] = action
    service.update({
        "resourceRole": role,
        "additionalInfo": _additional_info(finding_type),
        "eventFirstSeen": iso_seconds(first_seen),
        "eventLastSeen": iso_seconds(created_ms),
        "archived": False,
        "count": 1,
        "featureName": _FEATURES[finding_type.action_type],
    })
    return service


def _additional_info(finding_type: FindingType) -> dict[str, Any]:
    if "Tor" in finding_type.name or "MaliciousIPCaller" in finding_type.name:
        return {"threatListName": "ExampleThreatList"}
    return {}


def _type_pool(types: Sequence[str] | None) -> list[FindingType]:
    if types is None:
        return list(FINDING_TYPES.values())
    unknown = [name for name in types if name not in FINDING_TYPES]
    if unknown:
        raise ValueError(f"unknown GuardDuty finding types {unknown}; "
                         "see trailguard.generate.finding_types.FINDING_TYPES")
    if not types:
        raise ValueError("types is empty; pass None for every type")
    return [FINDING_TYPES[name] for name in types]
