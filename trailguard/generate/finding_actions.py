"""The `service.action` part of a generated GuardDuty finding, by action type.

Which direction, port, API or domain fits a type is decided from the type name
(brute force is inbound on its service port, command-and-control is outbound,
a Policy:S3 type names the S3 call that caused it). Every call builds fresh dicts.
"""

from __future__ import annotations

import random
from typing import Any

from trailguard.generate.common import CITIES, placeholder_ip
from trailguard.generate.finding_types import (
    AWS_API_CALL,
    DNS_REQUEST,
    KUBERNETES_API_CALL,
    NETWORK_CONNECTION,
    PORT_PROBE,
    FindingType,
)

# Type-name fragment -> (local port, port name) for network findings.
_SERVICE_PORTS = (
    ("SSHBruteForce", 22, "SSH"), ("RDPBruteForce", 3389, "RDP"),
    ("WinRMBruteForce", 5985, "WinRM"), ("BitcoinTool", 8333, "Unknown"),
    ("Spambot", 25, "SMTP"), ("Tor", 9001, "Unknown"), ("DenialOfService.Dns", 53, "DNS"),
    ("EMR", 8088, "Unknown"),
)
# Type-name fragment -> (API, service) that causes the finding.
_CAUSING_API = (
    ("BucketAnonymousAccessGranted", "PutBucketAcl", "s3.amazonaws.com"),
    ("BucketPublicAccessGranted", "PutBucketPolicy", "s3.amazonaws.com"),
    ("BucketBlockPublicAccessDisabled", "PutBucketPublicAccessBlock", "s3.amazonaws.com"),
    ("AccountBlockPublicAccessDisabled", "PutAccountPublicAccessBlock", "s3.amazonaws.com"),
    ("ServerAccessLoggingDisabled", "PutBucketLogging", "s3.amazonaws.com"),
    ("CloudTrailLoggingDisabled", "StopLogging", "cloudtrail.amazonaws.com"),
    ("PasswordPolicyChange", "UpdateAccountPasswordPolicy", "iam.amazonaws.com"),
    ("ConsoleLoginSuccess", "ConsoleLogin", "signin.amazonaws.com"),
    ("Exfiltration:S3", "GetObject", "s3.amazonaws.com"),
    ("Impact:S3", "DeleteObject", "s3.amazonaws.com"),
)
_S3_APIS = ("GetObject", "ListObjects", "GetBucketAcl", "GetBucketLocation")
_IAM_APIS = (("ListUsers", "iam.amazonaws.com"), ("GetCallerIdentity", "sts.amazonaws.com"),
             ("DescribeInstances", "ec2.amazonaws.com"), ("ListBuckets", "s3.amazonaws.com"),
             ("CreateAccessKey", "iam.amazonaws.com"), ("AttachUserPolicy", "iam.amazonaws.com"),
             ("GetSecretValue", "secretsmanager.amazonaws.com"))
_DOMAINS = ("c2.example.com", "pool.mining.example.net", "update.example.org",
            "x7f3k2q9.example.net", "login-example.example.com")
_INBOUND = ("BruteForce", "TorRelay", "MaliciousIPCaller", "TrafficVolume")


def remote_ip_details(rng: random.Random, address: str | None = None) -> dict[str, Any]:
    """Where an address is and who runs it (placeholder organisation, real-looking city)."""
    city, country, lat, lon = rng.choice(CITIES)
    return {
        "ipAddressV4": address or placeholder_ip(rng),
        "organization": {"asn": str(rng.choice((64496, 64500, 64511))),
                         "asnOrg": "EXAMPLE-NET", "isp": "Example ISP",
                         "org": "Example Hosting"},
        "country": {"countryName": country},
        "city": {"cityName": city},
        "geoLocation": {"lat": lat, "lon": lon},
    }


def resource_role_for(rng: random.Random, finding_type: FindingType) -> str:
    """TARGET or ACTOR: outbound network findings act, a brute force may go either way."""
    if finding_type.action_type != NETWORK_CONNECTION:
        return "TARGET"
    if "BruteForce" in finding_type.name:
        return "ACTOR" if rng.random() < 0.15 else "TARGET"
    return "TARGET" if any(part in finding_type.name for part in _INBOUND) else "ACTOR"


