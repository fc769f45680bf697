"""NRQL: text -> tokens -> syntax tree -> SQL for a backend -> New Relic's result shape."""

from trailguard.nrql.engine import compile_nrql, run_nrql
from trailguard.nrql.parser import parse
from trailguard.nrql.variables import bind_variables, variable_names

__all__ = ["bind_variables", "compile_nrql", "parse", "run_nrql", "variable_names"]
