"""NRQL tokens -> `Query` syntax tree (a hand-written recursive-descent parser).

Clause order after the SELECT/FROM head is free and a repeated WHERE is ANDed,
as New Relic accepts (shipped dashboards put WHERE after FACET and repeat it).
Expressions are parsed by `parse_expr.ExpressionParser`; this module adds the clauses.
"""

from __future__ import annotations

from trailguard.errors import NrqlError
from trailguard.nrql import ast
from trailguard.nrql.limits import balanced, check_depth
from trailguard.nrql.parse_expr import CLAUSE_WORDS, ExpressionParser, time_unit_ms
from trailguard.nrql.timeparse import parse_datetime_ms, time_of_day
from trailguard.nrql.tokens import Kind

__all__ = ["CLAUSE_WORDS", "MAX_LIMIT", "parse", "time_unit_ms"]

MAX_LIMIT = 5000
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PERIODS = ("hour", "day", "week", "month", "quarter", "year")


def parse(query: str) -> ast.Query:
    """Parse one NRQL query; raises `NrqlError` with the position and token on bad input."""
    parser = _Parser(query)
    result = parser.parse_query()
    if parser.current.kind is not Kind.END:
        raise parser.error("unexpected text after the query")
    check_depth(result, query, parser.tokens)
    return result


