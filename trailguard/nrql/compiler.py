"""NRQL syntax tree -> one SQL statement (through sqlglot) plus a result plan.

Query shapes: raw events (`SELECT *` or attributes, newest first) or aggregates,
optionally faceted, bucketed (TIMESERIES) and compared with an earlier window
(COMPARE WITH). The plan tells `results.py` how to turn rows back into New
Relic's result shape. User values only ever enter the statement as bound
parameters; every other name in it is generated here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from trailguard.errors import NrqlError, NrqlUnsupportedError
from trailguard.nrql import ast
from trailguard.nrql.aggregates import AggregateCompiler, is_aggregate
from trailguard.nrql.attributes import Decode, DerivedAttributes
from trailguard.nrql.dialects import SqlDialect, dialect_for
from trailguard.nrql.expressions import ExpressionCompiler
from trailguard.nrql.params import Params
from trailguard.nrql.plan import OutputColumn, Plan
from trailguard.nrql.shapes import BUCKET, COMPARISON, WINDOW, aggregate_statement
from trailguard.nrql.timewindow import Window, clause_at, query_window
from trailguard.store.schema import ATTRS_COLUMN, BASE_COLUMNS, HOT_COLUMNS, TABLE

DEFAULT_EVENT_LIMIT = 100
# Result keys use New Relic's spelling whatever case the query wrote (`COUNT(*)` -> count).
CANONICAL = {name.lower(): name for name in (
    "count", "uniqueCount", "uniques", "sum", "average", "min", "max", "latest", "earliest",
    "percentage", "filter", "percentile", "median", "stddev", "rate", "histogram", "concat",
    "lower", "upper", "substring", "length", "numeric", "string", "round", "floor", "ceil",
    "abs", "if", "capture", "aparse", "dateOf", "hourOf", "minuteOf", "weekdayOf", "monthOf",
    "yearOf", "weekOf", "getField", "eventType", "boolean", "bytecountestimate", "derivative")}


@dataclass(slots=True)
class CompiledQuery:
    sql: str
    params: dict[str, Any]
    plan: Plan


def compile_query(query: ast.Query, source: str, dialect_name: str = "duckdb",
                  now_ms: int | None = None) -> CompiledQuery:
    """Compile a parsed query for the given store dialect."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    dialect = dialect_for(dialect_name)
    compiler = QueryCompiler(source, dialect, Params(dialect.placeholder_type), now_ms)
    statement, plan = compiler.compile(query)
    return CompiledQuery(statement.sql(dialect=dialect_name), compiler.params.values, plan)


