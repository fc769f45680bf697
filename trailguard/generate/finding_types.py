"""The GuardDuty finding types the generator knows: resource, action and severity band.

Facts (type name, resource, data source, default severity band) restated from
the GuardDuty user guide's active finding types as of January 2022, plus a few
newer types (EKS audit logs, Extended Threat Detection attack sequences) so those
resource shapes are exercised too. `weight` is how often a type is drawn; it is
our own guess at a realistic mix (brute force and port probes dominate real
accounts), not a documented fact.
"""

from __future__ import annotations

from dataclasses import dataclass

# Severity bands as GuardDuty defines them; critical is used by attack sequences.
BANDS: dict[str, tuple[float, float]] = {
    "low": (1.0, 3.9),
    "medium": (4.0, 6.9),
    "high": (7.0, 8.9),
    "critical": (9.0, 10.0),
}

# Action families, named after `service.action.actionType`.
NETWORK_CONNECTION = "NETWORK_CONNECTION"
PORT_PROBE = "PORT_PROBE"
DNS_REQUEST = "DNS_REQUEST"
AWS_API_CALL = "AWS_API_CALL"
KUBERNETES_API_CALL = "KUBERNETES_API_CALL"
NO_ACTION = ""

_ACTIONS = {"net": NETWORK_CONNECTION, "probe": PORT_PROBE, "dns": DNS_REQUEST,
            "api": AWS_API_CALL, "k8s": KUBERNETES_API_CALL, "-": NO_ACTION}
_RESOURCES = {"ec2": "Instance", "iam": "AccessKey", "s3": "S3Bucket",
              "eks": "EKSCluster", "seq": "AttackSequence"}

