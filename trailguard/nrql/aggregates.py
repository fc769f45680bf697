"""Aggregate NRQL functions -> SQL aggregate expressions and how to read their result.

`filter(agg, WHERE c)` and `percentage(agg, WHERE c)` are compiled by passing the
condition down: the aggregate then only sees values of matching rows (a CASE
around its input), which works the same for every aggregate and backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlglot import exp

from trailguard.nrql import ast
from trailguard.nrql.attributes import Decode, DerivedAttributes
from trailguard.nrql.expressions import (
    COMPARATORS,
    ExpressionCompiler,
    arithmetic,
    is_fallback,
)

AGGREGATES = frozenset({
    "count", "uniquecount", "uniques", "sum", "average", "min", "max", "latest", "earliest",
    "percentage", "filter", "percentile", "median", "stddev", "rate", "histogram",
    "bytecountestimate", "derivative",
})
# Known New Relic aggregates trailguard does not implement (mostly metric-specific).
UNSUPPORTED_AGGREGATES = frozenset({
    "funnel", "cdfpercentage", "apdex", "bucketpercentile", "cardinality",
    "predictlinear", "latestrate", "keyset", "aggregationendtime", "stdvar",
    "histogrampercentile", "datapointcount", "irate", "idelta", "clamp_min", "clamp_max",
    "conditional", "dimensions", "blob", "mapkeys", "mapvalues", "jparse", "cidraddress",
    "buckets", "lookup", "tuple", "accountid",
})
EMPTY_ZERO = frozenset({"count", "uniquecount", "sum", "rate", "histogram", "bytecountestimate"})
UNIQUES_DEFAULT, UNIQUES_MAX = 1000, 10_000
HISTOGRAM_DEFAULTS = (10.0, 40, 0.0)   # width, buckets, start


@dataclass(slots=True)
class AggregateColumn:
    """One SQL column of an aggregate; `part` places it inside a compound result."""

    sql: exp.Expression
    decode: Decode
    part: str | int | None = None    # percentile "95" -> {"95": v}; histogram bucket -> [..]
    empty: object = None             # the value of an empty TIMESERIES bucket


def is_aggregate(expr: ast.Expr) -> bool:
    """True when `expr` contains an aggregate call (so its SELECT aggregates)."""
    if isinstance(expr, ast.Call):
        return expr.name in AGGREGATES or expr.name in UNSUPPORTED_AGGREGATES \
            or any(is_aggregate(arg) for arg in expr.args)
    if isinstance(expr, ast.Binary):
        return is_aggregate(expr.left) or is_aggregate(expr.right)
    if isinstance(expr, ast.Negate):
        return is_aggregate(expr.operand)
    return False


class AggregateCompiler:
    """Compiles aggregate SELECT items; `rate_window_ms` is the span rate() divides by."""

    def __init__(self, expressions: ExpressionCompiler, rate_window_ms: int) -> None:
        self.x = expressions
        self.rate_window_ms = rate_window_ms

    def columns(self, expr: ast.Expr) -> list[AggregateColumn]:
        """The SQL column(s) of one aggregate SELECT item."""
        if isinstance(expr, ast.Call) and expr.name in ("percentile", "histogram") \
                or isinstance(expr, ast.Call) and expr.name == "filter" and expr.args \
                and isinstance(expr.args[0], ast.Call) and expr.args[0].name == "percentile":
            return self.compound(expr, None)
        sql, decode, _ = self.scalar(expr, None)
        return [AggregateColumn(sql, decode, None, empty_value(expr))]

    def scalar(self, expr: ast.Expr, only: exp.Expression | None
               ) -> tuple[exp.Expression, Decode, object]:
        """An aggregate with a single value (and arithmetic between such)."""
        if isinstance(expr, ast.Call) and expr.name not in AGGREGATES \
                and expr.name not in UNSUPPORTED_AGGREGATES and is_aggregate(expr):
            return self.around(expr, only), Decode.PLAIN, None
        if isinstance(expr, ast.Call):
            return self.call(expr, only)
        if isinstance(expr, ast.Literal):
            return self.x.params.bind(expr.value), Decode.PLAIN, None
        if isinstance(expr, ast.Binary) and expr.op == "or" and is_fallback(expr):
            left, right = self.operand(expr.left, only), self.operand(expr.right, only)
            return exp.Coalesce(this=left, expressions=[right]), Decode.PLAIN, None
        if isinstance(expr, ast.Binary) and expr.op in COMPARATORS:
            left, right = self.operand(expr.left, only), self.operand(expr.right, only)
            return COMPARATORS[expr.op](this=left, expression=right), Decode.PLAIN, None
        if isinstance(expr, ast.Binary) and expr.op in "+-*/%":
            left, right = self.operand(expr.left, only), self.operand(expr.right, only)
            return arithmetic(expr.op, left, right), Decode.PLAIN, None
        if isinstance(expr, ast.Negate):
            return exp.Neg(this=self.operand(expr.operand, only)), Decode.PLAIN, None
        raise self.x.error("expected an aggregate function such as count(*)", expr)

    def around(self, call: ast.Call, only: exp.Expression | None) -> exp.Expression:
        """A row-level function over aggregates: `round(latest(x) / 60)`, `if(min(x) < 1, ..)`."""
        def hook(inner: ast.Call) -> exp.Expression | None:
            if inner.name in AGGREGATES or inner.name in UNSUPPORTED_AGGREGATES:
                return self.operand(inner, only)
            return None

        saved, self.x.aggregate_hook = self.x.aggregate_hook, hook
        try:
            return self.x.function(call)
        finally:
            self.x.aggregate_hook = saved

    def operand(self, expr: ast.Expr, only: exp.Expression | None) -> exp.Expression:
        """A number for arithmetic: latest() of a JSON attribute is JSON until converted."""
        if is_aggregate(expr):
            value, decode, _ = self.scalar(expr, only)
            return self.x.dialect.to_number(value) if decode is not Decode.PLAIN else value
        if isinstance(expr, ast.Literal | ast.Binary | ast.Negate):
            return self.x.number(expr)
        raise self.x.error("this query aggregates, so an attribute here must be inside an "
                           "aggregate function such as latest()", expr)

    def call(self, call: ast.Call, only: exp.Expression | None
             ) -> tuple[exp.Expression, Decode, object]:
        name = call.name
        if name in UNSUPPORTED_AGGREGATES or name not in AGGREGATES:
            if name in AGGREGATES or name in UNSUPPORTED_AGGREGATES:
                raise self.x.unsupported(f"function {call.spelling}()", call)
            raise self.x.error(f"{call.spelling}() is not an aggregate function; this query "
                               "aggregates, so wrap it in one such as latest()", call)
        empty = 0 if name in EMPTY_ZERO else None
        if name in ("filter", "percentage", "rate"):
            return self.wrapping(call, only) + (empty,)
        return self.plain(call, only) + (empty,)

    def wrapping(self, call: ast.Call, only: exp.Expression | None
                 ) -> tuple[exp.Expression, Decode]:
        if not call.args or not is_aggregate(call.args[0]):
            raise self.x.error(f"{call.spelling}() takes an aggregate first, such as count(*)",
                               call)
        inner = call.args[0]
        if call.name == "rate":
            if len(call.args) != 2 or not isinstance(call.args[1], ast.Literal) \
                    or not isinstance(call.args[1].value, int) or call.args[1].value <= 0:
                raise self.x.error("rate() takes an aggregate and a time such as 1 minute", call)
            return self.rate(self.operand(inner, only), call.args[1].value), Decode.PLAIN
        if call.where is None:
            raise self.x.error(f"{call.spelling}() needs a WHERE condition as its second "
                               "argument", call)
        condition = self.x.condition(call.where)
        narrowed = condition if only is None else exp.and_(only, condition)
        if call.name == "filter":
            return self.scalar(inner, narrowed)[:2]
        part, whole = self.scalar(inner, narrowed)[0], self.scalar(inner, only)[0]
        hundred = exp.Mul(this=exp.Literal.number(100), expression=part)
        return arithmetic("/", hundred, whole), Decode.PLAIN

    def rate(self, value: exp.Expression, per_ms: int) -> exp.Expression:
        """`value` per `per_ms` over the bucket (or window): value * per / span in DOUBLE.
        Multiplying before dividing keeps whole results exact (24 events over 6 hours are
        4.0 per hour, not 24 * 0.1666... = 3.99...); the factors are bound as floats, since
        a pasted 0.1666 is a DECIMAL literal to DuckDB, which JSON cannot carry."""
        scaled = exp.Mul(this=self.x.dialect.to_number(value),
                         expression=self.x.params.bind(float(per_ms)))
        return arithmetic("/", scaled, self.x.params.bind(float(self.rate_window_ms)))

    def plain(self, call: ast.Call, only: exp.Expression | None
              ) -> tuple[exp.Expression, Decode]:
        name, args = call.name, call.args
        if name == "count":
            if not args or isinstance(args[0], ast.Star):
                return exp.Count(this=_when(only, exp.Literal.number(1))
                                 if only is not None else exp.Star()), Decode.PLAIN
            present = exp.Not(this=exp.paren(self.x.missing(args[0])))
            test = present if only is None else exp.and_(only, present)
            return exp.Count(this=_when(test, exp.Literal.number(1))), Decode.PLAIN
        if name == "bytecountestimate":
            return self.byte_count(call, only), Decode.PLAIN
        if not args:
            raise self.x.error(f"{call.spelling}() needs an attribute", call)
        if name == "derivative":
            return self.derivative(call, only), Decode.PLAIN
        if name == "uniquecount":
            values = [_when(only, self.x.value(arg)[0]) for arg in args]
            return self.x.dialect.count_distinct(values), Decode.PLAIN
        if name == "uniques":
            return self.uniques(call, only)
        if name == "percentile":
            # In arithmetic, a percentile is one number: the first percentile asked for.
            point = _percent(self.x, args[1]) if len(args) > 1 else 95.0
            number = _when(only, self.x.number(args[0]))
            return self.x.dialect.quantile(number, point / 100), Decode.PLAIN
        if name in ("sum", "average", "min", "max", "stddev", "median"):
            return self.numeric(name, _when(only, self.x.number(args[0]))), Decode.PLAIN
        value, decode = self.x.value(args[0])
        order = _when(only, exp.column("timestamp"))
        pick = self.x.dialect.latest if name == "latest" else self.x.dialect.earliest
        return pick(value, order), decode

    def byte_count(self, call: ast.Call, only: exp.Expression | None) -> exp.Expression:
        """bytecountestimate(): the events' size as JSON (see AttributeResolver.event_bytes)."""
        if isinstance(self.x.attributes, DerivedAttributes) or call.args:
            raise self.x.unsupported("bytecountestimate() of a nested query or an attribute",
                                     call)
        total = exp.Sum(this=_when(only, self.x.attributes.event_bytes()))
        return exp.Coalesce(this=total, expressions=[exp.Literal.number(0)])

    def derivative(self, call: ast.Call, only: exp.Expression | None) -> exp.Expression:
        """derivative(x[, per]): the least-squares slope of x over time, per `per` (1 second
        by default): cov(t, x) / var(t) over the events that have a numeric x."""
        per = _whole(self.x, call.args[1], 1, 10**12, "derivative() interval") \
            if len(call.args) > 1 else 1000
        value = _when(only, self.x.number(call.args[0]))
        has_value = exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))
        moment = exp.Cast(this=exp.column("timestamp"), to=exp.DataType.build("DOUBLE"))
        spread = self.x.dialect.variance(_when(has_value, moment.copy()))
        slope = arithmetic("/", self.x.dialect.covariance(moment, value), spread)
        return exp.Mul(this=slope, expression=exp.Literal.number(per))

    def numeric(self, name: str, number: exp.Expression) -> exp.Expression:
        if name == "sum":
            return exp.Coalesce(this=exp.Sum(this=number), expressions=[exp.Literal.number(0)])
        if name == "stddev":
            return self.x.dialect.stddev(number)
        if name == "median":
            return self.x.dialect.quantile(number, 0.5)
        builder = {"average": exp.Avg, "min": exp.Min, "max": exp.Max}[name]
        return builder(this=number)

    def uniques(self, call: ast.Call, only: exp.Expression | None
                ) -> tuple[exp.Expression, Decode]:
        limit = UNIQUES_DEFAULT
        if len(call.args) > 1:
            limit = _whole(self.x, call.args[1], 1, UNIQUES_MAX, "uniques() limit")
        value, decode = self.x.value(call.args[0])
        return self.x.dialect.distinct_values(_when(only, value), limit), _list_decode(decode)

    def compound(self, expr: ast.Call, only: exp.Expression | None) -> list[AggregateColumn]:
        """percentile() (one column per percentile) and histogram() (one per bucket)."""
        if expr.name == "filter":
            if expr.where is None:
                raise self.x.error("filter() needs a WHERE condition", expr)
            condition = self.x.condition(expr.where)
            return self.compound(expr.args[0], condition)  # type: ignore[arg-type]
        if not expr.args:
            raise self.x.error(f"{expr.spelling}() needs an attribute", expr)
        number = _when(only, self.x.number(expr.args[0]))
        if expr.name == "histogram":
            return self.histogram(expr, number)
        points = [_percent(self.x, arg) for arg in expr.args[1:]] or [95.0]
        return [AggregateColumn(self.x.dialect.quantile(number.copy(), point / 100),
                                Decode.PLAIN, _percent_key(point)) for point in points]

    def histogram(self, call: ast.Call, number: exp.Expression) -> list[AggregateColumn]:
        width, buckets, start = HISTOGRAM_DEFAULTS
        positional = [_float(self.x, arg) for arg in call.args[1:4]]
        named = {key: _float(self.x, value) for key, value in call.named}
        width = named.get("width", positional[0] if positional else width)
        buckets = int(named.get("buckets", positional[1] if len(positional) > 1 else buckets))
        start = named.get("start", positional[2] if len(positional) > 2 else start)
        if width <= 0 or not 1 <= buckets <= 500:
            raise self.x.error("histogram() needs width > 0 and 1-500 buckets", call)
        edges = [start + bucket * width for bucket in range(buckets + 1)]
        if not all(math.isfinite(edge) for edge in edges):
            raise self.x.error("histogram() buckets must end below 1e308", call)
        # Values outside the range land in the first or last bucket, so only the inner
        # edges are compared with. Each is bound once, as a float (a pasted 0.1 is a
        # DECIMAL to DuckDB), and serves as one bucket's upper and the next one's lower edge.
        inner = {index: self.x.params.bind(float(edges[index])) for index in range(1, buckets)}
        columns = []
        for bucket in range(buckets):
            tests: list[exp.Expression] = []
            if bucket > 0:
                tests.append(exp.GTE(this=number.copy(), expression=inner[bucket].copy()))
            if bucket < buckets - 1:
                tests.append(exp.LT(this=number.copy(), expression=inner[bucket + 1].copy()))
            inside = exp.and_(*tests) if tests else exp.Not(this=exp.Is(
                this=number.copy(), expression=exp.Null()))
            count = exp.Count(this=_when(inside, exp.Literal.number(1)))
            columns.append(AggregateColumn(count, Decode.PLAIN, bucket, 0))
        return columns