class _Parser(ExpressionParser):
    """Clauses on top of the expression parser."""

    def parse_subquery(self) -> ast.Query:
        """A query inside parentheses (`IN (FROM ... SELECT uniques(x))`); stops at `)`."""
        return self.parse_query()

    def at_query_end(self) -> bool:
        token = self.current
        return token.kind is Kind.END or (token.kind is Kind.SYMBOL and token.text == ")")

    def parse_query(self) -> ast.Query:
        start = self.current.position
        select: list[ast.SelectItem] | None = None
        event_types: list[str] | None = None
        query = ast.Query(select=[], event_types=[], position=start)
        wheres: list[tuple[ast.Expr, int]] = []   # repeated WHERE clauses are ANDed

        while not self.at_query_end():
            token = self.current
            if token.is_word("select"):
                if select is not None:
                    raise self.error("SELECT appears twice")
                self.advance()
                select = self.parse_select_list()
            elif token.is_word("from"):
                if event_types is not None:
                    raise self.error("FROM appears twice")
                self.advance()
                if (parenthesis := self.accept_symbol("(")) is not None:
                    with self.nested(parenthesis):
                        query.source = self.parse_subquery()   # nested aggregation
                        self.expect_symbol(")")
                    event_types = list(query.source.event_types)
                else:
                    event_types = self.parse_event_types()
            elif token.is_word("show"):
                raise self.unsupported("SHOW EVENT TYPES")
            elif token.is_word("with") and (select is None or event_types is None):
                raise self.unsupported("WITH ... AS (NRQL variables)")
            elif select is None or event_types is None:
                raise self.error("a query starts with SELECT ... FROM ... or FROM ... SELECT ...")
            else:
                self.parse_clause(query, wheres)

        if select is None:
            raise self.error("missing SELECT")
        if event_types is None:
            raise self.error("missing FROM")
        query.select = select
        query.event_types = event_types
        if wheres:   # balanced: thousands of WHERE clauses must not make a deep tree
            query.where = balanced("and", [condition for condition, _ in wheres],
                                   [position for _, position in wheres[1:]])
        return query

    def parse_select_list(self) -> list[ast.SelectItem]:
        items = [self.parse_select_item()]
        while self.accept_symbol(","):
            items.append(self.parse_select_item())
        return items

    def parse_select_item(self) -> ast.SelectItem:
        start = self.current
        if start.kind is Kind.SYMBOL and start.text == "*":
            self.advance()
            return ast.SelectItem(ast.Star(start.position), None, start.position)
        expr = self.parse_expression()
        text = self.query[start.position:self.current_end()].strip()
        return ast.SelectItem(expr, self.parse_alias(), start.position, text)

    def parse_event_types(self) -> list[str]:
        names = [self.parse_event_type()]
        while self.accept_symbol(","):
            names.append(self.parse_event_type())
        return names

    def parse_event_type(self) -> str:
        token = self.current
        if token.kind is Kind.SYMBOL and token.text == "(":
            raise self.unsupported("a nested query beside other event types in FROM")
        if token.kind in (Kind.NAME, Kind.QUOTED_NAME) and not (
                token.kind is Kind.NAME and token.text.lower() in CLAUSE_WORDS):
            if token.kind is Kind.QUOTED_NAME:
                self.quoted_name()
            else:
                self.advance()
            if self.current.kind is Kind.SYMBOL and self.current.text == "(":
                raise self.unsupported(f"FROM {token.text}(...)")
            if self.current.is_word("join", "inner", "left"):
                raise self.unsupported("JOIN")
            return token.text
        raise self.error("expected an event type after FROM")

    def parse_clause(self, query: ast.Query, wheres: list[tuple[ast.Expr, int]]) -> None:
        """One clause after the head; WHERE conditions are collected in `wheres`."""
        token = self.advance()
        word = token.text.lower() if token.kind is Kind.NAME else ""
        if word in ("since", "until", "timeseries", "compare"):
            query.clauses[word] = token.position
        if word == "where":
            wheres.append((self.parse_condition(), token.position))
        elif word == "facet":
            self.parse_facet_clause(query)
        elif word in ("since", "until"):
            point = self.parse_time_point()
            if word == "since":
                query.since = point
            else:
                query.until = point
        elif word == "limit":
            self.parse_limit(query)
        elif word == "offset":
            query.offset = self.parse_whole_number("OFFSET")
        elif word == "timeseries":
            self.parse_timeseries_clause(query)
        elif word == "compare":
            self.expect_word("with")
            query.compare_ms = self.parse_ago()
        elif word == "order":
            self.expect_word("by")
            query.order_by = self.parse_order_list()
        elif word == "with":
            self.parse_with(query)
        elif word == "extrapolate":
            return  # only affects sampled APM data; logs and CloudTrail are never sampled
        elif word == "raw":
            raise self.unsupported("RAW (metric data points)", token)
        elif word in ("slide", "join", "show"):
            raise self.unsupported(word.upper(), token)
        else:
            raise self.error("expected a clause (WHERE, FACET, SINCE, UNTIL, LIMIT, TIMESERIES)",
                             token)

    def parse_facet_clause(self, query: ast.Query) -> None:
        query.facets = self.parse_facets()
        if self.current.is_word("order"):   # FACET ... ORDER BY agg picks the facets
            self.advance()
            self.expect_word("by")
            query.order_by = self.parse_order_list(descending=True)

    def parse_timeseries_clause(self, query: ast.Query) -> None:
        query.timeseries = self.parse_bucket(default="auto")
        if self.current.is_word("slide"):
            query.clauses["slide"] = self.advance().position
            self.expect_word("by")
            query.slide = self.parse_bucket(default=None)

    def parse_with(self, query: ast.Query) -> None:
        if self.accept_word("timezone"):
            token = self.advance()
            if token.kind is not Kind.STRING:
                raise self.error("WITH TIMEZONE takes a quoted zone name", token)
            query.timezone = token.text
            query.clauses["timezone"] = token.position
            return
        if self.current.is_word("metric_format"):
            raise self.unsupported("WITH METRIC_FORMAT")
        raise self.unsupported("WITH ... AS (NRQL variables)")

    def parse_order_list(self, descending: bool | None = None
                         ) -> list[tuple[ast.Expr, bool | None]]:
        """ORDER BY items, None when no ASC/DESC is written (after FACET the default, and
        only documented, order is descending)."""
        items: list[tuple[ast.Expr, bool | None]] = []
        while True:
            expr = self.parse_expression()
            if self.accept_word("desc"):
                descending = True
            elif self.accept_word("asc"):
                descending = False
            items.append((expr, descending))
            if not self.accept_symbol(","):
                return items

    def parse_facets(self) -> list[ast.SelectItem]:
        facets = []
        while True:
            start = self.current
            expr = self.parse_expression()   # FACET CASES (...) is the cases() function
            text = self.query[start.position:self.current_end()].strip()
            facets.append(ast.SelectItem(expr, self.parse_alias(), start.position, text))
            if not self.accept_symbol(","):
                return facets

    def parse_whole_number(self, clause: str) -> int:
        token = self.advance()
        if token.kind is not Kind.NUMBER or not token.text.isdigit():
            raise self.error(f"{clause} takes a whole number", token)
        return int(token.text)

    def parse_limit(self, query: ast.Query) -> None:
        if self.accept_word("max"):
            query.limit_max = True
            query.limit = MAX_LIMIT
        else:
            asked = self.parse_whole_number("LIMIT (or MAX)")
            query.limit = min(asked, MAX_LIMIT)
            # New Relic lowers it silently; trailguard says so in metadata.messages.
            query.limit_asked = asked if asked > MAX_LIMIT else None
        if self.accept_word("offset"):
            query.offset = self.parse_whole_number("OFFSET")

    def parse_bucket(self, default: str | None) -> int | str:
        """A TIMESERIES / SLIDE BY width: `n unit`, a bare number of ms, AUTO, MAX, or nothing."""
        if self.accept_word("auto"):
            return "auto"
        if self.accept_word("max"):
            return "max"
        if self.current.kind is Kind.NUMBER:
            number = self.advance()
            unit = time_unit_ms(self.current.text) if self.current.kind is Kind.NAME else None
            if unit is None:
                width = self.milliseconds(number)  # a bare number is a width in milliseconds
            else:
                self.advance()
                width = self.milliseconds(number, unit)
            if width <= 0:
                raise self.error("a time bucket must be longer than zero", number)
            return width
        unit = time_unit_ms(self.current.text) if self.current.kind is Kind.NAME else None
        if unit is not None:
            self.advance()
            return unit
        if default is None:
            raise self.error("expected a width such as '1 minute', AUTO or MAX")
        return default

    def parse_ago(self) -> int:
        token = self.current
        if token.kind is not Kind.NUMBER:
            raise self.error("expected 'n units ago'")
        self.advance()
        unit = time_unit_ms(self.current.text) if self.current.kind is Kind.NAME else None
        if unit is None:
            raise self.error("expected a time unit such as 'minutes' or 'days'")
        self.advance()
        self.expect_word("ago")
        return self.milliseconds(token, unit)

    def parse_time_point(self) -> ast.TimePoint:
        token = self.current
        if token.kind is Kind.NUMBER:
            following = self.peek()
            if following.kind is Kind.NAME and time_unit_ms(following.text):
                return ast.RelativeTime(self.parse_ago(), token.position)
            self.advance()
            if following.kind is Kind.NAME and following.text.lower() not in CLAUSE_WORDS:
                raise self.error("expected a time unit such as 'minutes' or 'days'")
            return ast.AbsoluteTime(self.milliseconds(token), token.position)
        if token.kind is Kind.STRING:
            self.advance()
            moment = parse_datetime_ms(token.text)
            if moment is None:
                raise NrqlError(f"cannot read '{token.text}' as a date and time",
                                self.query, token.position)
            # Kept as text too: WITH TIMEZONE (anywhere in the query) may change its meaning.
            return ast.AbsoluteTime(moment, token.position, token.text)
        if token.is_word("now"):
            self.advance()
            return ast.NamedTime("now", token.position)
        if token.is_word("today", "yesterday", *WEEKDAYS):
            self.advance()
            return ast.NamedTime(token.text.lower(), token.position, self.parse_at())
        if token.is_word("this", "last"):
            self.advance()
            period = self.current
            if not period.is_word(*PERIODS):
                raise self.error(f"expected a period after {token.text.upper()} "
                                 "(hour, day, week, month, quarter, year)")
            self.advance()
            return ast.NamedTime(f"{token.text.lower()} {period.text.lower()}", token.position)
        raise self.error("expected a time: 'n units ago', epoch milliseconds, a date or NOW")

    def parse_at(self) -> str | None:
        if not self.accept_word("at"):
            return None
        token = self.advance()
        if token.kind is not Kind.STRING:
            raise self.error("AT takes a quoted time of day such as '09:00'", token)
        if time_of_day(token.text) is None:
            raise self.error("AT takes a time of day such as '09:00' or '17:30:15'", token)
        return token.text
