"""CloudTrail management-event records in the shape CloudTrail writes to S3.

The mix follows what a quiet real account logs: mostly read-only
Describe/List/Get calls by roles and users, some writes, services assuming
roles, console sign-ins (some failing, some without MFA), AccessDenied errors,
a little root activity, IAM changes and, rarely, someone turning logging off.
Records come lazily from `iter_cloudtrail_records`, so a million cost no memory.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any

from trailguard.generate.cloudtrail_calls import (
    IAM_CHANGES,
    LOGGING_TAMPERING,
    READ_CALLS,
    WRITE_CALLS,
    ApiCall,
)
from trailguard.generate.cloudtrail_identities import (
    AWS_SERVICE,
    ROOT,
    Principal,
    Principals,
    draw_principals,
    sign_in_identity,
    user_identity,
)
from trailguard.generate.common import (
    REGIONS,
    as_rng,
    iso_seconds,
    placeholder_ip,
    spread_times,
    uuid4,
)

USER_AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023 prompt/off",
    ("Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.79 md/arch#x86_64 "
     "lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69"),
    "terraform-provider-aws/5.42.0 (+https://registry.terraform.io) aws-sdk-go-v2/1.26.0",
    "AWS Internal",
)
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Safari/537.36")
GLOBAL_SERVICES = ("iam.amazonaws.com", "signin.amazonaws.com")
LOGIN_URL = "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true"

Record = dict[str, Any]


class _Run:
    """What stays fixed while one run draws records: rng, callers, cumulative weights."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.principals: Principals = draw_principals(rng)
        self.reads = _Weighted(READ_CALLS)
        self.writes = _Weighted(WRITE_CALLS)
        self.iam = _Weighted(IAM_CHANGES)
        self.tampering = _Weighted(LOGGING_TAMPERING)


