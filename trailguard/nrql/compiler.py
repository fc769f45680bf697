"""NRQL syntax tree -> one SQL statement (through sqlglot) plus a result plan.

The plan tells `results.py` how to turn the rows back into New Relic's result
shape. User values only ever enter the statement as bound parameters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from trailguard.errors import NrqlError, NrqlUnsupportedError
from trailguard.nrql import ast
from trailguard.nrql.attributes import AttributeResolver, Decode
from trailguard.nrql.dialects import SqlDialect, dialect_for
from trailguard.nrql.params import Params
from trailguard.store.schema import ATTRS_COLUMN, BASE_COLUMNS, HOT_COLUMNS, TABLE

DEFAULT_WINDOW_MS = 3_600_000
DEFAULT_EVENT_LIMIT = 100
DEFAULT_FACET_LIMIT = 10
DAY_MS = 86_400_000

AGGREGATES = frozenset({"count", "uniquecount", "sum", "average", "min", "max",
                        "latest", "earliest"})


@dataclass(slots=True)
class OutputColumn:
    """One key of each result row, read from the SQL column of the same index."""

    key: str
    decode: Decode


@dataclass(slots=True)
class Plan:
    """What the rows mean: raw events, one aggregate row, or one row per facet."""

    shape: str                       # "events" | "star" | "aggregate" | "facet"
    outputs: list[OutputColumn]
    facet_keys: list[str] = field(default_factory=list)
    begin_ms: int = 0
    end_ms: int = 0
    event_types: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CompiledQuery:
    sql: str
    params: dict[str, Any]
    plan: Plan


def compile_query(query: ast.Query, source: str, dialect_name: str = "duckdb",
                  now_ms: int | None = None) -> CompiledQuery:
    """Compile a parsed query for the given store dialect."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    compiler = _Compiler(source, dialect_for(dialect_name))
    statement, plan = compiler.compile(query, now_ms)
    return CompiledQuery(statement.sql(dialect=dialect_name), compiler.params.values, plan)


def resolve_time(point: ast.TimePoint, now_ms: int) -> int:
    """Epoch ms of a SINCE/UNTIL time point."""
    if isinstance(point, ast.RelativeTime):
        return now_ms - point.milliseconds
    if isinstance(point, ast.AbsoluteTime):
        return point.epoch_ms
    start_of_today = now_ms - now_ms % DAY_MS
    return {"now": now_ms, "today": start_of_today,
            "yesterday": start_of_today - DAY_MS}[point.name]


