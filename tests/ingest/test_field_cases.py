"""Field cases from peer tools' bug reports (../shared/cases/FIELD-CASES.md), kept as
tests with the values users expect. Inputs are inline: they are small and synthetic."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from trailguard.ingest.documents import cloudtrail_event
from trailguard.ingest.files import read_file
from trailguard.ingest.firehose import Limits, decode_request
from trailguard.nrql import run_nrql

NOW = 1_700_100_000_000
EVER = "SINCE 10 years ago"


def record(event_id: str, identity: dict | None, **fields) -> dict:
    base = {"eventVersion": "1.08", "eventTime": "2023-11-14T22:00:00Z",
            "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
            "awsRegion": "us-east-1", "eventID": event_id, "recipientAccountId": "111122223333"}
    if identity is not None:
        base["userIdentity"] = identity
    base.update(fields)
    return base


def results(store, nrql: str) -> list:
    return run_nrql(store, nrql, now_ms=NOW)["results"]


IDENTITIES = [
    ({"type": "Root", "principalId": "111122223333",
      "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"}, "root"),
    ({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}, "ec2.amazonaws.com"),
    ({"type": "AssumedRole", "principalId": "AROAEXAMPLE:example",
      "arn": "arn:aws:sts::111122223333:assumed-role/Admins/example",
      "accountId": "111122223333",
      "sessionContext": {"sessionIssuer": {}, "attributes": {
          "creationDate": "2023-11-14T22:00:00Z", "mfaAuthenticated": "true"}}}, "example"),
    ({"type": "IdentityCenterUser", "accountId": "111122223333",
      "onBehalfOf": {"userId": "example-user-id",
                     "identityStoreArn": "arn:aws:identitystore::111122223333:identitystore/"
                                         "d-example"},
      "credentialId": "example"}, "example-user-id"),
]


def test_bl12_user_identity_variants_all_stored_with_their_actor(store):
    events = [cloudtrail_event(record(f"id-{n}", identity))
              for n, (identity, _) in enumerate(IDENTITIES)]
    store.write(events)

    rows = results(store, f"FROM InfrastructureEvent SELECT actor, userIdentity.type {EVER}")
    assert sorted((row["userIdentity.type"], row["actor"]) for row in rows) == sorted(
        (identity["type"], actor) for identity, actor in IDENTITIES)
    assert results(store, "FROM InfrastructureEvent SELECT count(*) "
                          f"WHERE userIdentity.type = 'Root' {EVER}") == [{"count": 1}]


def test_bl13_resources_with_arn_prefix_are_searchable(store):
    resources = [{"ARNPrefix": "arn:aws:s3:::example-bucket/env:/", "type": "AWS::S3::Object"},
                 {"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::example-bucket",
                  "accountId": "111122223333"}]
    store.write([cloudtrail_event(record("r-1", {"type": "IAMUser", "userName": "example"},
                                         eventName="ListObjects", resources=resources,
                                         sourceIPAddress="198.51.100.7"))])

    assert results(store, "FROM InfrastructureEvent SELECT count(*) "
                          f"WHERE resources LIKE '%example-bucket%' {EVER}") == [{"count": 1}]
    assert results(store, "FROM InfrastructureEvent SELECT resources.0.ARNPrefix, "
                          f"resources.1.ARN {EVER}")[0] == {
        "timestamp": 1_699_999_200_000,
        "resources.0.ARNPrefix": "arn:aws:s3:::example-bucket/env:/",
        "resources.1.ARN": "arn:aws:s3:::example-bucket"}


def test_bl10_insights_event_lands_in_the_null_facet(store, tmp_path: Path):
    insight = {"Records": [{
        "eventVersion": "1.08", "eventTime": "2023-11-14T22:00:00Z", "awsRegion": "us-east-1",
        "eventID": "11111111-aaaa-bbbb-cccc-000000000010", "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": "111122223333",
        "sharedEventID": "22222222-aaaa-bbbb-cccc-000000000010",
        "insightDetails": {"state": "Start", "eventSource": "ec2.amazonaws.com",
                           "eventName": "RunInstances", "insightType": "ApiCallRateInsight",
                           "insightContext": {"statistics": {"baseline": {"average": 0.1},
                                                             "insight": {"average": 5.0}}}},
        "eventCategory": "Insight"}]}
    path = tmp_path / "111122223333_CloudTrail-Insight_us-east-1_example.json"
    path.write_text(json.dumps(insight))
    store.write(read_file(path).events
                + [cloudtrail_event(record("u-1", {"type": "Root",
                                                   "arn": "arn:aws:iam::111122223333:root"}))])

    rows = results(store, f"FROM InfrastructureEvent SELECT count(*) FACET userIdentity.arn "
                          f"{EVER}")
    assert sorted(rows, key=lambda row: (row["facet"] is None, str(row["facet"]))) == [
        {"facet": "arn:aws:iam::111122223333:root",
         "userIdentity.arn": "arn:aws:iam::111122223333:root", "count": 1},
        {"facet": None, "userIdentity.arn": None, "count": 1}]
    assert results(store, "FROM InfrastructureEvent SELECT count(*) "
                          f"WHERE eventType = 'AwsCloudTrailInsight' {EVER}") == [{"count": 1}]


def test_bl09_digest_files_are_skipped_and_empty_files_are_fine(tmp_path: Path):
    digest = tmp_path / "111122223333_CloudTrail-Digest_us-east-1_example.json"
    digest.write_text(json.dumps({"awsAccountId": "111122223333",
                                  "digestStartTime": "2023-11-14T21:00:00Z",
                                  "digestEndTime": "2023-11-14T22:00:00Z",
                                  "digestS3Bucket": "example", "logFiles": []}))
    empty = tmp_path / "empty.json"
    empty.write_text('{"Records": []}')
    assert (read_file(digest).skipped, read_file(digest).events) == ("CloudTrail digest file", [])
    assert (read_file(empty).skipped, read_file(empty).events) == (None, [])


def test_bl23_archived_partial_finding_is_stored_without_a_severity(store):
    partial = {"version": "0", "id": "e-23", "detail-type": "GuardDuty Finding",
               "source": "aws.guardduty", "account": "111122223333",
               "time": "2023-11-14T23:00:00Z", "region": "us-west-2", "resources": [],
               "detail": {"id": "f-23", "service": {"archived": True}}}
    body = {"requestId": "r-23", "timestamp": NOW, "records": [
        {"data": base64.b64encode(json.dumps(partial).encode()).decode()}]}
    store.write(decode_request(json.dumps(body).encode(), {}, Limits()).events)

    assert results(store, f"FROM Log SELECT count(*) WHERE detail.id = 'f-23' {EVER}") \
        == [{"count": 1}]
    assert results(store, "FROM Log SELECT count(*) WHERE source = 'aws.guardduty' "
                          f"AND detail.severity >= 7 {EVER}") == [{"count": 0}]
    assert results(store, f"FROM Log SELECT count(*) WHERE detail.severity IS NULL {EVER}") \
        == [{"count": 1}]