class _Weighted:
    """Weighted draws with one random() and a bisect (rng.choices re-sums each call)."""

    def __init__(self, calls: tuple[ApiCall, ...]) -> None:
        self.calls = calls
        self.cumulative = list(itertools.accumulate(call.weight for call in calls))

    def draw(self, rng: random.Random) -> ApiCall:
        return self.calls[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


def iter_cloudtrail_records(seed: random.Random | int, start_ms: int, end_ms: int,
                            count: int) -> Iterator[Record]:
    """`count` CloudTrail records with eventTime in [start_ms, end_ms), oldest first."""
    run = _Run(as_rng(seed))
    kinds = [kind for kind, _ in _MIX]
    cumulative = list(itertools.accumulate(weight for _, weight in _MIX))
    total = cumulative[-1]
    rng = run.rng
    for moment in spread_times(rng, start_ms, end_ms, count):
        kind = kinds[bisect.bisect(cumulative, rng.random() * total)]
        yield kind(run, moment)


def generate_cloudtrail(seed: random.Random | int, start_ms: int, end_ms: int,
                        count: int) -> list[Record]:
    """The records of `iter_cloudtrail_records` as a list."""
    return list(iter_cloudtrail_records(seed, start_ms, end_ms, count))


def api_record(rng: random.Random, principal: Principal, call: ApiCall, moment: int,
               error: tuple[str, str] | None = None) -> Record:
    """One AwsApiCall record of `call` by `principal`; `error` is (errorCode, errorMessage)."""
    account = principal.account
    region = "us-east-1" if call.source in GLOBAL_SERVICES else rng.choice(REGIONS)
    service_call = principal.kind == AWS_SERVICE
    created = iso_seconds(moment - rng.randrange(60_000, 3_600_000))
    record: Record = {
        "eventVersion": "1.09" if rng.random() < 0.3 else "1.08",
        "userIdentity": user_identity(principal, created, mfa=rng.random() < 0.5,
                                      console_session=principal.kind == ROOT),
        "eventTime": iso_seconds(moment),
        "eventSource": call.source,
        "eventName": call.name,
        "awsRegion": region,
        "sourceIPAddress": principal.name if service_call else placeholder_ip(rng),
        "userAgent": principal.name if service_call else rng.choice(USER_AGENTS),
    }
    if error is not None:
        record["errorCode"], record["errorMessage"] = error
    record["requestParameters"] = call.request(rng, account, region, moment)
    record["responseElements"] = (None if error is not None or call.response is None
                                  else call.response(rng, account, region, moment))
    record["requestID"] = uuid4(rng)
    record["eventID"] = uuid4(rng)
    record["readOnly"] = call.read_only
    if service_call:
        record["resources"] = [_role_resource(record, account)]
    record.update(_trailer(account, "AwsApiCall"))
    if service_call:
        record["sharedEventID"] = uuid4(rng)
    else:
        record["tlsDetails"] = _tls(rng, call.source, region)
    return record


def console_login(rng: random.Random, principal: Principal, moment: int, succeeded: bool,
                  mfa: bool) -> Record:
    """A ConsoleLogin by an IAM user or the root user, as signin.amazonaws.com logs it."""
    record: Record = {
        "eventVersion": "1.08",
        "userIdentity": sign_in_identity(principal, succeeded),
        "eventTime": iso_seconds(moment),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "sourceIPAddress": placeholder_ip(rng),
        "userAgent": BROWSER,
    }
    if not succeeded:
        record["errorMessage"] = "Failed authentication"
    record["requestParameters"] = None
    record["responseElements"] = {"ConsoleLogin": "Success" if succeeded else "Failure"}
    record["additionalEventData"] = {"LoginTo": LOGIN_URL, "MobileVersion": "No",
                                     "MFAUsed": "Yes" if mfa else "No"}
    record["eventID"] = uuid4(rng)
    record["readOnly"] = False
    record.update(_trailer(principal.account, "AwsConsoleSignIn"))
    record["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                            "clientProvidedHostHeader": "signin.aws.amazon.com"}
    return record


def access_denied(call: ApiCall, principal: Principal) -> tuple[str, str]:
    """The errorCode and errorMessage AWS logs when `principal` may not make `call`."""
    if call.source == "ec2.amazonaws.com":
        return "Client.UnauthorizedOperation", "You are not authorized to perform this operation."
    action = f"{call.service}:{call.name}"
    return "AccessDenied", (f"User: {principal.arn} is not authorized to perform: {action} "
                            f"because no identity-based policy allows the {action} action")


def _trailer(account: str, event_type: str) -> Record:
    return {"eventType": event_type, "managementEvent": True, "recipientAccountId": account,
            "eventCategory": "Management"}


def _tls(rng: random.Random, source: str, region: str) -> Record:
    service = source.split(".", 1)[0]
    host = source if source in GLOBAL_SERVICES else f"{service}.{region}.amazonaws.com"
    if rng.random() < 0.7:
        return {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": host}
    return {"tlsVersion": "TLSv1.2", "cipherSuite": "ECDHE-RSA-AES128-GCM-SHA256",
            "clientProvidedHostHeader": host}


def _role_resource(record: Record, account: str) -> Record:
    role_arn = (record["requestParameters"] or {}).get("roleArn", "")
    return {"accountId": account, "type": "AWS::IAM::Role", "ARN": role_arn}


# Each kind of record and how many of every 1000 records are of that kind.
def _read(run: _Run, moment: int) -> Record:
    return api_record(run.rng, run.principals.worker(run.rng), run.reads.draw(run.rng), moment)


def _write(run: _Run, moment: int) -> Record:
    return api_record(run.rng, run.principals.worker(run.rng), run.writes.draw(run.rng), moment)


def _iam_change(run: _Run, moment: int) -> Record:
    return api_record(run.rng, run.principals.worker(run.rng), run.iam.draw(run.rng), moment)


def _tampering(run: _Run, moment: int) -> Record:
    return api_record(run.rng, run.principals.worker(run.rng), run.tampering.draw(run.rng),
                      moment)


def _service_assumes_role(run: _Run, moment: int) -> Record:
    assume = next(call for call in WRITE_CALLS if call.name == "AssumeRole")
    return api_record(run.rng, run.rng.choice(run.principals.services), assume, moment)


def _denied(run: _Run, moment: int) -> Record:
    rng = run.rng
    principal = run.principals.worker(rng)
    call = run.reads.draw(rng) if rng.random() < 0.6 else run.iam.draw(rng)
    return api_record(rng, principal, call, moment, access_denied(call, principal))


def _root(run: _Run, moment: int) -> Record:
    rng = run.rng
    call = run.reads.draw(rng) if rng.random() < 0.7 else run.iam.draw(rng)
    return api_record(rng, rng.choice(run.principals.roots), call, moment)


def _sign_in(run: _Run, moment: int) -> Record:
    rng = run.rng
    principals = run.principals
    principal = rng.choice(principals.roots) if rng.random() < 0.1 else rng.choice(
        principals.users)
    succeeded = rng.random() < 0.75
    # A failed password ends the sign-in before any MFA prompt.
    return console_login(rng, principal, moment, succeeded,
                         mfa=succeeded and rng.random() < 0.6)


_MIX: tuple[tuple[Callable[[_Run, int], Record], int], ...] = (
    (_read, 720), (_write, 110), (_service_assumes_role, 60), (_sign_in, 40),
    (_denied, 45), (_root, 8), (_iam_change, 15), (_tampering, 2),
)
