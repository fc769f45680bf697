"""How attribute access and the few non-portable operations are spelled per backend.

The compiler asks for expressions ("this attribute as text", "as a number") and
never writes dialect-specific SQL itself. Each backend is a small subclass that
overrides only what differs, in the manner of sqlglot's own dialects. Only
constants chosen here (function names, type names, format strings) appear as
literals; user values arrive as already-bound placeholders.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from trailguard.store.schema import ATTRS_COLUMN


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


# Calendar parts for dateOf()/hourOf()/...: (DuckDB strftime, ClickHouse formatDateTime).
TIME_FORMATS = {
    "dateof": ("%Y-%m-%d", "%Y-%m-%d"),
    "hourof": ("%H:00", "%H:00"),
    "minuteof": ("%H:%M", "%H:%i"),
    "weekdayof": ("%A", "%W"),
    "monthof": ("%B %Y", "%M %Y"),
    "yearof": ("%Y", "%Y"),
    "weekof": ("%G-W%V", "%G-W%V"),   # ISO week, e.g. 2023-W46
}


class SqlDialect:
    """DuckDB spelling; the base every other backend adapts."""

    name = "duckdb"

    # -- attribute access -----------------------------------------------------------------

    def json_value(self, path: exp.Expression) -> exp.Expression:
        """The attribute as JSON text (typed: numbers, strings, booleans), NULL when absent."""
        return _call("json_extract", exp.column(ATTRS_COLUMN), path)

    def json_text(self, path: exp.Expression) -> exp.Expression:
        """The attribute as a string, NULL when absent."""
        return _call("json_extract_string", exp.column(ATTRS_COLUMN), path)

    def json_scalar_text(self, value: exp.Expression) -> exp.Expression:
        """A JSON value (as `json_value` returns it) as plain text: '"abc"' -> abc."""
        return _call("json_extract_string", value, exp.Literal.string("$"))

    def json_path(self, attribute: str) -> str:
        """The JSON path of a flat attribute name (bound as a parameter, never pasted)."""
        return '$."' + attribute.replace("\\", "\\\\").replace('"', '\\"') + '"'

    # -- conversions ----------------------------------------------------------------------

    def to_number(self, value: exp.Expression) -> exp.Expression:
        return exp.TryCast(this=value, to=exp.DataType.build("DOUBLE"))

    def to_text(self, value: exp.Expression) -> exp.Expression:
        return exp.TryCast(this=value, to=exp.DataType.build("VARCHAR"))

    def to_integer(self, value: exp.Expression) -> exp.Expression:
        """A whole number, NULL when out of BIGINT's range (a plain CAST would fail)."""
        return exp.TryCast(this=value, to=exp.DataType.build("BIGINT"))

    def to_boolean(self, value: exp.Expression) -> exp.Expression:
        return exp.TryCast(this=value, to=exp.DataType.build("BOOLEAN"))

    def placeholder_type(self, value: object) -> exp.DataType | None:
        """The declared type of a bound parameter (only backends that need one)."""
        return None

    # -- matching -------------------------------------------------------------------------

    def ilike(self, value: exp.Expression, pattern: str,
              bind: Callable[[object], exp.Expression]) -> exp.Expression:
        """NRQL LIKE: ignores case, `%` is the only wildcard (`_` matches itself)."""
        if "_" not in pattern and "\\" not in pattern:
            # Nothing to escape: lower() LIKE runs several times faster than ILIKE ... ESCAPE.
            return exp.Like(this=exp.Lower(this=value), expression=bind(pattern.lower()))
        escaped = pattern.replace("\\", "\\\\").replace("_", "\\_")
        return exp.Escape(this=exp.ILike(this=value, expression=bind(escaped)),
                          expression=exp.Literal.string("\\"))

    def regex_full_match(self, value: exp.Expression, pattern: exp.Expression) -> exp.Expression:
        return _call("regexp_full_match", value, pattern)

    def regex_extract(self, value: exp.Expression, pattern: exp.Expression,
                      group: int) -> exp.Expression:
        """Capture group `group` of the first match, '' when none."""
        return _call("regexp_extract", value, pattern, exp.Literal.number(group))

    # -- aggregates -----------------------------------------------------------------------

    def latest(self, value: exp.Expression, order: exp.Expression) -> exp.Expression:
        return _call("arg_max", value, order)

    def earliest(self, value: exp.Expression, order: exp.Expression) -> exp.Expression:
        return _call("arg_min", value, order)

    def quantile(self, value: exp.Expression, fraction: float) -> exp.Expression:
        """Linear-interpolated percentile (fraction in 0..1)."""
        return _call("quantile_cont", value, exp.Literal.number(repr(fraction)))

    def stddev(self, value: exp.Expression) -> exp.Expression:
        return _call("stddev_pop", value)

    def covariance(self, x: exp.Expression, y: exp.Expression) -> exp.Expression:
        """Population covariance (a streaming, numerically stable algorithm)."""
        return _call("covar_pop", x, y)

    def variance(self, value: exp.Expression) -> exp.Expression:
        return _call("var_pop", value)

    def byte_length(self, text: exp.Expression) -> exp.Expression:
        """Bytes of a text (UTF-8), NULL for NULL."""
        return _call("strlen", exp.Cast(this=text, to=exp.DataType.build("VARCHAR")))

    def distinct_values(self, value: exp.Expression, limit: int) -> exp.Expression:
        """Sorted list of distinct non-null values, at most `limit`."""
        listed = _call("list_sort", _call("list", exp.Distinct(expressions=[value])))
        return _call("list_slice", listed, exp.Literal.number(1), exp.Literal.number(limit))

    def count_distinct(self, values: list[exp.Expression]) -> exp.Expression:
        """Exact number of distinct values (of tuples, for several)."""
        if len(values) == 1:
            return exp.Count(this=exp.Distinct(expressions=values))
        return exp.Count(this=exp.Distinct(expressions=[_call("row", *values)]))

    # -- time -----------------------------------------------------------------------------

    def bucket_index(self, timestamp: exp.Expression, begin: exp.Expression,
                     width: exp.Expression) -> exp.Expression:
        return exp.IntDiv(this=exp.paren(exp.Sub(this=timestamp, expression=begin)),
                          expression=width)

    def explode_range(self, first: exp.Expression, stop: exp.Expression) -> exp.Expression:
        """One row per integer in [first, stop) (SLIDE BY puts an event in several windows)."""
        return _call("unnest", _call("range", first, stop))

    def format_time(self, epoch_ms: exp.Expression, function: str) -> exp.Expression:
        moment = _call("epoch_ms", self.to_integer(epoch_ms))
        return _call("strftime", moment, exp.Literal.string(TIME_FORMATS[function][0]))


