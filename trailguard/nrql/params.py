"""Bound parameters: the only way user text reaches SQL."""

from __future__ import annotations

from typing import Any

from sqlglot import exp


class Params:
    """Collects values and hands out named placeholders for them."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any) -> exp.Expression:
        """A placeholder for `value` (numbers and booleans too; NULL stays a literal)."""
        if value is None:
            return exp.Null()
        name = f"p{len(self.values)}"
        self.values[name] = value
        return exp.Placeholder(this=name)
