"""Pullers: CloudTrail LookupEvents, CloudTrail log files in S3/SQS, GuardDuty findings.

The runner lives in `trailguard.sources.runner` (it needs boto3); this package root
re-exports only the config types, so reading the config does not import boto3.
"""

from trailguard.sources.settings import SourcesConfig, parse_sources

__all__ = ["SourcesConfig", "parse_sources"]
