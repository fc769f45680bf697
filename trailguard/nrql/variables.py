"""Dashboard template variables: `{{name}}` replaced before the query is parsed.

New Relic substitutes variables as text (its "string" replacement strategy), so a
variable may stand for a list (`IN ({{regions}})`) or a single value. trailguard
substitutes NRQL literals, never raw text: a value is quoted as a string (or
written as a number), and a list becomes comma-separated literals, so a value
cannot change the query's structure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from trailguard.errors import NrqlError

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
Value = str | int | float | bool


def variable_names(text: str) -> list[str]:
    """The distinct variable names in `text`, in order of first use."""
    return list(dict.fromkeys(match.group(1) for match in _VARIABLE.finditer(text)))


def bind_variables(text: str, values: Mapping[str, Value | Sequence[Value]]) -> str:
    """`text` with each `{{name}}` replaced by the NRQL literal(s) of `values[name]`."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise NrqlError(f"dashboard variable {{{{{name}}}}} has no value", text,
                            match.start())
        value = values[name]
        if isinstance(value, str | int | float | bool):
            return _literal(value)
        return ", ".join(_literal(item) for item in value)

    return _VARIABLE.sub(replace, text)


def _literal(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