# type | resource | action | band (`*` = varies with the resource's role) | weight
_TABLE = """
Backdoor:EC2/C&CActivity.B                            ec2 net   high    2
Backdoor:EC2/C&CActivity.B!DNS                        ec2 dns   high    2
Backdoor:EC2/DenialOfService.Dns                      ec2 net   high    1
Backdoor:EC2/DenialOfService.Tcp                      ec2 net   high    1
Backdoor:EC2/DenialOfService.Udp                      ec2 net   high    1
Backdoor:EC2/DenialOfService.UdpOnTcpPorts            ec2 net   high    1
Backdoor:EC2/DenialOfService.UnusualProtocol          ec2 net   high    1
Backdoor:EC2/Spambot                                  ec2 net   medium  1
Behavior:EC2/NetworkPortUnusual                       ec2 net   medium  4
Behavior:EC2/TrafficVolumeUnusual                     ec2 net   medium  3
CredentialAccess:IAMUser/AnomalousBehavior            iam api   medium  2
CryptoCurrency:EC2/BitcoinTool.B                      ec2 net   high    2
CryptoCurrency:EC2/BitcoinTool.B!DNS                  ec2 dns   high    2
DefenseEvasion:IAMUser/AnomalousBehavior              iam api   medium  2
Discovery:IAMUser/AnomalousBehavior                   iam api   low     4
Discovery:S3/MaliciousIPCaller                        s3  api   high    1
Discovery:S3/MaliciousIPCaller.Custom                 s3  api   high    1
Discovery:S3/TorIPCaller                              s3  api   medium  2
Exfiltration:IAMUser/AnomalousBehavior                iam api   high    1
Exfiltration:S3/MaliciousIPCaller                     s3  api   high    1
Exfiltration:S3/ObjectRead.Unusual                    s3  api   medium* 2
Impact:EC2/AbusedDomainRequest.Reputation             ec2 dns   medium  2
Impact:EC2/BitcoinDomainRequest.Reputation            ec2 dns   high    1
Impact:EC2/MaliciousDomainRequest.Reputation          ec2 dns   high    1
Impact:EC2/PortSweep                                  ec2 net   high    1
Impact:EC2/SuspiciousDomainRequest.Reputation         ec2 dns   low     3
Impact:EC2/WinRMBruteForce                            ec2 net   low*    2
Impact:IAMUser/AnomalousBehavior                      iam api   high    1
Impact:S3/MaliciousIPCaller                           s3  api   high    1
InitialAccess:IAMUser/AnomalousBehavior               iam api   medium  2
PenTest:IAMUser/KaliLinux                             iam api   medium  1
PenTest:IAMUser/ParrotLinux                           iam api   medium  1
PenTest:IAMUser/PentooLinux                           iam api   medium  1
PenTest:S3/KaliLinux                                  s3  api   medium  1
PenTest:S3/ParrotLinux                                s3  api   medium  1
PenTest:S3/PentooLinux                                s3  api   medium  1
Persistence:IAMUser/AnomalousBehavior                 iam api   medium  2
Policy:IAMUser/RootCredentialUsage                    iam api   low     6
Policy:S3/AccountBlockPublicAccessDisabled            s3  api   low     1
Policy:S3/BucketAnonymousAccessGranted                s3  api   high    2
Policy:S3/BucketBlockPublicAccessDisabled             s3  api   low     2
Policy:S3/BucketPublicAccessGranted                   s3  api   high    2
PrivilegeEscalation:IAMUser/AnomalousBehavior         iam api   medium  2
Recon:EC2/PortProbeEMRUnprotectedPort                 ec2 probe high    1
Recon:EC2/PortProbeUnprotectedPort                    ec2 probe low*    20
Recon:EC2/Portscan                                    ec2 net   medium  4
Recon:IAMUser/MaliciousIPCaller                       iam api   medium  2
Recon:IAMUser/MaliciousIPCaller.Custom                iam api   medium  1
Recon:IAMUser/TorIPCaller                             iam api   medium  2
Stealth:IAMUser/CloudTrailLoggingDisabled             iam api   low     2
Stealth:IAMUser/PasswordPolicyChange                  iam api   low     1
Stealth:S3/ServerAccessLoggingDisabled                s3  api   low     2
Trojan:EC2/BlackholeTraffic                           ec2 net   medium  1
Trojan:EC2/BlackholeTraffic!DNS                       ec2 dns   medium  1
Trojan:EC2/DGADomainRequest.B                         ec2 dns   high    1
Trojan:EC2/DGADomainRequest.C!DNS                     ec2 dns   high    1
Trojan:EC2/DNSDataExfiltration                        ec2 dns   high    1
Trojan:EC2/DriveBySourceTraffic!DNS                   ec2 dns   high    1
Trojan:EC2/DropPoint                                  ec2 net   medium  1
Trojan:EC2/DropPoint!DNS                              ec2 dns   medium  1
Trojan:EC2/PhishingDomainRequest!DNS                  ec2 dns   high    1
UnauthorizedAccess:EC2/MaliciousIPCaller.Custom       ec2 net   medium  2
UnauthorizedAccess:EC2/MetadataDNSRebind              ec2 dns   high    1
UnauthorizedAccess:EC2/RDPBruteForce                  ec2 net   low*    8
UnauthorizedAccess:EC2/SSHBruteForce                  ec2 net   low*    25
UnauthorizedAccess:EC2/TorClient                      ec2 net   high    1
UnauthorizedAccess:EC2/TorRelay                       ec2 net   high    1
UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B      iam api   medium  2
UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS iam api high 1
UnauthorizedAccess:IAMUser/MaliciousIPCaller          iam api   medium  2
UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom   iam api   medium  1
UnauthorizedAccess:IAMUser/TorIPCaller                iam api   medium  3
UnauthorizedAccess:S3/MaliciousIPCaller.Custom        s3  api   high    1
UnauthorizedAccess:S3/TorIPCaller                     s3  api   high    1
Discovery:Kubernetes/SuccessfulAnonymousAccess        eks k8s   medium  1
Policy:Kubernetes/AnonymousAccessGranted              eks k8s   high    1
PrivilegeEscalation:Kubernetes/PrivilegedContainer    eks k8s   medium  1
AttackSequence:IAM/CompromisedCredentials             seq -     critical 1
AttackSequence:S3/CompromisedData                     seq -     critical 1
"""

JANUARY_2022_ACTIVE_TYPES = 74


@dataclass(frozen=True, slots=True)
class FindingType:
    """One finding type: what it is about and how severe GuardDuty rates it."""

    name: str
    resource_type: str   # `resource.resourceType`
    action_type: str     # `service.action.actionType`, "" when the finding has no action
    band: str            # key of BANDS: the default band
    variable: bool       # severity depends on the resource role (brute force: actor is high)
    weight: int

    @property
    def threat_purpose(self) -> str:
        """`Backdoor` of `Backdoor:EC2/C&CActivity.B`."""
        return self.name.split(":", 1)[0]

    @property
    def threat_family(self) -> str:
        """`C&CActivity.B` of `Backdoor:EC2/C&CActivity.B` (artifact suffix dropped)."""
        return self.name.rsplit("/", 1)[1].split("!", 1)[0]


def severity_band(finding_type: FindingType, resource_role: str = "TARGET") -> str:
    """The band a finding's severity must fall in.

    A variable-severity brute-force finding is high when the instance is the
    attacker (ACTOR) rather than the target.
    """
    if finding_type.variable and resource_role == "ACTOR":
        return "high"
    return finding_type.band


def _parse(table: str) -> dict[str, FindingType]:
    types: dict[str, FindingType] = {}
    for line in table.strip().splitlines():
        name, resource, action, band, weight = line.split()
        variable = band.endswith("*")
        types[name] = FindingType(name, _RESOURCES[resource], _ACTIONS[action],
                                  band.rstrip("*"), variable, int(weight))
    return types


FINDING_TYPES: dict[str, FindingType] = _parse(_TABLE)
