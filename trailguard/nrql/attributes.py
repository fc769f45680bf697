"""Attribute names -> SQL expressions, in the type a context needs.

Hot attributes (see store/schema.py) read their typed column; all others are
extracted from the per-event JSON object. A value that did not fit its hot
column's type was stored in the JSON object under the same name, so contexts of
the other type read it from there.
"""

from __future__ import annotations

from enum import Enum

from sqlglot import exp

from trailguard.errors import NrqlError
from trailguard.nrql.dialects import SqlDialect
from trailguard.nrql.params import Params
from trailguard.store.schema import ATTRS_COLUMN, HOT_BY_ATTRIBUTE, HOT_COLUMNS


class Decode(Enum):
    """How a result column's raw value becomes a JSON result value."""

    PLAIN = "plain"   # already a Python scalar
    JSON = "json"     # JSON text to parse
    JSON_LIST = "json_list"   # a list of JSON texts (uniques() of a JSON attribute)
    LIST = "list"             # a list of plain values (uniques() of a column)


# Attributes every event has, held in base columns rather than the attribute map.
# The event type itself is `eventType()` (a function): CloudTrail records carry an
# attribute named `eventType` (AwsApiCall, AwsCloudTrailInsight...) of their own.
BASE_ATTRIBUTES = {"timestamp": "timestamp"}


class AttributeResolver:
    """Builds the SQL for reading attributes, binding every name as a parameter."""

    def __init__(self, dialect: SqlDialect, params: Params) -> None:
        self.dialect = dialect
        self.params = params

    def _path(self, name: str) -> exp.Expression:
        return self.params.bind(self.dialect.json_path(name))

    def value(self, name: str) -> tuple[exp.Expression, Decode]:
        """The attribute in its own type (for SELECT, FACET, uniqueCount, latest)."""
        if name in BASE_ATTRIBUTES:
            return exp.column(BASE_ATTRIBUTES[name]), Decode.PLAIN
        hot = HOT_BY_ATTRIBUTE.get(name)
        if hot is not None:
            return exp.column(hot.column), Decode.PLAIN
        return self.dialect.json_value(self._path(name)), Decode.JSON

    def text(self, name: str) -> exp.Expression:
        """The attribute as a string, for `=`, `IN`, `LIKE` against strings."""
        if name in BASE_ATTRIBUTES:
            return self.dialect.to_text(exp.column(BASE_ATTRIBUTES[name]))
        hot = HOT_BY_ATTRIBUTE.get(name)
        if hot is not None and hot.sql_type == "VARCHAR":
            return exp.column(hot.column)
        return self.dialect.json_text(self._path(name))

    def number(self, name: str) -> exp.Expression:
        """The attribute as a number (NULL when not numeric), for comparisons and math."""
        if name in BASE_ATTRIBUTES:
            return exp.column(BASE_ATTRIBUTES[name])
        hot = HOT_BY_ATTRIBUTE.get(name)
        if hot is not None and hot.sql_type == "DOUBLE":
            return exp.column(hot.column)
        return self.dialect.to_number(self.dialect.json_text(self._path(name)))

    def boolean(self, name: str) -> exp.Expression:
        """The attribute as a boolean, for `IS TRUE` / `IS FALSE` and `= true`."""
        return self.dialect.to_boolean(self.dialect.json_text(self._path(name)))

    def is_missing(self, name: str) -> exp.Expression:
        """True when the event has no value for the attribute (in any type)."""
        if name in BASE_ATTRIBUTES:
            return exp.false()
        json_missing = exp.Is(this=self.dialect.json_value(self._path(name)), expression=exp.Null())
        hot = HOT_BY_ATTRIBUTE.get(name)
        if hot is None:
            return json_missing
        return exp.and_(exp.Is(this=exp.column(hot.column), expression=exp.Null()), json_missing)


    def event_bytes(self) -> exp.Expression:
        """About how many bytes an event takes as JSON: its attribute object plus each
        attribute that has a column of its own (name, value and punctuation)."""
        size: exp.Expression = exp.Coalesce(
            this=self.dialect.byte_length(exp.column(ATTRS_COLUMN)),
            expressions=[exp.Literal.number(2)])
        for hot in HOT_COLUMNS:
            overhead = len(hot.attribute.encode()) + JSON_PUNCTUATION
            value = self.dialect.byte_length(exp.column(hot.column)) \
                if hot.sql_type == "VARCHAR" else exp.Literal.number(NUMBER_BYTES)
            present = exp.Not(this=exp.Is(this=exp.column(hot.column), expression=exp.Null()))
            term = exp.Case(ifs=[exp.If(this=present, true=exp.Add(
                this=value, expression=exp.Literal.number(overhead)))],
                default=exp.Literal.number(0))
            size = exp.Add(this=size, expression=term)
        return size


# `"name":"value",` around a string value; numbers are counted as 8 bytes.
JSON_PUNCTUATION, NUMBER_BYTES = 6, 8


class DerivedAttributes(AttributeResolver):
    """Attributes of a nested aggregation's inner result: its facets and values by key."""

    def __init__(self, dialect: SqlDialect, params: Params,
                 columns: dict[str, tuple[str, Decode]]) -> None:
        super().__init__(dialect, params)
        self.columns = columns

    def _column(self, name: str) -> tuple[exp.Expression, Decode]:
        if name not in self.columns:
            known = ", ".join(sorted(self.columns)) or "none"
            raise NrqlError(f"the inner query has no result named '{name}' (it has: {known})")
        column, decode = self.columns[name]
        return exp.column(column), decode

    def value(self, name: str) -> tuple[exp.Expression, Decode]:
        return self._column(name)

    def text(self, name: str) -> exp.Expression:
        column, decode = self._column(name)
        return self.dialect.to_text(column) if decode is Decode.PLAIN else \
            self.dialect.json_scalar_text(column)

    def number(self, name: str) -> exp.Expression:
        return self.dialect.to_number(self._column(name)[0])

    def boolean(self, name: str) -> exp.Expression:
        return self.dialect.to_boolean(self._column(name)[0])

    def is_missing(self, name: str) -> exp.Expression:
        return exp.Is(this=self._column(name)[0], expression=exp.Null())
