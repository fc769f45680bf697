"""Run NRQL against a store: parse, compile, read, shape the result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trailguard.nrql.backend_errors import translate
from trailguard.nrql.compiler import CompiledQuery, compile_query
from trailguard.nrql.parser import parse
from trailguard.nrql.results import build_results
from trailguard.nrql.variables import Value, bind_variables
from trailguard.store.base import EventStore

Variables = Mapping[str, Value | Sequence[Value]]


def compile_nrql(text: str, dialect: str = "duckdb", now_ms: int | None = None,
                 variables: Variables | None = None) -> CompiledQuery:
    """The SQL and bound parameters NRQL `text` becomes; raises `NrqlError` when invalid."""
    if variables is not None:
        text = bind_variables(text, variables)
    return compile_query(parse(text), text, dialect, now_ms)


def run_nrql(store: EventStore, text: str, now_ms: int | None = None,
             variables: Variables | None = None) -> dict[str, Any]:
    """Answer NRQL `text` from `store` as `{"results": [...], "metadata": {...}}`."""
    compiled = compile_nrql(text, store.dialect, now_ms, variables)
    try:
        rows = store.read(compiled.sql, compiled.params)
    except Exception as error:   # translated below, or raised unchanged
        translated = translate(error, text)
        if translated is None:
            raise
        raise translated from error
    return build_results(compiled.plan, rows)
