"""NRQL expressions: conditions, arithmetic, literals, attributes and function calls.

`ExpressionParser` holds the token cursor; `parser.py` adds the clauses on top of it.
Two predicates written side by side with no AND mean AND, as New Relic accepts
(the official CloudTrail dashboards rely on it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from trailguard.errors import NrqlError, NrqlUnsupportedError
from trailguard.nrql import ast
from trailguard.nrql.limits import ASSOCIATIVE, MAX_NESTING, NESTING_REASON, balanced
from trailguard.nrql.tokens import Kind, Token, tokenize

CLAUSE_WORDS = frozenset({
    "select", "from", "where", "facet", "since", "until", "limit", "timeseries", "compare",
    "with", "offset", "order", "extrapolate", "slide", "as", "and", "or", "join", "show",
})

TIME_UNITS_MS = {
    "millisecond": 1, "second": 1000, "minute": 60_000, "hour": 3_600_000,
    "day": 86_400_000, "week": 604_800_000, "month": 30 * 86_400_000,
    "quarter": 91 * 86_400_000, "year": 365 * 86_400_000,
}

# Times and widths beyond ~31,000 years mean a typo; they would overflow SQL's BIGINT later.
MAX_MILLISECONDS = 10**15

COMPARISONS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def time_unit_ms(word: str) -> int | None:
    """Milliseconds in one `word` (`minute`, `Minutes`, `DAYS`...), else None."""
    lowered = word.lower()
    if lowered.endswith("s") and lowered[:-1] in TIME_UNITS_MS:
        lowered = lowered[:-1]
    return TIME_UNITS_MS.get(lowered)


class ExpressionParser:
    """A cursor over the tokens of one query, parsing expressions."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.index = 0
        self.depth = 0   # nesting of the recursive constructs being parsed (see `nested`)

    # -- token helpers -------------------------------------------------------------------

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def current_end(self) -> int:
        """The start of the next token: the text before it (stripped) was consumed."""
        return self.tokens[self.index].position if self.index else 0

    def advance(self) -> Token:
        token = self.current
        if token.kind is not Kind.END:
            self.index += 1
        return token

    def accept_word(self, *words: str) -> Token | None:
        if self.current.is_word(*words):
            return self.advance()
        return None

    def accept_symbol(self, symbol: str) -> Token | None:
        if self.current.kind is Kind.SYMBOL and self.current.text == symbol:
            return self.advance()
        return None

    def expect_word(self, word: str) -> Token:
        token = self.accept_word(word)
        if token is None:
            raise self.error(f"expected {word.upper()}")
        return token

    def expect_symbol(self, symbol: str) -> Token:
        token = self.accept_symbol(symbol)
        if token is None:
            raise self.error(f"expected '{symbol}'")
        return token

    def error(self, reason: str, token: Token | None = None) -> NrqlError:
        token = token or self.current
        return NrqlError(f"{reason}, found {token.describe()}", self.query, token.position)

    def milliseconds(self, number: Token, unit: int = 1) -> int:
        """`number` units in milliseconds; an NrqlError at `number` when out of range."""
        value = float(number.text) * unit
        if not abs(value) <= MAX_MILLISECONDS:   # also catches inf and nan
            raise self.error("time out of range (at most about 31,000 years)", number)
        return int(value)

    def quoted_name(self) -> Token:
        """A `backticked` attribute or event type; only a label (AS ``) may be empty."""
        token = self.advance()
        if not token.text:
            raise NrqlError("empty `backtick` name", self.query, token.position)
        return token

    @contextmanager
    def nested(self, token: Token) -> Iterator[None]:
        """One level of recursion (parenthesis, call, subquery, NOT, minus) at `token`."""
        if self.depth >= MAX_NESTING:
            raise self.error(NESTING_REASON, token)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def unsupported(self, feature: str, token: Token | None = None) -> NrqlUnsupportedError:
        token = token or self.current
        return NrqlUnsupportedError(feature, self.query, token.position)

    # -- query and clauses ---------------------------------------------------------------
    def parse_alias(self) -> str | None:
        if not self.accept_word("as"):
            return None
        token = self.advance()
        if token.kind in (Kind.STRING, Kind.QUOTED_NAME, Kind.NAME):
            return token.text
        raise self.error("expected a label after AS", token)

    def parse_subquery(self) -> ast.Query:
        """Overridden by the clause parser, which knows whole queries."""
        raise self.unsupported("subquery")

    # -- expressions ---------------------------------------------------------------------

    def parse_condition(self) -> ast.Expr:
        """A WHERE condition: predicates side by side without AND are ANDed."""
        return self.parse_or(juxtapose=True)

    def parse_expression(self) -> ast.Expr:
        return self.parse_or(juxtapose=False)

    def parse_or(self, juxtapose: bool) -> ast.Expr:
        operands = [self.parse_and(juxtapose)]
        positions: list[int] = []
        while (token := self.accept_word("or")) is not None:
            positions.append(token.position)
            operands.append(self.parse_and(juxtapose))
        return balanced("or", operands, positions)

    def parse_and(self, juxtapose: bool) -> ast.Expr:
        operands = [self.parse_not()]
        positions: list[int] = []
        while True:
            token = self.accept_word("and")
            if token is None and juxtapose and self.starts_predicate():
                token = self.current
            if token is None:
                return balanced("and", operands, positions)
            positions.append(token.position)
            operands.append(self.parse_not())

    def starts_predicate(self) -> bool:
        token = self.current
        if token.kind is Kind.QUOTED_NAME:
            return True
        if token.kind is Kind.SYMBOL:
            return token.text == "("
        return token.kind is Kind.NAME and token.text.lower() not in CLAUSE_WORDS

    def parse_not(self) -> ast.Expr:
        token = self.accept_word("not")
        if token is None:
            return self.parse_predicate()
        with self.nested(token):
            return ast.Not(self.parse_not(), token.position)

    def parse_predicate(self) -> ast.Expr:
        left = self.parse_additive()
        token = self.current
        if token.kind is Kind.SYMBOL and token.text in COMPARISONS:
            self.advance()
            right = self.parse_additive()
            return ast.Binary(COMPARISONS[token.text], left, right, token.position)

        negated = False
        if token.is_word("not") and self.peek().is_word("in", "like", "rlike"):
            self.advance()
            negated = True
        if self.accept_word("in"):
            if self.current.kind is Kind.SYMBOL and self.current.text == "(" \
                    and self.peek().is_word("select", "from"):
                with self.nested(self.advance()):
                    inner = self.parse_subquery()
                    self.expect_symbol(")")
                return ast.InQuery(left, inner, negated, token.position)
            return ast.InList(left, self.parse_in_items(), negated, token.position)
        if self.current.is_word("like", "rlike"):
            regex = self.advance().text.lower() == "rlike"
            pattern = self.parse_additive()
            return ast.Like(left, pattern, negated, regex, token.position)
        if negated:
            raise self.error("expected IN, LIKE or RLIKE after NOT")
        if self.accept_word("is"):
            return self.parse_is(left, token)
        return left

    def parse_is(self, operand: ast.Expr, token: Token) -> ast.Expr:
        negated = self.accept_word("not") is not None
        if self.accept_word("null"):
            return ast.IsNull(operand, negated, token.position)
        if self.accept_word("true"):
            return ast.IsBoolean(operand, True, negated, token.position)
        if self.accept_word("false"):
            return ast.IsBoolean(operand, False, negated, token.position)
        raise self.error("expected NULL, TRUE or FALSE after IS")

    def parse_in_items(self) -> tuple[ast.Expr, ...]:
        self.expect_symbol("(")
        if self.accept_symbol(")"):
            return ()  # `IN ()`: an emptied dashboard variable; matches nothing
        items = [self.parse_additive()]
        while self.accept_symbol(","):
            items.append(self.parse_additive())
        self.expect_symbol(")")
        return tuple(items)

    def parse_additive(self) -> ast.Expr:
        return self.parse_chain(("+", "-"), self.parse_multiplicative)

    def parse_multiplicative(self) -> ast.Expr:
        return self.parse_chain(("*", "/", "%"), self.parse_unary)

    def parse_chain(self, symbols: tuple[str, ...], operand: Callable[[], ast.Expr]
                    ) -> ast.Expr:
        """Left-associative `a op b op c`; a run of one associative operator (the
        quickstarts sum 50 attributes with `+`) is built balanced, so it stays shallow."""
        operands = [operand()]
        operators: list[Token] = []
        while self.current.kind is Kind.SYMBOL and self.current.text in symbols:
            operators.append(self.advance())
            operands.append(operand())
        kinds = {token.text for token in operators}
        if len(kinds) == 1 and kinds <= ASSOCIATIVE:
            return balanced(operators[0].text, operands, [t.position for t in operators])
        left = operands[0]
        for token, right in zip(operators, operands[1:]):
            left = ast.Binary(token.text, left, right, token.position)
        return left

    def parse_unary(self) -> ast.Expr:
        token = self.accept_symbol("-")
        if token is None:
            return self.parse_primary()
        with self.nested(token):
            return ast.Negate(self.parse_unary(), token.position)

    def parse_primary(self) -> ast.Expr:
        token = self.current
        if token.kind is Kind.NUMBER:
            self.advance()
            number = float(token.text)
            value: int | float = int(number) if number.is_integer() and "." not in token.text \
                and "e" not in token.text.lower() else number
            return ast.Literal(value, token.position)
        if token.kind in (Kind.STRING, Kind.REGEX):
            self.advance()
            return ast.Literal(token.text, token.position)
        if token.kind is Kind.QUOTED_NAME:
            return ast.Attribute(self.quoted_name().text, token.position)
        if token.kind is Kind.VARIABLE:
            raise NrqlError(f"dashboard variable {{{{{token.text}}}}} has no value",
                            self.query, token.position)
        if token.kind is Kind.SYMBOL and token.text == "(":
            self.advance()
            if self.current.is_word("select", "from"):
                raise self.unsupported("subquery as a value")
            with self.nested(token):
                inner = self.parse_or(juxtapose=True)
                self.parse_alias()   # `(latest(x) as 'label')` ships in dashboards; ignored
                self.expect_symbol(")")
            return inner
        if token.kind is Kind.NAME:
            return self.parse_index(self.parse_name())
        raise self.error("expected a value, an attribute or a function")

    def parse_index(self, value: ast.Expr) -> ast.Expr:
        """`attr['field']` (or `attr[field]`) is `getField(attr, 'field')`."""
        while (bracket := self.accept_symbol("[")) is not None:
            token = self.quoted_name() if self.current.kind is Kind.QUOTED_NAME \
                else self.advance()
            if token.kind not in (Kind.STRING, Kind.NAME, Kind.QUOTED_NAME):
                raise self.error("expected a field name inside [ ]", token)
            self.expect_symbol("]")
            field = ast.Literal(token.text, token.position)
            value = ast.Call("getfield", (value, field), bracket.position, spelling="getField")
        return value

    def parse_name(self) -> ast.Expr:
        token = self.advance()
        lowered = token.text.lower()
        if self.current.kind is Kind.SYMBOL and self.current.text == "(":
            with self.nested(token):
                if lowered == "cases":
                    return self.parse_cases(token.position)
                return self.parse_call(token)
        if lowered in ("true", "false"):
            return ast.Literal(lowered == "true", token.position)
        if lowered == "null":
            return ast.Literal(None, token.position)
        if lowered in CLAUSE_WORDS or lowered in ("not", "in", "like", "rlike", "is"):
            raise self.error("expected a value, an attribute or a function", token)
        return ast.Attribute(token.text, token.position)

    def parse_cases(self, position: int) -> ast.Cases:
        """`cases(WHERE c AS 'label', ...) [OR attr]`: the first matching label, per event."""
        self.expect_symbol("(")
        cases = []
        while True:
            self.accept_word("where")  # shipped dashboards sometimes leave it out after the first
            condition = self.parse_condition()
            cases.append((condition, self.parse_alias()))
            if self.accept_symbol(")"):
                break
            self.expect_symbol(",")
        otherwise = self.parse_expression() if self.accept_word("or") else None
        return ast.Cases(tuple(cases), otherwise, position)

    def parse_call(self, name: Token) -> ast.Call:
        self.expect_symbol("(")
        args: list[ast.Expr] = []
        named: list[tuple[str, ast.Expr]] = []
        where: ast.Expr | None = None
        steps: list[tuple[ast.Expr, str | None]] = []
        if not self.accept_symbol(")"):
            while True:
                if self.accept_word("where"):
                    where = self.parse_condition()
                    steps.append((where, self.parse_alias()))
                elif self.current.kind is Kind.NAME and self.peek().kind is Kind.SYMBOL \
                        and self.peek().text == ":":
                    key = self.advance().text.lower()
                    self.advance()
                    named.append((key, self.parse_expression()))
                else:
                    args.append(self.parse_argument())
                    self.parse_alias()  # `sum(x as 'label')` ships in dashboards; NR ignores it
                if self.accept_symbol(")"):
                    break
                if not self.accept_symbol(","):
                    raise self.error(f"expected ',' or ')' in {name.text}(...)")
        if len(steps) > 1:
            where = None  # funnel(x, WHERE .. AS 'a', WHERE ..): steps, not one filter
        else:
            steps = []
        return ast.Call(name.text.lower(), tuple(args), name.position, tuple(named), where,
                        tuple(steps), name.text)

    def parse_argument(self) -> ast.Expr:
        token = self.current
        if token.kind is Kind.SYMBOL and token.text == "*":
            self.advance()
            return ast.Star(token.position)
        if token.kind is Kind.NUMBER and self.peek().kind is Kind.NAME \
                and time_unit_ms(self.peek().text):
            self.advance()
            unit = time_unit_ms(self.advance().text)
            assert unit is not None
            return ast.Literal(self.milliseconds(token, unit), token.position)
        return self.parse_expression()