class QueryCompiler:
    """Builds the statement for one query (and the subqueries inside it)."""

    def __init__(self, source: str, dialect: SqlDialect, params: Params, now_ms: int) -> None:
        self.source = source
        self.dialect = dialect
        self.params = params
        self.now_ms = now_ms
        self.window = Window(0, 0)
        self.expressions = ExpressionCompiler(source, dialect, params, self.subquery)

    def error(self, reason: str, position: int | None) -> NrqlError:
        return NrqlError(reason, self.source, position)

    def compile(self, query: ast.Query) -> tuple[exp.Select, Plan]:
        self.window = query_window(query, self.now_ms, self.source)
        aggregated = [is_aggregate(item.expr) for item in query.select]
        if query.facets or any(aggregated):
            bad = next((item for item, agg in zip(query.select, aggregated)
                        if not agg and not isinstance(item.expr, ast.Literal)), None)
            if bad is not None:
                raise self.error("this query aggregates, so every SELECT item must be an "
                                 "aggregate function such as count(*)", bad.position)
            statement, plan = aggregate_statement(self, query)
        elif query.source is not None:
            raise NrqlUnsupportedError("listing the rows of a nested query (aggregate them)",
                                       self.source, query.position)
        else:
            statement, plan = self.event_statement(query)
        plan.begin_ms, plan.end_ms = self.window.begin_ms, self.window.end_ms
        plan.bucket_ms, plan.event_types = self.window.bucket_ms, list(query.event_types)
        plan.step_ms = self.window.step_ms
        if query.limit_asked is not None:
            plan.messages.append(f"LIMIT {query.limit_asked} was lowered to {query.limit}, "
                                 "the most a query returns (LIMIT MAX)")
        if query.timeseries is None:   # only an inner query was bucketed
            plan.bucket_ms = plan.step_ms = None
        return statement, plan

    # -- filters --------------------------------------------------------------------------

    def filters(self, query: ast.Query, begin_ms: int, end_ms: int) -> exp.Expression:
        """Event types, the time window and the WHERE condition."""
        types = exp.In(this=exp.column("event_type"),
                       expressions=[self.params.bind(name) for name in query.event_types])
        since = exp.GTE(this=exp.column("timestamp"), expression=self.params.bind(begin_ms))
        until = exp.LT(this=exp.column("timestamp"), expression=self.params.bind(end_ms))
        condition = exp.and_(types, since, until, copy=False)
        if query.where is not None:
            condition = exp.and_(condition, self.expressions.condition(query.where), copy=False)
        return condition

    def source_relation(self, query: ast.Query) -> tuple[exp.Expression, exp.Expression | None]:
        """What aggregates read: `events` (plus its filter), or both COMPARE WITH windows."""
        begin, end = self.window.begin_ms, self.window.end_ms
        if query.source is not None:
            return self.nested_relation(query)
        if self.window.step_ms is not None:
            return self.sliding_windows(query), None
        if query.compare_ms is None:
            return exp.to_table(TABLE), self.filters(query, begin, end)
        windows = []
        for label, shift in (("current", 0), ("previous", query.compare_ms)):
            select = exp.select(exp.Star(), exp.alias_(exp.Literal.string(label), COMPARISON))
            windows.append(select.from_(TABLE, copy=False).where(
                self.filters(query, begin - shift, end - shift), copy=False))
        union = exp.union(windows[0], windows[1], distinct=False)
        return exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("windows"))), \
            None

    def nested_relation(self, query: ast.Query) -> tuple[exp.Expression, exp.Expression | None]:
        """FROM (inner aggregation): the inner result rows, attributes named by result key."""
        inner = query.source
        assert inner is not None
        for clause, key, present in (
                ("SLIDE BY", "slide", query.slide is not None or inner.slide is not None),
                ("COMPARE WITH", "compare",
                 query.compare_ms is not None or inner.compare_ms is not None),
                ("a nested query inside a nested query", "", inner.source is not None)):
            if present:
                at = clause_at(query, key) if key in query.clauses else \
                    clause_at(inner, key) if key else inner.position
                raise NrqlUnsupportedError(f"nested aggregation with {clause}", self.source, at)
        if not inner.facets and not any(is_aggregate(item.expr) for item in inner.select):
            raise NrqlUnsupportedError("nested query over events (an inner query that does "
                                       "not aggregate)", self.source, inner.position)
        statement, plan = aggregate_statement(self, inner)
        facet_count = len(plan.facet_keys)
        # Inner columns get names of their own: ClickHouse would otherwise resolve an outer
        # `value_0` to the outer alias of the same name.
        renamed = [(f"facet_{index}", f"inner_facet_{index}") for index in range(facet_count)]
        renamed += [(f"value_{index}", f"inner_value_{index}")
                    for index in range(len(plan.outputs) - facet_count)]
        columns: dict[str, tuple[str, Decode]] = {}
        for (_, name), output in zip(renamed, plan.outputs):
            if output.part is None:   # percentiles and histograms are not single values
                columns.setdefault(output.key, (name, output.decode))
        self.expressions.attributes = DerivedAttributes(self.dialect, self.params, columns)

        # latest()/earliest() over inner rows order them by bucket (when bucketed).
        order = exp.column(BUCKET) if self.window.bucket_ms else exp.Literal.number(0)
        selections = [exp.alias_(exp.column(old), new) for old, new in renamed]
        selections.append(exp.alias_(order, "timestamp"))
        if self.window.bucket_ms:
            selections.append(exp.column(BUCKET))
        rows = exp.select(*selections).from_(statement.subquery("inner_rows", copy=False),
                                             copy=False)
        where = self.expressions.condition(query.where) if query.where is not None else None
        return rows.subquery("nested", copy=False), where

    def sliding_windows(self, query: ast.Query) -> exp.Expression:
        """SLIDE BY: each event once per overlapping window it falls in (column WINDOW)."""
        if query.compare_ms is not None:
            raise NrqlUnsupportedError("SLIDE BY with COMPARE WITH", self.source,
                                       clause_at(query, "slide"))
        window = self.window
        assert window.bucket_ms is not None and window.step_ms is not None
        offset = exp.paren(exp.Sub(this=exp.column("timestamp"),
                                   expression=self.params.bind(window.begin_ms)))
        step = self.params.bind(window.step_ms)

        def steps(numerator: exp.Expression) -> exp.Expression:
            # floor(), not integer division: that truncates negative offsets towards zero.
            quotient = exp.Div(this=exp.paren(numerator, copy=False), expression=step.copy())
            return exp.Cast(this=exp.Floor(this=quotient),
                            to=exp.DataType.build("BIGINT"))

        earliest = exp.Add(this=steps(exp.Sub(this=offset.copy(), expression=self.params.bind(
            window.bucket_ms))), expression=exp.Literal.number(1))
        first = exp.Anonymous(this="greatest", expressions=[exp.Literal.number(0), earliest])
        last = exp.Anonymous(this="least", expressions=[
            exp.Literal.number(window.buckets - 1), steps(offset)])
        exploded = self.dialect.explode_range(first, exp.Add(this=last,
                                                             expression=exp.Literal.number(1)))
        select = exp.select(exp.Star(), exp.alias_(exploded, WINDOW)).from_(TABLE, copy=False)
        select = select.where(self.filters(query, window.begin_ms, window.end_ms), copy=False)
        return select.subquery("windows", copy=False)

    # -- raw events -----------------------------------------------------------------------

    def event_statement(self, query: ast.Query) -> tuple[exp.Select, Plan]:
        for clause, key, present in (("TIMESERIES", "timeseries", query.timeseries is not None),
                                     ("COMPARE WITH", "compare", query.compare_ms is not None)):
            if present:
                raise self.error(f"{clause} needs an aggregate function such as count(*)",
                                 clause_at(query, key))
        where = self.filters(query, self.window.begin_ms, self.window.end_ms)
        limit = query.limit if query.limit is not None else DEFAULT_EVENT_LIMIT
        order = self.event_order(query)
        if any(isinstance(item.expr, ast.Star) for item in query.select):
            if len(query.select) > 1:
                raise NrqlUnsupportedError("SELECT * combined with other items", self.source,
                                           query.select[1].position)
            columns = [name for name, _ in BASE_COLUMNS] + [hot.column for hot in HOT_COLUMNS]
            columns.append(ATTRS_COLUMN)
            statement = exp.select(*[exp.column(name) for name in columns])
            statement = statement.from_(TABLE, copy=False)
            plan = Plan("star", [])
        else:
            outputs = [OutputColumn("timestamp", Decode.PLAIN)]
            selections: list[exp.Expression] = [exp.column("timestamp")]
            for item in query.select:
                value, decode = self.expressions.value(item.expr)
                selections.append(value)
                outputs.append(OutputColumn(self.item_key(item), decode))
            statement = exp.select(*selections).from_(TABLE, copy=False)
            plan = Plan("events", outputs)
        statement = statement.where(where, copy=False).order_by(*order, copy=False)
        statement = statement.limit(limit, copy=False)
        if query.offset:
            statement = statement.offset(query.offset, copy=False)
        return statement, plan

    def event_order(self, query: ast.Query) -> list[exp.Ordered]:
        newest_first = exp.Ordered(this=exp.column("timestamp"), desc=True)
        order = [exp.Ordered(this=self.expressions.value(expr)[0], desc=bool(descending),
                             nulls_first=False)
                 for expr, descending in query.order_by]
        return order + [newest_first]

    # -- subqueries -----------------------------------------------------------------------

    def subquery(self, query: ast.Query) -> exp.Expression:
        """`IN (FROM T SELECT uniques(x) ...)`: the distinct values of x, as text."""
        if len(query.select) != 1 or query.facets or query.timeseries is not None \
                or query.compare_ms is not None:
            raise self.error("a subquery after IN selects exactly one uniques(attribute)",
                             query.position)
        item = query.select[0].expr
        limit = 1000
        if isinstance(item, ast.Call) and item.name == "uniques" and item.args:
            if len(item.args) > 1 and isinstance(item.args[1], ast.Literal) \
                    and isinstance(item.args[1].value, int):
                limit = max(1, min(item.args[1].value, 10_000))
            item = item.args[0]
        elif is_aggregate(item):
            raise NrqlUnsupportedError("a subquery after IN that aggregates other than "
                                       "uniques()", self.source, query.position)
        outer = self.window
        begin = outer.begin_ms if query.since is None else query_window(
            query, self.now_ms, self.source).begin_ms
        end = outer.end_ms if query.until is None else query_window(
            query, self.now_ms, self.source).end_ms
        values = exp.select(self.expressions.text(item)).distinct(copy=False)
        values = values.from_(TABLE, copy=False)
        return values.where(self.filters(query, begin, end), copy=False).limit(limit, copy=False)

    # -- naming ---------------------------------------------------------------------------

    def key_of(self, expr: ast.Expr) -> str:
        """The result key New Relic uses for an unlabelled item (`count`, `average.x`)."""
        if isinstance(expr, ast.Attribute):
            return expr.name
        if isinstance(expr, ast.Call) and expr.name == "capture" and len(expr.args) > 1 \
                and isinstance(expr.args[1], ast.Literal) and isinstance(expr.args[1].value, str):
            group = re.search(r"\(\?P<(\w+)>", expr.args[1].value)
            if group:   # a capture is named after its group: FACET capture(m, '(?P<id>.*)')
                return group.group(1)
        if isinstance(expr, ast.Call):
            name = CANONICAL.get(expr.name, expr.spelling)
            if not expr.args or isinstance(expr.args[0], ast.Star):
                return name
            first = expr.args[0]
            if isinstance(first, ast.Attribute):
                return f"{name}.{first.name}"
            if isinstance(first, ast.Call) and is_aggregate(first):
                return name   # percentage(count(*), ...) -> "percentage"
            return f"{name}.{self.key_of(first)}"
        if isinstance(expr, ast.Literal):
            return str(expr.value)
        if isinstance(expr, ast.Cases):
            return "facet"
        return type(expr).__name__.lower()

    def item_key(self, item: ast.SelectItem) -> str:
        """A SELECT item's or facet's result key: its label, or New Relic's default name."""
        if item.alias:
            return item.alias
        if isinstance(item.expr, ast.Attribute | ast.Call | ast.Literal | ast.Cases):
            return self.key_of(item.expr)
        return item.text or self.key_of(item.expr)   # arithmetic: the text as written

    def aggregates(self) -> AggregateCompiler:
        span = self.window.bucket_ms or (self.window.end_ms - self.window.begin_ms)
        return AggregateCompiler(self.expressions, span)
