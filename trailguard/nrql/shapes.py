"""The aggregate statement: SELECT items grouped by facets, buckets and compared windows.

Facets are chosen over the whole window (and, with COMPARE WITH, from the current
window only), then kept for every bucket and window; New Relic picks facets the
same way. With TIMESERIES or COMPARE WITH the choice needs the facet's total
beside its per-bucket rows, so the statement groups by GROUPING SETS and ranks
the facets with window functions, all in one pass over `events`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from trailguard.nrql import ast
from trailguard.nrql.aggregates import is_aggregate

if TYPE_CHECKING:
    from trailguard.nrql.compiler import Plan, QueryCompiler

# Result-ordering aggregates New Relic ranks facets by; others rank by event count.
RANKING_FUNCTIONS = frozenset({"count", "min", "max", "percentile", "average", "median"})
RANK, TOTAL, POSITION, FACET_RANK, BUCKET = (
    "nrql_rank", "nrql_total", "nrql_position", "nrql_facet_rank", "nrql_bucket")


def aggregate_statement(compiler: QueryCompiler, query: ast.Query) -> tuple[exp.Select, Plan]:
    from trailguard.nrql.compiler import COMPARISON, DEFAULT_FACET_LIMIT, OutputColumn, Plan

    relation, where = compiler.source_relation(query)
    aggregates = compiler.aggregates()
    keys: list[tuple[str, exp.Expression]] = []
    outputs: list[OutputColumn] = []
    if query.compare_ms is not None:
        keys.append((COMPARISON, exp.column(COMPARISON)))
    facet_keys, facet_columns = [], []
    for index, facet in enumerate(query.facets):
        if isinstance(facet.expr, ast.Literal):
            raise compiler.expressions.unsupported("FACET on a constant", facet.expr)
        value, decode = compiler.expressions.value(facet.expr)
        name = f"facet_{index}"
        keys.append((name, value))
        facet_columns.append(name)
        facet_keys.append(compiler.item_key(facet))
        outputs.append(OutputColumn(facet_keys[-1], decode))
    bucket = _bucket(compiler, query)
    if bucket is not None:
        keys.append((BUCKET, bucket))

    values: list[tuple[str, exp.Expression]] = []
    for item in query.select:
        key = compiler.item_key(item)
        for column in aggregates.columns(item.expr):
            values.append((f"value_{len(values)}", column.sql))
            outputs.append(OutputColumn(key, column.decode, column.part, column.empty))

    statement = exp.select(*[exp.alias_(sql, name) for name, sql in keys + values])
    statement = statement.from_(relation, copy=False)
    if where is not None:
        statement = statement.where(where, copy=False)
    unmatched = [exp.Not(this=exp.Is(this=sql.copy(), expression=exp.Null()))
                 for (name, sql) in keys if name in facet_columns
                 and isinstance(query.facets[facet_columns.index(name)].expr, ast.Cases)
                 and query.facets[facet_columns.index(name)].expr.otherwise is None]
    if unmatched:
        # FACET CASES without OR: rows that match no case are left out.
        statement = statement.where(exp.and_(*unmatched), copy=False)
    plan = Plan("aggregate", outputs, facet_keys, compare_ms=query.compare_ms)
    if not keys:
        return statement, plan

    limit = query.limit if query.limit is not None else DEFAULT_FACET_LIMIT
    grouped = [sql for _, sql in keys]
    if not facet_columns:
        order = [exp.Ordered(this=exp.column(name)) for name, _ in keys]
        return statement.group_by(*grouped, copy=False).order_by(*order, copy=False), plan
    rank = _rank_expression(compiler, aggregates, query)
    if bucket is None and query.compare_ms is None:
        statement = statement.select(exp.alias_(rank, RANK), copy=False)
        statement = statement.group_by(*grouped, copy=False)
        order = [exp.Ordered(this=exp.column(RANK), desc=True, nulls_first=False)]
        order += [exp.Ordered(this=exp.column(name)) for name in facet_columns]
        statement = statement.order_by(*order, copy=False).limit(limit, copy=False)
        return (statement.offset(query.offset, copy=False) if query.offset else statement), plan
    return _ranked(statement, keys, values, rank, facet_columns, bucket, limit), plan


def _bucket(compiler: QueryCompiler, query: ast.Query) -> exp.Expression | None:
    from trailguard.nrql.compiler import COMPARISON, WINDOW

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


def _rank_expression(compiler: QueryCompiler, aggregates: object,
                     query: ast.Query) -> exp.Expression:
    """What picks and orders facets: ORDER BY, else the first item, else the event count."""
    chosen = query.order_by[0][0] if query.order_by else query.select[0].expr
    if query.order_by and (not is_aggregate(chosen) or not query.order_by[0][1]):
        raise compiler.expressions.unsupported(
            "FACET ... ORDER BY other than a descending aggregate", chosen)
    if query.order_by or (isinstance(chosen, ast.Call) and chosen.name in RANKING_FUNCTIONS):
        columns = aggregates.columns(chosen)  # type: ignore[attr-defined]
        return columns[0].sql
    return exp.Count(this=exp.Star())


def _ranked(statement: exp.Select, keys: list[tuple[str, exp.Expression]],
            values: list[tuple[str, exp.Expression]], rank: exp.Expression,
            facet_columns: list[str], bucket: exp.Expression | None, limit: int) -> exp.Select:
    from trailguard.nrql.compiler import COMPARISON

    grouped = [sql for _, sql in keys]
    statement = statement.select(exp.alias_(rank, RANK), copy=False)
    current = None
    if any(name == COMPARISON for name, _ in keys):
        current = exp.EQ(this=exp.column(COMPARISON), expression=exp.Literal.string("current"))
    if bucket is not None:
        totals = exp.Tuple(expressions=[sql.copy() for name, sql in keys if name != BUCKET])
        everything = exp.Tuple(expressions=[sql.copy() for sql in grouped])
        statement = statement.select(exp.alias_(
            exp.Anonymous(this="GROUPING", expressions=[bucket.copy()]), TOTAL), copy=False)
        statement.set("group", exp.Group(expressions=[
            exp.GroupingSets(expressions=[totals, everything])]))
    else:
        statement = statement.group_by(*grouped, copy=False)

    # The facet's rank is its total in the current window.
    is_total = exp.EQ(this=exp.column(TOTAL), expression=exp.Literal.number(1)) \
        if bucket is not None else None
    picks = [test for test in (is_total, current) if test is not None]
    facet_rank = exp.Max(this=exp.Case(ifs=[exp.If(this=exp.and_(*picks),
                                                   true=exp.column(RANK))]))
    names = [name for name, _ in keys] + [name for name, _ in values]
    partition = [exp.column(name) for name in facet_columns]
    ranked = exp.select(*[exp.column(name) for name in names], *(
        [exp.column(TOTAL)] if bucket is not None else []), exp.alias_(exp.Window(
            this=facet_rank, partition_by=partition), FACET_RANK))
    ranked = ranked.from_(statement.subquery("grouped", copy=False), copy=False)

    order = [exp.Ordered(this=exp.column(FACET_RANK), desc=True, nulls_first=False)]
    order += [exp.Ordered(this=exp.column(name), nulls_first=False) for name in facet_columns]
    position = exp.Window(this=exp.Anonymous(this="DENSE_RANK", expressions=[]),
                          order=exp.Order(expressions=order))
    numbered = exp.select(*[exp.column(name) for name in names], *(
        [exp.column(TOTAL)] if bucket is not None else []), exp.alias_(position, POSITION))
    numbered = numbered.from_(ranked.subquery("ranked", copy=False), copy=False)

    final = exp.select(*[exp.column(name) for name in names])
    final = final.from_(numbered.subquery("numbered", copy=False), copy=False)
    kept = exp.LTE(this=exp.column(POSITION), expression=exp.Literal.number(limit))
    final = final.where(kept, copy=False)
    if bucket is not None:
        per_bucket = exp.EQ(this=exp.column(TOTAL), expression=exp.Literal.number(0))
        final = final.where(per_bucket, copy=False)
    ordering = [exp.Ordered(this=exp.column(POSITION))]
    ordering += [exp.Ordered(this=exp.column(name)) for name, _ in keys
                 if name not in facet_columns]
    return final.order_by(*ordering, copy=False)
