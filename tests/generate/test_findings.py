"""GuardDuty finding generation: type table, severities, updates, determinism, placeholders."""

from __future__ import annotations

import random
import re
from collections import defaultdict

import orjson
import pytest

from trailguard.generate import BANDS, FINDING_TYPES, generate_findings, severity_band
from trailguard.generate.finding_types import JANUARY_2022_ACTIVE_TYPES
from trailguard.ingest.timestamps import parse_iso_ms

START_MS = 1_700_000_000_500   # not on a whole second, on purpose
END_MS = START_MS + 3 * 86_400_000
NEWER_PREFIXES = ("AttackSequence:", "Discovery:Kubernetes", "Policy:Kubernetes",
                  "PrivilegeEscalation:Kubernetes")


def test_table_holds_the_74_january_2022_types_plus_newer_ones() -> None:
    dated = [name for name in FINDING_TYPES if not name.startswith(NEWER_PREFIXES)]
    assert len(dated) == JANUARY_2022_ACTIVE_TYPES == 74
    assert len(FINDING_TYPES) == 79


@pytest.mark.parametrize(("name", "resource_type", "action_type", "band", "variable"), [
    ("UnauthorizedAccess:EC2/SSHBruteForce", "Instance", "NETWORK_CONNECTION", "low", True),
    ("Policy:S3/BucketAnonymousAccessGranted", "S3Bucket", "AWS_API_CALL", "high", False),
    ("Recon:EC2/PortProbeUnprotectedPort", "Instance", "PORT_PROBE", "low", True),
    ("Trojan:EC2/DNSDataExfiltration", "Instance", "DNS_REQUEST", "high", False),
    ("Discovery:IAMUser/AnomalousBehavior", "AccessKey", "AWS_API_CALL", "low", False),
    ("Policy:Kubernetes/AnonymousAccessGranted", "EKSCluster", "KUBERNETES_API_CALL", "high",
     False),
    ("AttackSequence:S3/CompromisedData", "AttackSequence", "", "critical", False),
])
def test_type_facts(name: str, resource_type: str, action_type: str, band: str,
                    variable: bool) -> None:
    finding_type = FINDING_TYPES[name]
    assert (finding_type.resource_type, finding_type.action_type, finding_type.band,
            finding_type.variable) == (resource_type, action_type, band, variable)


def test_every_finding_has_a_known_type_and_a_severity_inside_its_band() -> None:
    events = generate_findings(1, START_MS, END_MS, 4000)
    for event in events:
        finding = event["detail"]
        finding_type = FINDING_TYPES[finding["type"]]
        low, high = BANDS[severity_band(finding_type, finding["service"]["resourceRole"])]
        assert low <= finding["severity"] <= high
    assert {event["detail"]["type"] for event in events} == set(FINDING_TYPES)


def test_brute_force_actor_is_high_and_outbound() -> None:
    events = generate_findings(2, START_MS, END_MS, 600, update_rate=0.0,
                               types=["UnauthorizedAccess:EC2/SSHBruteForce"])
    roles = defaultdict(set)
    for event in events:
        service = event["detail"]["service"]
        connection = service["action"]["networkConnectionAction"]
        roles[service["resourceRole"]].add(connection["connectionDirection"])
        port = (connection["localPortDetails"] if connection["connectionDirection"] == "INBOUND"
                else connection["remotePortDetails"])["port"]
        assert port == 22
        if service["resourceRole"] == "ACTOR":
            assert 7.0 <= event["detail"]["severity"] <= 8.9
    assert dict(roles) == {"TARGET": {"INBOUND"}, "ACTOR": {"OUTBOUND"}}


def test_anonymous_access_finding_names_a_public_bucket_and_the_acl_call() -> None:
    event = generate_findings(3, START_MS, END_MS, 1,
                              types=["Policy:S3/BucketAnonymousAccessGranted"])[0]
    finding = event["detail"]
    bucket = finding["resource"]["s3BucketDetails"][0]
    assert bucket["publicAccess"]["effectivePermission"] == "PUBLIC"
    assert finding["service"]["action"]["awsApiCallAction"]["api"] == "PutBucketAcl"
    assert 7.0 <= finding["severity"] <= 8.9


def test_envelope_matches_its_finding() -> None:
    for event in generate_findings(4, START_MS, END_MS, 200):
        finding = event["detail"]
        assert (event["version"], event["detail-type"], event["source"], event["resources"]) == (
            "0", "GuardDuty Finding", "aws.guardduty", [])
        assert (event["account"], event["region"]) == (finding["accountId"], finding["region"])
        assert event["time"] == finding["updatedAt"][:19] + "Z"
        assert finding["arn"].endswith(f"/finding/{finding['id']}")
        assert finding["arn"].startswith(
            f"arn:aws:guardduty:{finding['region']}:{finding['accountId']}:detector/"
            f"{finding['service']['detectorId']}/")
        assert len(finding["id"]) == 32 and int(finding["id"], 16) >= 0
        assert finding["schemaVersion"] == "2.0"
        assert finding["service"]["serviceName"] == "guardduty"
        assert finding["service"]["archived"] is False


def test_times_fall_inside_the_range_in_order() -> None:
    events = generate_findings(5, START_MS, END_MS, 500)
    times = [parse_iso_ms(event["time"]) for event in events]
    assert times == sorted(times)
    assert START_MS <= times[0] and times[-1] < END_MS
    for event in events:
        assert START_MS <= parse_iso_ms(event["detail"]["updatedAt"]) < END_MS


def test_updates_republish_the_same_finding_later_with_a_higher_count() -> None:
    events = generate_findings(6, START_MS, END_MS, 1000, update_rate=0.4)
    by_id = defaultdict(list)
    for event in events:
        by_id[event["detail"]["id"]].append(event["detail"])

    republished = [states for states in by_id.values() if len(states) > 1]
    assert sum(len(states) - 1 for states in by_id.values()) == 1000 - len(by_id)
    assert 300 <= 1000 - len(by_id) <= 500
    for states in republished:
        assert len({state["createdAt"] for state in states}) == 1
        assert len({state["type"] for state in states}) == 1
        updated = [parse_iso_ms(state["updatedAt"]) for state in states]
        counts = [state["service"]["count"] for state in states]
        assert updated == sorted(set(updated))
        assert counts == sorted(set(counts))
        assert states[0]["service"]["count"] == 1


def test_no_updates_when_the_rate_is_zero() -> None:
    events = generate_findings(7, START_MS, END_MS, 300, update_rate=0.0)
    assert len({event["detail"]["id"] for event in events}) == 300


def test_same_seed_same_findings_and_other_seed_other_findings() -> None:
    first = orjson.dumps(generate_findings(8, START_MS, END_MS, 300))
    assert orjson.dumps(generate_findings(random.Random(8), START_MS, END_MS, 300)) == first
    assert orjson.dumps(generate_findings(9, START_MS, END_MS, 300)) != first


def test_only_placeholder_accounts_and_addresses() -> None:
    events = generate_findings(10, START_MS, END_MS, 500)
    assert {event["account"] for event in events} == {"111122223333", "444455556666"}
    text = orjson.dumps(events).decode()
    addresses = set(re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", text))
    assert addresses
    assert {address for address in addresses
            if not address.startswith(("198.51.100.", "203.0.113.", "192.0.2.", "10.0."))
            } == set()


def test_unknown_type_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="Backdoor:EC2/NoSuchThing"):
        generate_findings(1, START_MS, END_MS, 1, types=["Backdoor:EC2/NoSuchThing"])