def action_for(rng: random.Random, finding_type: FindingType, role: str,
               remote_ip: str) -> dict[str, Any] | None:
    """`service.action` for the type's action family, or None for attack sequences."""
    action_type = finding_type.action_type
    if action_type == NETWORK_CONNECTION:
        return {"actionType": action_type,
                "networkConnectionAction": _network(rng, finding_type, role, remote_ip)}
    if action_type == PORT_PROBE:
        return {"actionType": action_type, "portProbeAction": _port_probe(rng, finding_type)}
    if action_type == DNS_REQUEST:
        return {"actionType": action_type,
                "dnsRequestAction": {"domain": rng.choice(_DOMAINS),
                                     "protocol": "UDP", "blocked": False}}
    if action_type == AWS_API_CALL:
        return {"actionType": action_type,
                "awsApiCallAction": _api_call(rng, finding_type, remote_ip)}
    if action_type == KUBERNETES_API_CALL:
        return {"actionType": action_type,
                "kubernetesApiCallAction": _kubernetes_call(rng, remote_ip)}
    return None


def _local_port(finding_type: FindingType) -> tuple[int, str]:
    for fragment, port, name in _SERVICE_PORTS:
        if fragment in finding_type.name:
            return port, name
    return 443, "HTTPS"


def _network(rng: random.Random, finding_type: FindingType, role: str,
             remote_ip: str) -> dict[str, Any]:
    port, port_name = _local_port(finding_type)
    ephemeral = {"port": rng.randrange(32768, 61000), "portName": "Unknown"}
    service = {"port": port, "portName": port_name}
    inbound = role == "TARGET"
    return {
        "connectionDirection": "INBOUND" if inbound else "OUTBOUND",
        "remoteIpDetails": remote_ip_details(rng, remote_ip),
        "remotePortDetails": ephemeral if inbound else service,
        "localPortDetails": service if inbound else ephemeral,
        "protocol": "UDP" if "Udp" in finding_type.name else "TCP",
        "blocked": False,
    }


def _port_probe(rng: random.Random, finding_type: FindingType) -> dict[str, Any]:
    choices = ((8088, "Unknown"), (8890, "Unknown")) if "EMR" in finding_type.name else (
        (22, "SSH"), (3389, "RDP"), (80, "HTTP"), (5432, "POSTGRESQL"), (6379, "REDIS"))
    details = []
    for _ in range(rng.randint(1, 3)):
        port, name = rng.choice(choices)
        details.append({"localPortDetails": {"port": port, "portName": name},
                        "remoteIpDetails": remote_ip_details(rng)})
    return {"blocked": False, "portProbeDetails": details}


def causing_api(rng: random.Random, finding_type: FindingType) -> tuple[str, str]:
    """The API call (name, service) a finding of this type reports."""
    for fragment, api, service in _CAUSING_API:
        if fragment in finding_type.name:
            return api, service
    if finding_type.resource_type == "S3Bucket":
        return rng.choice(_S3_APIS), "s3.amazonaws.com"
    return rng.choice(_IAM_APIS)


def _api_call(rng: random.Random, finding_type: FindingType, remote_ip: str) -> dict[str, Any]:
    api, service = causing_api(rng, finding_type)
    return {
        "api": api,
        "serviceName": service,
        "callerType": "Remote IP",
        "remoteIpDetails": remote_ip_details(rng, remote_ip),
        "affectedResources": {},
    }


def _kubernetes_call(rng: random.Random, remote_ip: str) -> dict[str, Any]:
    verb, uri = rng.choice((("list", "/api/v1/namespaces/default/secrets"),
                            ("get", "/api/v1/pods"),
                            ("create", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")))
    return {"requestUri": uri, "verb": verb, "sourceIps": [remote_ip],
            "userAgent": "kubectl/v1.29.0 (linux/amd64)",
            "remoteIpDetails": remote_ip_details(rng, remote_ip), "statusCode": 200}
