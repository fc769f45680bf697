"""NRQL: text -> tokens -> syntax tree -> SQL for a backend -> New Relic's result shape."""

from trailguard.nrql.engine import compile_nrql, run_nrql
from trailguard.nrql.parser import parse

__all__ = ["compile_nrql", "parse", "run_nrql"]
