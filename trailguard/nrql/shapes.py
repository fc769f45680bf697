"""The aggregate statement: SELECT items grouped by facets, buckets and compared windows.

Facets are chosen over the whole window (and, with COMPARE WITH, from the current
window only), then kept for every bucket and window; New Relic picks facets the
same way. With TIMESERIES or COMPARE WITH the choice needs the facet's total
beside its per-bucket rows, so the statement groups by GROUPING SETS and ranks
the facets with window functions, all in one pass over `events`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from trailguard.nrql import ast
from trailguard.nrql.aggregates import AggregateCompiler, is_aggregate
from trailguard.nrql.plan import OutputColumn, Plan

if TYPE_CHECKING:
    from trailguard.nrql.compiler import QueryCompiler

# Result-ordering aggregates New Relic ranks facets by; others rank by event count.
RANKING_FUNCTIONS = frozenset({"count", "min", "max", "percentile", "average", "median"})
RANK, TOTAL, POSITION, FACET_RANK, BUCKET = (
    "nrql_rank", "nrql_total", "nrql_position", "nrql_facet_rank", "nrql_bucket")
COMPARISON, WINDOW = "nrql_comparison", "nrql_window"   # columns of derived relations
DEFAULT_FACET_LIMIT = 10


@dataclass(slots=True)
class _Columns:
    """The grouping keys and aggregate values of the statement, and their result keys."""

    keys: list[tuple[str, exp.Expression]] = field(default_factory=list)
    values: list[tuple[str, exp.Expression]] = field(default_factory=list)
    outputs: list[OutputColumn] = field(default_factory=list)
    facet_keys: list[str] = field(default_factory=list)
    facet_columns: list[str] = field(default_factory=list)
    bucket: exp.Expression | None = None
    unmatched_cases: list[exp.Expression] = field(default_factory=list)


def aggregate_statement(compiler: QueryCompiler, query: ast.Query) -> tuple[exp.Select, Plan]:
    """The statement of an aggregating query and its plan."""
    relation, where = compiler.source_relation(query)
    aggregates = compiler.aggregates()
    columns = _columns(compiler, aggregates, query)

    pairs = columns.keys + columns.values
    statement = exp.select(*[exp.alias_(sql, name) for name, sql in pairs])
    statement = statement.from_(relation, copy=False)
    if where is not None:
        statement = statement.where(where, copy=False)
    if columns.unmatched_cases:
        # FACET CASES without OR: rows that match no case are left out.
        statement = statement.where(exp.and_(*columns.unmatched_cases), copy=False)
    plan = Plan("aggregate", columns.outputs, columns.facet_keys, compare_ms=query.compare_ms)
    if not columns.keys:
        return statement, plan

    limit = query.limit if query.limit is not None else DEFAULT_FACET_LIMIT
    grouped = [sql for _, sql in columns.keys]
    if not columns.facet_columns:
        order = [exp.Ordered(this=exp.column(name)) for name, _ in columns.keys]
        return statement.group_by(*grouped, copy=False).order_by(*order, copy=False), plan
    rank = _rank_expression(compiler, aggregates, query)
    if columns.bucket is None and query.compare_ms is None:
        statement = statement.select(exp.alias_(rank, RANK), copy=False)
        statement = statement.group_by(*grouped, copy=False)
        order = [exp.Ordered(this=exp.column(RANK), desc=True, nulls_first=False)]
        order += [exp.Ordered(this=exp.column(name)) for name in columns.facet_columns]
        statement = statement.order_by(*order, copy=False).limit(limit, copy=False)
        return (statement.offset(query.offset, copy=False) if query.offset else statement), plan
    return _ranked(_with_totals(statement, columns, rank), columns, limit), plan


def _columns(compiler: QueryCompiler, aggregates: AggregateCompiler,
             query: ast.Query) -> _Columns:
    columns = _Columns()
    if query.compare_ms is not None:
        columns.keys.append((COMPARISON, exp.column(COMPARISON)))
    for index, facet in enumerate(query.facets):
        if isinstance(facet.expr, ast.Literal):
            raise compiler.expressions.unsupported("FACET on a constant", facet.expr)
        value, decode = compiler.expressions.value(facet.expr)
        name = f"facet_{index}"
        columns.keys.append((name, value))
        columns.facet_columns.append(name)
        columns.facet_keys.append(compiler.item_key(facet))
        columns.outputs.append(OutputColumn(columns.facet_keys[-1], decode))
        if isinstance(facet.expr, ast.Cases) and facet.expr.otherwise is None:
            columns.unmatched_cases.append(
                exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())))
    columns.bucket = _bucket(compiler, query)
    if columns.bucket is not None:
        columns.keys.append((BUCKET, columns.bucket))

    for item in query.select:
        key = compiler.item_key(item)
        for column in aggregates.columns(item.expr):
            columns.values.append((f"value_{len(columns.values)}", column.sql))
            columns.outputs.append(OutputColumn(key, column.decode, column.part, column.empty))
    return columns


def _bucket(compiler: QueryCompiler, query: ast.Query) -> exp.Expression | None:
    if query.source is not None:
        # Over a nested query: its rows carry their bucket when the outer query has one.
        return exp.column(BUCKET) if query.timeseries is not None else None
    window = compiler.window
    if window.bucket_ms is None:
        return None
    if window.step_ms is not None:
        return exp.column(WINDOW)
    timestamp: exp.Expression = exp.column("timestamp")
    if query.compare_ms is not None:
        # The earlier window's events fall into the same buckets, shifted forward.
        shift = exp.Case(ifs=[exp.If(
            this=exp.EQ(this=exp.column(COMPARISON), expression=exp.Literal.string("previous")),
            true=compiler.params.bind(query.compare_ms))], default=exp.Literal.number(0))
        timestamp = exp.paren(exp.Add(this=timestamp, expression=shift))
    return compiler.dialect.bucket_index(timestamp, compiler.params.bind(window.begin_ms),
                                         compiler.params.bind(window.bucket_ms))


def _rank_expression(compiler: QueryCompiler, aggregates: AggregateCompiler,
                     query: ast.Query) -> exp.Expression:
    """What picks and orders facets: ORDER BY, else the first item, else the event count."""
    chosen = _labelled(query, query.order_by[0][0]) if query.order_by else query.select[0].expr
    if query.order_by and (not is_aggregate(chosen) or query.order_by[0][1] is False):
        raise compiler.expressions.unsupported(
            "FACET ... ORDER BY other than a descending aggregate", chosen)
    if query.order_by or (isinstance(chosen, ast.Call) and chosen.name in RANKING_FUNCTIONS):
        return aggregates.columns(chosen)[0].sql
    return exp.Count(this=exp.Star())


def _labelled(query: ast.Query, expr: ast.Expr) -> ast.Expr:
    """`ORDER BY 'Total MB'` names a SELECT item by its label: that item's expression."""
    label = expr.value if isinstance(expr, ast.Literal) else \
        expr.name if isinstance(expr, ast.Attribute) else None
    return next((item.expr for item in query.select
                 if label is not None and item.alias == label), expr)


