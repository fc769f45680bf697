"""How attribute access and the few non-portable operations are spelled per backend.

The compiler asks for expressions ("this attribute as text", "as a number") and
never writes dialect-specific SQL itself. Each backend is a small subclass that
overrides only what differs, in the manner of sqlglot's own dialects.
"""

from __future__ import annotations

from sqlglot import exp

from trailguard.store.schema import ATTRS_COLUMN


class SqlDialect:
    """DuckDB spelling; the base every other backend adapts."""

    name = "duckdb"

    def json_value(self, path: exp.Expression) -> exp.Expression:
        """The attribute as JSON text (typed: numbers, strings, booleans), NULL when absent."""
        return exp.Anonymous(this="json_extract", expressions=[exp.column(ATTRS_COLUMN), path])

    def json_text(self, path: exp.Expression) -> exp.Expression:
        """The attribute as a string, NULL when absent."""
        return exp.Anonymous(this="json_extract_string",
                             expressions=[exp.column(ATTRS_COLUMN), path])

    def json_path(self, attribute: str) -> str:
        """The JSON path of a flat attribute name (bound as a parameter, never pasted)."""
        return f'$."{attribute}"'

    def to_number(self, value: exp.Expression) -> exp.Expression:
        return exp.TryCast(this=value, to=exp.DataType.build("DOUBLE"))

    def to_text(self, value: exp.Expression) -> exp.Expression:
        return exp.TryCast(this=value, to=exp.DataType.build("VARCHAR"))

    def to_boolean(self, value: exp.Expression) -> exp.Expression:
        return exp.TryCast(this=value, to=exp.DataType.build("BOOLEAN"))

    def regex_full_match(self, value: exp.Expression, pattern: exp.Expression) -> exp.Expression:
        return exp.Anonymous(this="regexp_full_match", expressions=[value, pattern])

    def latest(self, value: exp.Expression, order: exp.Expression) -> exp.Expression:
        return exp.Anonymous(this="arg_max", expressions=[value, order])

    def earliest(self, value: exp.Expression, order: exp.Expression) -> exp.Expression:
        return exp.Anonymous(this="arg_min", expressions=[value, order])


DIALECTS: dict[str, SqlDialect] = {"duckdb": SqlDialect()}


def dialect_for(name: str) -> SqlDialect:
    """The spelling for a store's dialect name."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"no NRQL dialect for store dialect {name!r}") from None