class _Compiler:
    def __init__(self, source: str, dialect: SqlDialect) -> None:
        self.source = source
        self.dialect = dialect
        self.params = Params()
        self.attributes = AttributeResolver(dialect, self.params)

    def error(self, reason: str, position: int) -> NrqlError:
        return NrqlError(reason, self.source, position)

    # -- statement ------------------------------------------------------------------------

    def compile(self, query: ast.Query, now_ms: int) -> tuple[exp.Select, Plan]:
        end_ms = resolve_time(query.until, now_ms) if query.until else now_ms
        begin_ms = resolve_time(query.since, now_ms) if query.since else end_ms - DEFAULT_WINDOW_MS
        if query.timeseries is not None:
            raise NrqlUnsupportedError("TIMESERIES", self.source, query.position)

        where = self.window_condition(query.event_types, begin_ms, end_ms)
        if query.where is not None:
            where = exp.and_(where, self.condition(query.where))

        aggregated = [self.is_aggregate(item.expr) for item in query.select]
        if query.facets or any(aggregated):
            bad = next((item for item, agg in zip(query.select, aggregated) if not agg), None)
            if bad is not None:
                raise self.error("this query aggregates, so every SELECT item must be an "
                                 "aggregate function such as count(*)", bad.position)
            statement, plan = self.aggregate_statement(query)
        else:
            statement, plan = self.event_statement(query)

        plan.begin_ms, plan.end_ms, plan.event_types = begin_ms, end_ms, list(query.event_types)
        return statement.where(where, copy=False), plan

    def window_condition(self, event_types: list[str], begin_ms: int,
                         end_ms: int) -> exp.Expression:
        types = exp.In(this=exp.column("event_type"),
                       expressions=[self.params.bind(name) for name in event_types])
        since = exp.GTE(this=exp.column("timestamp"), expression=self.params.bind(begin_ms))
        until = exp.LT(this=exp.column("timestamp"), expression=self.params.bind(end_ms))
        return exp.and_(types, since, until)

    def event_statement(self, query: ast.Query) -> tuple[exp.Select, Plan]:
        limit = query.limit if query.limit is not None else DEFAULT_EVENT_LIMIT
        order = exp.Ordered(this=exp.column("timestamp"), desc=True)
        if any(isinstance(item.expr, ast.Star) for item in query.select):
            if len(query.select) > 1:
                raise NrqlUnsupportedError("SELECT * combined with other items", self.source,
                                           query.select[1].position)
            columns = [name for name, _ in BASE_COLUMNS] + [hot.column for hot in HOT_COLUMNS]
            columns.append(ATTRS_COLUMN)
            statement = exp.select(*[exp.column(name) for name in columns]).from_(TABLE)
            return statement.order_by(order).limit(limit), Plan("star", [])

        outputs = [OutputColumn("timestamp", Decode.PLAIN)]
        selections: list[exp.Expression] = [exp.column("timestamp")]
        for item in query.select:
            value, decode = self.value(item.expr)
            selections.append(value)
            outputs.append(OutputColumn(item.alias or self.key_of(item.expr), decode))
        statement = exp.select(*selections).from_(TABLE)
        return statement.order_by(order).limit(limit), Plan("events", outputs)

    def aggregate_statement(self, query: ast.Query) -> tuple[exp.Select, Plan]:
        selections: list[exp.Expression] = []
        outputs: list[OutputColumn] = []
        facet_keys: list[str] = []
        for index, facet in enumerate(query.facets):
            value, decode = self.value(facet.expr)
            selections.append(exp.alias_(value, f"facet_{index}"))
            outputs.append(OutputColumn(facet.alias or self.key_of(facet.expr), decode))
            facet_keys.append(facet.alias or self.key_of(facet.expr))
        for item in query.select:
            value, decode = self.aggregate(item.expr)
            selections.append(value)
            outputs.append(OutputColumn(item.alias or self.key_of(item.expr), decode))

        statement = exp.select(*selections).from_(TABLE)
        if not query.facets:
            return statement, Plan("aggregate", outputs)

        groups = [exp.column(f"facet_{index}") for index in range(len(query.facets))]
        first_aggregate = exp.Ordered(this=exp.Literal.number(len(query.facets) + 1),
                                      desc=True, nulls_first=False)
        by_facet = [exp.Ordered(this=group) for group in groups]
        limit = query.limit if query.limit is not None else DEFAULT_FACET_LIMIT
        statement = statement.group_by(*groups).order_by(first_aggregate, *by_facet).limit(limit)
        return statement, Plan("facet", outputs, facet_keys)

    # -- naming ---------------------------------------------------------------------------

    def key_of(self, expr: ast.Expr) -> str:
        """The result key New Relic uses for an unlabelled item (`count`, `average.x`)."""
        if isinstance(expr, ast.Attribute):
            return expr.name
        if isinstance(expr, ast.Call):
            if not expr.args or isinstance(expr.args[0], ast.Star):
                return expr.spelling
            first = expr.args[0]
            if isinstance(first, ast.Attribute):
                return f"{expr.spelling}.{first.name}"
            return f"{expr.spelling}.{self.key_of(first)}"
        if isinstance(expr, ast.Literal):
            return str(expr.value)
        return self.source_text(expr)

    def source_text(self, expr: ast.Expr) -> str:
        return self.source[getattr(expr, "position", 0):].split(",")[0].strip()

    # -- expressions ----------------------------------------------------------------------

    def is_aggregate(self, expr: ast.Expr) -> bool:
        if isinstance(expr, ast.Call):
            return expr.name in AGGREGATES or any(self.is_aggregate(a) for a in expr.args)
        if isinstance(expr, ast.Binary):
            return self.is_aggregate(expr.left) or self.is_aggregate(expr.right)
        if isinstance(expr, ast.Negate):
            return self.is_aggregate(expr.operand)
        return False

    def value(self, expr: ast.Expr) -> tuple[exp.Expression, Decode]:
        """A non-aggregate expression in its natural type."""
        if isinstance(expr, ast.Attribute):
            return self.attributes.value(expr.name)
        if isinstance(expr, ast.Literal):
            return self.params.bind(expr.value), Decode.PLAIN
        if isinstance(expr, ast.Binary) and expr.op in "+-*/%":
            return self.number(expr), Decode.PLAIN
        if isinstance(expr, ast.Negate):
            return exp.Neg(this=self.number(expr.operand)), Decode.PLAIN
        if isinstance(expr, ast.Call):
            return self.function(expr), Decode.PLAIN
        if isinstance(expr, ast.Star):
            raise self.error("'*' is only allowed as SELECT * or count(*)", expr.position)
        return self.condition(expr), Decode.PLAIN

    def text(self, expr: ast.Expr) -> exp.Expression:
        if isinstance(expr, ast.Attribute):
            return self.attributes.text(expr.name)
        if isinstance(expr, ast.Literal):
            return self.params.bind(None if expr.value is None else _as_text(expr.value))
        return self.dialect.to_text(self.value(expr)[0])

    def number(self, expr: ast.Expr) -> exp.Expression:
        if isinstance(expr, ast.Attribute):
            return self.attributes.number(expr.name)
        if isinstance(expr, ast.Literal):
            if isinstance(expr.value, bool) or not isinstance(expr.value, int | float):
                raise self.error(f"expected a number, found {expr.value!r}", expr.position)
            return self.params.bind(expr.value)
        if isinstance(expr, ast.Binary) and expr.op in "+-*/%":
            operator = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div, "%": exp.Mod}
            left, right = self.number(expr.left), self.number(expr.right)
            if expr.op == "/":
                right = exp.Nullif(this=right, expression=exp.Literal.number(0))
            return exp.paren(operator[expr.op](this=left, expression=right), copy=False)
        if isinstance(expr, ast.Negate):
            return exp.Neg(this=self.number(expr.operand))
        return self.dialect.to_number(self.value(expr)[0])

    def condition(self, expr: ast.Expr) -> exp.Expression:
        """A boolean SQL expression for a WHERE condition."""
        if isinstance(expr, ast.Binary) and expr.op in ("and", "or"):
            join = exp.and_ if expr.op == "and" else exp.or_
            return exp.paren(join(self.condition(expr.left), self.condition(expr.right)))
        if isinstance(expr, ast.Not):
            return exp.Not(this=exp.paren(self.condition(expr.operand)))
        if isinstance(expr, ast.Binary) and expr.op in ("=", "!=", "<", "<=", ">", ">="):
            return self.comparison(expr)
        if isinstance(expr, ast.InList):
            return self.membership(expr)
        if isinstance(expr, ast.Like):
            return self.like(expr)
        if isinstance(expr, ast.IsNull):
            missing = self.missing(expr.operand)
            return exp.Not(this=exp.paren(missing)) if expr.negated else missing
        if isinstance(expr, ast.IsBoolean):
            return self.boolean_test(expr)
        if isinstance(expr, ast.Literal) and isinstance(expr.value, bool):
            return exp.true() if expr.value else exp.false()
        raise self.error("expected a condition (such as attr = 'value')",
                         getattr(expr, "position", 0))

    def comparison(self, expr: ast.Binary) -> exp.Expression:
        operators = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE,
                     ">": exp.GT, ">=": exp.GTE}
        kind = _comparison_kind(expr.left, expr.right)
        if kind == "null":
            missing = self.missing(expr.left if _is_null(expr.right) else expr.right)
            return missing if expr.op == "=" else exp.Not(this=exp.paren(missing))
        if kind == "number":
            left, right = self.number(expr.left), self.number(expr.right)
        elif kind == "boolean":
            left, right = self.boolean(expr.left), self.boolean(expr.right)
        else:
            left, right = self.text(expr.left), self.text(expr.right)
        return operators[expr.op](this=left, expression=right)

    def membership(self, expr: ast.InList) -> exp.Expression:
        numeric = all(isinstance(item, ast.Literal) and isinstance(item.value, int | float)
                      and not isinstance(item.value, bool) for item in expr.items)
        operand = self.number(expr.operand) if numeric else self.text(expr.operand)
        items = [self.number(item) if numeric else self.text(item) for item in expr.items]
        test = exp.In(this=operand, expressions=items)
        return exp.Not(this=exp.paren(test)) if expr.negated else test

    def like(self, expr: ast.Like) -> exp.Expression:
        operand = self.text(expr.operand)
        if expr.regex:
            test = self.dialect.regex_full_match(operand, self.text(expr.pattern))
        elif isinstance(expr.pattern, ast.Literal) and isinstance(expr.pattern.value, str):
            # NRQL's only wildcard is %; SQL's _ must match itself. LIKE ignores case.
            escaped = expr.pattern.value.replace("\\", "\\\\").replace("_", "\\_")
            test = exp.Escape(this=exp.ILike(this=operand, expression=self.params.bind(escaped)),
                              expression=exp.Literal.string("\\"))
        else:
            test = exp.ILike(this=operand, expression=self.text(expr.pattern))
        return exp.Not(this=exp.paren(test)) if expr.negated else test

    def missing(self, expr: ast.Expr) -> exp.Expression:
        if isinstance(expr, ast.Attribute):
            return self.attributes.is_missing(expr.name)
        return exp.Is(this=self.value(expr)[0], expression=exp.Null())

    def boolean(self, expr: ast.Expr) -> exp.Expression:
        if isinstance(expr, ast.Attribute):
            return self.attributes.boolean(expr.name)
        if isinstance(expr, ast.Literal) and isinstance(expr.value, bool):
            return exp.true() if expr.value else exp.false()
        return self.condition(expr)

    def boolean_test(self, expr: ast.IsBoolean) -> exp.Expression:
        test = exp.EQ(this=self.boolean(expr.operand),
                      expression=exp.true() if expr.value else exp.false())
        if expr.negated:
            return exp.Not(this=exp.paren(exp.Coalesce(this=test, expressions=[exp.false()])))
        return test

    def function(self, call: ast.Call) -> exp.Expression:
        if call.name in ("lower", "upper") and len(call.args) == 1:
            builder = exp.Lower if call.name == "lower" else exp.Upper
            return builder(this=self.text(call.args[0]))
        raise NrqlUnsupportedError(f"function {call.spelling}()", self.source, call.position)

    def aggregate(self, expr: ast.Expr) -> tuple[exp.Expression, Decode]:
        """An aggregate SELECT item (aggregate calls and arithmetic between them)."""
        if isinstance(expr, ast.Call) and expr.name in AGGREGATES:
            return self.aggregate_call(expr)
        if isinstance(expr, ast.Binary) and expr.op in "+-*/":
            operator = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div}
            left = self.aggregate(expr.left)[0] if self.is_aggregate(expr.left) \
                else self.number(expr.left)
            right = self.aggregate(expr.right)[0] if self.is_aggregate(expr.right) \
                else self.number(expr.right)
            if expr.op == "/":
                right = exp.Nullif(this=right, expression=exp.Literal.number(0))
            return exp.paren(operator[expr.op](this=left, expression=right)), Decode.PLAIN
        raise self.error("expected an aggregate function", getattr(expr, "position", 0))

    def aggregate_call(self, call: ast.Call) -> tuple[exp.Expression, Decode]:
        if call.where is not None:
            raise NrqlUnsupportedError(f"{call.spelling}(..., WHERE ...)", self.source,
                                       call.position)
        name, args = call.name, call.args
        if name == "count":
            if not args or isinstance(args[0], ast.Star):
                return exp.Count(this=exp.Star()), Decode.PLAIN
            return exp.Count(this=exp.Not(this=exp.paren(self.missing(args[0])))), Decode.PLAIN
        if not args:
            raise self.error(f"{call.spelling}() needs an attribute", call.position)
        if name == "uniquecount":
            if len(args) > 1:
                raise NrqlUnsupportedError("uniqueCount of several attributes", self.source,
                                           call.position)
            value = self.value(args[0])[0]
            return exp.Count(this=exp.Distinct(expressions=[value])), Decode.PLAIN
        if name in ("sum", "average", "min", "max"):
            number = self.number(args[0])
            if name == "sum":
                return exp.Coalesce(this=exp.Sum(this=number),
                                    expressions=[exp.Literal.number(0)]), Decode.PLAIN
            builder = {"average": exp.Avg, "min": exp.Min, "max": exp.Max}[name]
            return builder(this=number), Decode.PLAIN
        value, decode = self.value(args[0])
        pick = self.dialect.latest if name == "latest" else self.dialect.earliest
        return pick(value, exp.column("timestamp")), decode


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_null(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.Literal) and expr.value is None


def _comparison_kind(left: ast.Expr, right: ast.Expr) -> str:
    """Which type a comparison is made in, decided by its literal side (if any)."""
    for side in (right, left):
        if _is_null(side):
            return "null"
        if isinstance(side, ast.Literal):
            if isinstance(side.value, bool):
                return "boolean"
            return "number" if isinstance(side.value, int | float) else "text"
        if isinstance(side, ast.Binary | ast.Negate) or (
                isinstance(side, ast.Call) and side.name in ("length", "numeric")):
            return "number"
    return "text"