def _with_totals(statement: exp.Select, columns: _Columns, rank: exp.Expression) -> exp.Select:
    """Group by the keys; with TIMESERIES also by the keys without the bucket (the totals
    that rank facets), marked by TOTAL = 1."""
    statement = statement.select(exp.alias_(rank, RANK), copy=False)
    grouped = [sql for _, sql in columns.keys]
    if columns.bucket is None:
        return statement.group_by(*grouped, copy=False)
    totals = exp.Tuple(expressions=[sql.copy() for name, sql in columns.keys if name != BUCKET])
    everything = exp.Tuple(expressions=[sql.copy() for sql in grouped])
    marker = exp.Anonymous(this="GROUPING", expressions=[columns.bucket.copy()])
    statement = statement.select(exp.alias_(marker, TOTAL), copy=False)
    statement.set("group", exp.Group(expressions=[
        exp.GroupingSets(expressions=[totals, everything])]))
    return statement


def _ranked(grouped: exp.Select, columns: _Columns, limit: int) -> exp.Select:
    """Keep the `limit` facets with the highest current-window total, every row of each."""
    timed = columns.bucket is not None
    compared = any(name == COMPARISON for name, _ in columns.keys)
    picks = []
    if timed:
        picks.append(exp.EQ(this=exp.column(TOTAL), expression=exp.Literal.number(1)))
    if compared:
        picks.append(exp.EQ(this=exp.column(COMPARISON),
                            expression=exp.Literal.string("current")))
    facet_rank = exp.Max(this=exp.Case(ifs=[exp.If(this=exp.and_(*picks),
                                                   true=exp.column(RANK))]))
    names = [name for name, _ in columns.keys + columns.values]
    carried = [exp.column(name) for name in names] + ([exp.column(TOTAL)] if timed else [])
    partition = [exp.column(name) for name in columns.facet_columns]
    ranked = exp.select(*carried, exp.alias_(exp.Window(this=facet_rank, partition_by=partition),
                                             FACET_RANK))
    ranked = ranked.from_(grouped.subquery("grouped", copy=False), copy=False)

    order = [exp.Ordered(this=exp.column(FACET_RANK), desc=True, nulls_first=False)]
    order += [exp.Ordered(this=exp.column(name), nulls_first=False)
              for name in columns.facet_columns]
    position = exp.Window(this=exp.Anonymous(this="DENSE_RANK", expressions=[]),
                          order=exp.Order(expressions=order))
    numbered = exp.select(*[column.copy() for column in carried], exp.alias_(position, POSITION))
    numbered = numbered.from_(ranked.subquery("ranked", copy=False), copy=False)

    final = exp.select(*[exp.column(name) for name in names])
    final = final.from_(numbered.subquery("numbered", copy=False), copy=False)
    final = final.where(exp.LTE(this=exp.column(POSITION), expression=exp.Literal.number(limit)),
                        copy=False)
    if timed:
        final = final.where(exp.EQ(this=exp.column(TOTAL), expression=exp.Literal.number(0)),
                            copy=False)
    ordering = [exp.Ordered(this=exp.column(POSITION))]
    ordering += [exp.Ordered(this=exp.column(name)) for name, _ in columns.keys
                 if name not in columns.facet_columns]
    return final.order_by(*ordering, copy=False)
