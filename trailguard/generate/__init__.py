"""Realistic GuardDuty findings and CloudTrail records for demos, benchmarks and tests."""
