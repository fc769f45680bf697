"""Pullers: CloudTrail LookupEvents, CloudTrail log files in S3/SQS, GuardDuty findings."""

from trailguard.sources.runner import PollSummary, SourceRun, SourceRunner
from trailguard.sources.settings import SourcesConfig, parse_sources

__all__ = ["PollSummary", "SourceRun", "SourceRunner", "SourcesConfig", "parse_sources"]
