"""Who makes the generated CloudTrail calls: `userIdentity` in each of its shapes.

A `Principal` is drawn once per generator run (ids stay stable across its
records, as they do in a real account); `user_identity` builds a fresh
`userIdentity` dict for each record.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from trailguard.generate.common import ACCOUNTS, ROLE_NAMES, USER_NAMES, key_id

IAM_USER = "IAMUser"
ASSUMED_ROLE = "AssumedRole"
ROOT = "Root"
AWS_SERVICE = "AWSService"

SERVICES_ASSUMING_ROLES = ("lambda.amazonaws.com", "ec2.amazonaws.com",
                           "ecs-tasks.amazonaws.com", "cloudformation.amazonaws.com")


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller with the ids it keeps for the whole run."""

    kind: str                 # IAM_USER, ASSUMED_ROLE, ROOT or AWS_SERVICE
    account: str
    name: str                 # user, role or service name
    principal_id: str
    access_key: str
    session: str = ""         # role session name

    @property
    def arn(self) -> str:
        """The caller's ARN as CloudTrail prints it."""
        if self.kind == IAM_USER:
            return f"arn:aws:iam::{self.account}:user/{self.name}"
        if self.kind == ASSUMED_ROLE:
            return f"arn:aws:sts::{self.account}:assumed-role/{self.name}/{self.session}"
        if self.kind == ROOT:
            return f"arn:aws:iam::{self.account}:root"
        return ""


@dataclass(frozen=True, slots=True)
class Principals:
    """The callers of one run, grouped by kind."""

    users: tuple[Principal, ...]
    roles: tuple[Principal, ...]
    roots: tuple[Principal, ...]
    services: tuple[Principal, ...]

    def worker(self, rng: random.Random) -> Principal:
        """A user or role making an everyday call (roles call more: automation)."""
        return rng.choice(self.roles) if rng.random() < 0.6 else rng.choice(self.users)


def draw_principals(rng: random.Random) -> Principals:
    """Users, roles, the root user and services for both placeholder accounts."""
    users, roles, roots, services = [], [], [], []
    for account in ACCOUNTS:
        for name in USER_NAMES:
            users.append(Principal(IAM_USER, account, name, key_id(rng, "AIDA"),
                                   key_id(rng, "AKIA")))
        for name in ROLE_NAMES:
            role_id = key_id(rng, "AROA")
            session = rng.choice(("example-session", "example-user", "i-0example"))
            roles.append(Principal(ASSUMED_ROLE, account, name, f"{role_id}:{session}",
                                   key_id(rng, "ASIA"), session))
        roots.append(Principal(ROOT, account, "root", account, key_id(rng, "ASIA")))
        for service in SERVICES_ASSUMING_ROLES:
            services.append(Principal(AWS_SERVICE, account, service, "", ""))
    return Principals(tuple(users), tuple(roles), tuple(roots), tuple(services))


def user_identity(principal: Principal, created: str, mfa: bool = False,
                  console_session: bool = False) -> dict[str, Any]:
    """`userIdentity` of a call by `principal`; `created` is the session's creationDate."""
    if principal.kind == AWS_SERVICE:
        return {"type": AWS_SERVICE, "invokedBy": principal.name}
    identity: dict[str, Any] = {
        "type": principal.kind,
        "principalId": principal.principal_id,
        "arn": principal.arn,
        "accountId": principal.account,
        "accessKeyId": principal.access_key,
    }
    if principal.kind == IAM_USER:
        identity["userName"] = principal.name
    if principal.kind == ASSUMED_ROLE:
        identity["sessionContext"] = _role_session(principal, created, mfa)
    elif console_session:
        # A root or user console session: no issuer, only when and whether MFA was used.
        identity["sessionContext"] = {
            "attributes": {"creationDate": created, "mfaAuthenticated": _flag(mfa)},
        }
    return identity


def sign_in_identity(principal: Principal, succeeded: bool) -> dict[str, Any]:
    """`userIdentity` of a ConsoleLogin: no access key yet, no ARN when a user failed."""
    identity: dict[str, Any] = {"type": principal.kind, "principalId": principal.principal_id}
    if succeeded or principal.kind == ROOT:
        identity["arn"] = principal.arn
    identity["accountId"] = principal.account
    identity["accessKeyId"] = ""
    if principal.kind == IAM_USER:
        identity["userName"] = principal.name
    return identity


def _role_session(principal: Principal, created: str, mfa: bool) -> dict[str, Any]:
    role_id = principal.principal_id.split(":", 1)[0]
    return {
        "sessionIssuer": {
            "type": "Role",
            "principalId": role_id,
            "arn": f"arn:aws:iam::{principal.account}:role/{principal.name}",
            "accountId": principal.account,
            "userName": principal.name,
        },
        "webIdFederationData": {},
        "attributes": {"creationDate": created, "mfaAuthenticated": _flag(mfa)},
    }


def _flag(value: bool) -> str:
    return "true" if value else "false"
