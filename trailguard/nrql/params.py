"""Bound parameters: the only way user text reaches SQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlglot import exp


class Params:
    """Collects values and hands out named placeholders for them.

    `typer` gives a placeholder its declared type, for backends (ClickHouse) whose
    parameter syntax needs one.
    """

    def __init__(self, typer: Callable[[object], exp.DataType | None] | None = None) -> None:
        self.values: dict[str, Any] = {}
        self._typer = typer

    def bind(self, value: Any) -> exp.Expression:
        """A placeholder for `value` (numbers and booleans too; NULL stays a literal)."""
        if value is None:
            return exp.Null()
        name = f"p{len(self.values)}"
        self.values[name] = value
        kind = self._typer(value) if self._typer else None
        return exp.Placeholder(this=name, kind=kind) if kind else exp.Placeholder(this=name)

    def mark(self) -> int:
        """How many values are bound so far, for `rollback`."""
        return len(self.values)

    def rollback(self, mark: int) -> None:
        """Forget the values bound since `mark`: the SQL that used them was thrown away,
        and DuckDB refuses a statement given parameters it does not use."""
        for name in list(self.values)[mark:]:
            del self.values[name]
