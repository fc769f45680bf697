"""Who did it: one `actor` attribute derived from CloudTrail's many userIdentity shapes.

Searching for a person across Root, IAM users, assumed-role sessions, AWS services
and IAM Identity Center users otherwise needs a different attribute per type.
"""

from __future__ import annotations

from typing import Any


def cloudtrail_actor(identity: Any) -> str | None:
    """The acting principal's short name, or None when the record names nobody."""
    if not isinstance(identity, dict):
        return None
    kind = identity.get("type")
    if kind == "Root":
        return "root"
    if kind == "AWSService":
        return _text(identity.get("invokedBy"))
    if kind == "AssumedRole":
        return _session_name(identity)
    if kind == "IdentityCenterUser":
        on_behalf_of = identity.get("onBehalfOf")
        if isinstance(on_behalf_of, dict):
            return _text(on_behalf_of.get("userId"))
    for key in ("userName", "principalId", "arn", "accountId", "invokedBy"):
        if _text(identity.get(key)):
            return _text(identity.get(key))
    return None


def _session_name(identity: dict[str, Any]) -> str | None:
    # arn:aws:sts::111122223333:assumed-role/<role>/<session>: the session is the person;
    # the role (sessionIssuer) is only how they got in.
    arn = _text(identity.get("arn"))
    if arn and "/" in arn:
        return arn.rsplit("/", 1)[1]
    principal = _text(identity.get("principalId"))
    if principal and ":" in principal:
        return principal.split(":", 1)[1]
    return principal


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