class ClickHouseDialect(SqlDialect):
    """ClickHouse: `attrs` is a String of JSON; functions are spelled differently."""

    name = "clickhouse"

    def json_value(self, path: exp.Expression) -> exp.Expression:
        has = _call("JSONHas", exp.column(ATTRS_COLUMN), path)
        raw = _call("JSONExtractRaw", exp.column(ATTRS_COLUMN), path)
        return exp.If(this=has, true=raw, false=exp.Null())

    def json_text(self, path: exp.Expression) -> exp.Expression:
        attrs = exp.column(ATTRS_COLUMN)
        # JSONExtractString is '' for numbers and booleans, which NRQL compares as text.
        is_string = exp.EQ(this=_call("JSONType", attrs, path),
                           expression=exp.Literal.string("String"))
        text = exp.If(this=is_string, true=_call("JSONExtractString", attrs, path),
                      false=_call("JSONExtractRaw", attrs, path))
        return exp.If(this=_call("JSONHas", attrs, path), true=text, false=exp.Null())

    def json_scalar_text(self, value: exp.Expression) -> exp.Expression:
        is_string = exp.EQ(this=_call("JSONType", value),
                           expression=exp.Literal.string("String"))
        return exp.If(this=is_string, true=_call("JSONExtractString", value.copy()),
                      false=value.copy())

    def json_path(self, attribute: str) -> str:
        return attribute  # JSONExtract* take a key, not a path: dots are part of the name

    def to_number(self, value: exp.Expression) -> exp.Expression:
        return _call("accurateCastOrNull", value, exp.Literal.string("Float64"))

    def to_text(self, value: exp.Expression) -> exp.Expression:
        return _call("toString", value)

    def to_integer(self, value: exp.Expression) -> exp.Expression:
        return _call("accurateCastOrNull", _call("trunc", value), exp.Literal.string("Int64"))

    def to_boolean(self, value: exp.Expression) -> exp.Expression:
        lowered = _call("lower", _call("toString", value))
        return exp.Case(ifs=[
            exp.If(this=exp.In(this=lowered, expressions=[exp.Literal.string("true"),
                                                          exp.Literal.string("1")]),
                   true=exp.true()),
            exp.If(this=exp.In(this=lowered, expressions=[exp.Literal.string("false"),
                                                          exp.Literal.string("0")]),
                   true=exp.false()),
        ])

    def placeholder_type(self, value: object) -> exp.DataType | None:
        if isinstance(value, bool):
            return exp.DataType.build("Bool", dialect="clickhouse")
        if isinstance(value, int):
            return exp.DataType.build("Int64", dialect="clickhouse")
        if isinstance(value, float):
            return exp.DataType.build("Float64", dialect="clickhouse")
        return exp.DataType.build("String", dialect="clickhouse")

    def ilike(self, value: exp.Expression, pattern: str,
              bind: Callable[[object], exp.Expression]) -> exp.Expression:
        escaped = pattern.replace("\\", "\\\\").replace("_", "\\_")
        return _call("ilike", value, bind(escaped))  # backslash escapes by default

    def regex_full_match(self, value: exp.Expression, pattern: exp.Expression) -> exp.Expression:
        anchored = _call("concat", exp.Literal.string("^(?:"), pattern, exp.Literal.string(")$"))
        return _call("match", value, anchored)

    def regex_extract(self, value: exp.Expression, pattern: exp.Expression,
                      group: int) -> exp.Expression:
        return _call("regexpExtract", value, pattern, exp.Literal.number(group))

    def latest(self, value: exp.Expression, order: exp.Expression) -> exp.Expression:
        # Nullable, so no rows give NULL rather than the type's default (0 or '').
        return _call("argMax", _call("toNullable", value), order)

    def earliest(self, value: exp.Expression, order: exp.Expression) -> exp.Expression:
        return _call("argMin", _call("toNullable", value), order)

    def quantile(self, value: exp.Expression, fraction: float) -> exp.Expression:
        return exp.ParameterizedAgg(this="quantileExactInclusive",
                                    expressions=[exp.Literal.number(repr(fraction))],
                                    params=[value])

    def stddev(self, value: exp.Expression) -> exp.Expression:
        return _call("stddevPop", value)

    def covariance(self, x: exp.Expression, y: exp.Expression) -> exp.Expression:
        # The plain covarPop/varPop lose precision on epoch-millisecond timestamps.
        return _call("covarPopStable", x, y)

    def variance(self, value: exp.Expression) -> exp.Expression:
        return _call("varPopStable", value)

    def byte_length(self, text: exp.Expression) -> exp.Expression:
        return _call("length", text)

    def distinct_values(self, value: exp.Expression, limit: int) -> exp.Expression:
        listed = _call("arraySort", _call("groupUniqArray", value))
        return _call("arraySlice", listed, exp.Literal.number(1), exp.Literal.number(limit))

    def count_distinct(self, values: list[exp.Expression]) -> exp.Expression:
        return _call("uniqExact", *values)

    def bucket_index(self, timestamp: exp.Expression, begin: exp.Expression,
                     width: exp.Expression) -> exp.Expression:
        return _call("intDiv", exp.Sub(this=timestamp, expression=begin), width)

    def explode_range(self, first: exp.Expression, stop: exp.Expression) -> exp.Expression:
        return _call("arrayJoin", _call("range", first, stop))

    def format_time(self, epoch_ms: exp.Expression, function: str) -> exp.Expression:
        moment = _call("fromUnixTimestamp64Milli", self.to_integer(epoch_ms),
                       exp.Literal.string("UTC"))
        return _call("formatDateTime", moment, exp.Literal.string(TIME_FORMATS[function][1]))


DIALECTS: dict[str, SqlDialect] = {"duckdb": SqlDialect(), "clickhouse": ClickHouseDialect()}


def dialect_for(name: str) -> SqlDialect:
    """The spelling for a store's dialect name."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"no NRQL dialect for store dialect {name!r}") from None
