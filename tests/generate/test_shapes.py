"""Generated findings and records have the key structure of the real public samples.

A key path is the dotted path of every key (`detail.service.action.actionType`),
with `[]` for list elements. A generated key under an object the samples show
must be a key the samples use there, except for the subtrees the documented
finding format has but none of the twelve public findings happens to carry.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from trailguard.generate import generate_cloudtrail, generate_findings
from trailguard.ingest.documents import camel_case_keys

START_MS = 1_700_000_000_000
END_MS = START_MS + 86_400_000

# Documented finding parts no public sample carries (S3, EKS and port-probe findings).
UNSAMPLED_SUBTREES = (
    "detail.resource.s3BucketDetails",
    "detail.resource.eksClusterDetails",
    "detail.resource.kubernetesDetails",
    "detail.service.action.portProbeAction",
    "detail.service.action.kubernetesApiCallAction",
)
# Parts of a CloudTrail record that differ per API; compared elsewhere, not by shape.
PER_API_SUBTREES = ("requestParameters", "responseElements", "resources")


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path in `value`; list elements share the path `name[]`."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= key_paths(child, path)
    elif isinstance(value, list):
        for child in value:
            paths |= key_paths(child, prefix + "[]")
    return paths


def unknown_paths(generated: set[str], known: set[str], exempt: tuple[str, ...]) -> set[str]:
    """Generated paths under a known object that the samples never use there."""
    containers = {path.rsplit(".", 1)[0] for path in known if "." in path} | {""}
    unknown = set()
    for path in generated:
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        if path.startswith(exempt) or parent not in containers:
            continue
        if path not in known:
            unknown.add(path)
    return unknown


def sample_finding_events(samples: Path) -> list[dict[str, Any]]:
    """Every public GuardDuty sample as an EventBridge event (bare findings wrapped)."""
    folder = samples / "guardduty"
    events = [json.loads((folder / name).read_text()) for name in (
        "cloud-custodian_ec2-duty-event.json", "cloud-custodian_iam-duty-event.json")]
    bare = json.loads((folder / "panther-analysis_guardduty_findings_raw.json").read_text())
    bare += camel_case_keys(json.loads(
        (folder / "aws-cli_guardduty_get-findings_response.json").read_text())["Findings"])
    bare.append(json.loads((folder / "aws-samples-waf-acl_gd2acl_test_event.json").read_text())
                ["detail"])
    return events + [{"detail": finding} for finding in bare]


def sample_cloudtrail(samples: Path) -> list[dict[str, Any]]:
    folder = samples / "cloudtrail"
    records = []
    for path in sorted(folder.glob("*.json*")):
        raw = path.read_bytes()
        raw = gzip.decompress(raw) if path.name.endswith(".gz") else raw
        records += json.loads(raw)["Records"]
    return records


def test_finding_keys_are_keys_the_samples_use(samples: Path) -> None:
    known: set[str] = set()
    for event in sample_finding_events(samples):
        known |= key_paths(event)
    generated: set[str] = set()
    for event in generate_findings(11, START_MS, END_MS, 3000, update_rate=0.1):
        generated |= key_paths(event)

    assert unknown_paths(generated, known, UNSAMPLED_SUBTREES) == set()


def test_findings_carry_every_key_all_samples_share(samples: Path) -> None:
    findings = [event["detail"] for event in sample_finding_events(samples)
                if "id" in event["detail"]]
    shared = set.intersection(*(set(finding) for finding in findings))
    for event in generate_findings(12, START_MS, END_MS, 500):
        assert shared - set(event["detail"]) == set()


def test_envelope_has_the_keys_of_the_eventbridge_samples(samples: Path) -> None:
    envelopes = [event for event in sample_finding_events(samples) if "source" in event]
    # `debug` is a cloud-custodian test flag, not something EventBridge sends.
    expected = set.union(*(set(event) for event in envelopes)) - {"debug"}
    for event in generate_findings(13, START_MS, END_MS, 50):
        assert set(event) == expected


def test_cloudtrail_keys_are_keys_the_samples_use(samples: Path) -> None:
    known: set[str] = set()
    for record in sample_cloudtrail(samples):
        known |= key_paths(record)
    generated: set[str] = set()
    for record in generate_cloudtrail(14, START_MS, END_MS, 20_000):
        generated |= key_paths(record)

    assert unknown_paths(generated, known, PER_API_SUBTREES) == set()


@pytest.mark.parametrize("identity_type", ["IAMUser", "AssumedRole", "Root", "AWSService"])
def test_user_identity_keys_match_samples_of_the_same_type(samples: Path,
                                                           identity_type: str) -> None:
    known: set[str] = set()
    for record in sample_cloudtrail(samples):
        if record["userIdentity"].get("type") == identity_type:
            known |= key_paths(record["userIdentity"])
    generated: set[str] = set()
    for record in generate_cloudtrail(15, START_MS, END_MS, 5_000):
        if record["userIdentity"]["type"] == identity_type:
            generated |= key_paths(record["userIdentity"])

    assert generated
    assert generated - known == set()
