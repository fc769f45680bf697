"""trailguard: self-hosted security monitoring for AWS (GuardDuty, CloudTrail, NRQL)."""

__version__ = "0.1.0"