def empty_value(expr: ast.Expr) -> object:
    """What an item shows for an empty TIMESERIES bucket: counts and sums are 0 there,
    and arithmetic over them follows (`sum(x) / 1024` is 0); everything else is null."""
    if isinstance(expr, ast.Call):
        if expr.name in ("filter", "rate") and expr.args:
            return empty_value(expr.args[0])
        return 0 if expr.name in EMPTY_ZERO else None
    if isinstance(expr, ast.Literal) and isinstance(expr.value, int | float):
        return expr.value
    if isinstance(expr, ast.Negate):
        inner = empty_value(expr.operand)
        return -inner if isinstance(inner, int | float) else None
    if isinstance(expr, ast.Binary) and expr.op in "+-*/%":
        left, right = empty_value(expr.left), empty_value(expr.right)
        if not isinstance(left, int | float) or not isinstance(right, int | float):
            return None
        if expr.op in "/%" and right == 0:
            return None
        operations = {"+": left + right, "-": left - right, "*": left * right}
        if expr.op in operations:
            return operations[expr.op]
        return left / right if expr.op == "/" else left % right
    return None


def _when(condition: exp.Expression | None, value: exp.Expression) -> exp.Expression:
    if condition is None:
        return value
    return exp.Case(ifs=[exp.If(this=condition.copy(), true=value)])


def _list_decode(decode: Decode) -> Decode:
    return Decode.JSON_LIST if decode is Decode.JSON else Decode.LIST


def _float(compiler: ExpressionCompiler, expr: ast.Expr) -> float:
    if isinstance(expr, ast.Literal) and isinstance(expr.value, int | float) \
            and not isinstance(expr.value, bool):
        return float(expr.value)
    raise compiler.error("expected a number", expr)


def _whole(compiler: ExpressionCompiler, expr: ast.Expr, low: int, high: int, what: str) -> int:
    value = _float(compiler, expr)
    if not value.is_integer() or not low <= value <= high:
        raise compiler.error(f"{what} must be a whole number from {low} to {high}", expr)
    return int(value)


def _percent(compiler: ExpressionCompiler, expr: ast.Expr) -> float:
    value = _float(compiler, expr)
    if not 0 <= value <= 100:
        raise compiler.error("a percentile is between 0 and 100", expr)
    return value


def _percent_key(point: float) -> str:
    return str(int(point)) if point.is_integer() else repr(point)
