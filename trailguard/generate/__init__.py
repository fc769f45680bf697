"""Realistic GuardDuty findings and CloudTrail records for demos, benchmarks and tests.

All values are placeholders (example accounts, documentation IP ranges,
`example-*` names); every generator takes a seed and a time range.
"""

from trailguard.generate.cloudtrail import generate_cloudtrail, iter_cloudtrail_records
from trailguard.generate.demo import DemoSummary, generate_demo
from trailguard.generate.finding_types import BANDS, FINDING_TYPES, FindingType, severity_band
from trailguard.generate.findings import generate_findings
from trailguard.generate.output import cloudtrail_file, firehose_request

__all__ = [
    "BANDS",
    "FINDING_TYPES",
    "DemoSummary",
    "FindingType",
    "cloudtrail_file",
    "firehose_request",
    "generate_cloudtrail",
    "generate_demo",
    "generate_findings",
    "iter_cloudtrail_records",
    "severity_band",
]
