"""Row-level NRQL expressions -> SQL: values, conditions and non-aggregate functions.

Every expression can be asked for in the type its context needs: `value` (its
own type, for SELECT and FACET), `text`, `number`, `boolean` or `condition`.
NRQL does not coerce between types, so the context decides.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

from sqlglot import exp

from trailguard.errors import NrqlError, NrqlUnsupportedError
from trailguard.nrql import ast
from trailguard.nrql.attributes import AttributeResolver, Decode
from trailguard.nrql.dialects import TIME_FORMATS, SqlDialect
from trailguard.nrql.params import Params

ARITHMETIC = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div, "%": exp.Mod}
COMPARATORS = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
NUMERIC_FUNCTIONS = frozenset({"numeric", "length", "round", "floor", "ceil", "ceiling", "abs",
                               "pow", "sqrt", "mod", "exp", "ln", "log10", "log2"})
MATH = {"floor": "floor", "ceil": "ceil", "ceiling": "ceil", "abs": "abs", "sqrt": "sqrt",
        "exp": "exp", "ln": "ln", "log10": "log10", "log2": "log2"}

SubqueryCompiler = Callable[[ast.Query], exp.Expression]


class ExpressionCompiler:
    """Compiles row-level expressions; `subquery` compiles `IN (FROM ... SELECT ...)`."""

    def __init__(self, source: str, dialect: SqlDialect, params: Params,
                 subquery: SubqueryCompiler | None = None) -> None:
        self.source = source
        self.dialect = dialect
        self.params = params
        self.attributes = AttributeResolver(dialect, params)
        self.subquery = subquery
        # Set while compiling an aggregate item, so round(latest(x)) or if(min(x) < 1, ...)
        # can hold aggregates; returns None for calls that are not aggregates.
        self.aggregate_hook: Callable[[ast.Call], exp.Expression | None] | None = None

    def error(self, reason: str, node: object) -> NrqlError:
        return NrqlError(reason, self.source, getattr(node, "position", None))

    def unsupported(self, feature: str, node: object) -> NrqlUnsupportedError:
        return NrqlUnsupportedError(feature, self.source, getattr(node, "position", None))

    # -- typed views ----------------------------------------------------------------------

    def hooked(self, expr: ast.Expr) -> exp.Expression | None:
        if isinstance(expr, ast.Call) and self.aggregate_hook is not None:
            return self.aggregate_hook(expr)
        return None

    def value(self, expr: ast.Expr) -> tuple[exp.Expression, Decode]:
        """A non-aggregate expression in its natural type."""
        if (found := self.hooked(expr)) is not None:
            return found, Decode.PLAIN
        if is_fallback(expr):
            assert isinstance(expr, ast.Binary)
            mark = self.params.mark()
            left, decode = self.value(expr.left)
            right, other = self.value(expr.right)
            if decode is not other:
                self.params.rollback(mark)   # both sides are compiled again, as text
                return exp.Coalesce(this=self.text(expr.left),
                                    expressions=[self.text(expr.right)]), Decode.PLAIN
            return exp.Coalesce(this=left, expressions=[right]), decode
        if isinstance(expr, ast.Attribute):
            return self.attributes.value(expr.name)
        if isinstance(expr, ast.Literal):
            return self.params.bind(expr.value), Decode.PLAIN
        if isinstance(expr, ast.Binary) and expr.op in ARITHMETIC:
            return self.number(expr), Decode.PLAIN
        if isinstance(expr, ast.Negate):
            return exp.Neg(this=self.number(expr.operand)), Decode.PLAIN
        if isinstance(expr, ast.Call):
            return self.function(expr), Decode.PLAIN
        if isinstance(expr, ast.Cases):
            return self.cases(expr), Decode.PLAIN
        if isinstance(expr, ast.Star):
            raise self.error("'*' is only allowed as SELECT * or count(*)", expr)
        return self.condition(expr), Decode.PLAIN

    def text(self, expr: ast.Expr) -> exp.Expression:
        if (found := self.hooked(expr)) is not None:
            return self.dialect.to_text(found)
        if is_fallback(expr):
            assert isinstance(expr, ast.Binary)
            return exp.Coalesce(this=self.text(expr.left), expressions=[self.text(expr.right)])
        if isinstance(expr, ast.Attribute):
            return self.attributes.text(expr.name)
        if isinstance(expr, ast.Literal):
            return self.params.bind(None if expr.value is None else as_text(expr.value))
        if isinstance(expr, ast.Call) and expr.name in TEXT_FUNCTIONS:
            return self.function(expr)
        return self.dialect.to_text(self.value(expr)[0])

    def number(self, expr: ast.Expr) -> exp.Expression:
        if (found := self.hooked(expr)) is not None:
            return found
        if is_fallback(expr):
            assert isinstance(expr, ast.Binary)
            return exp.Coalesce(this=self.number(expr.left),
                                expressions=[self.number(expr.right)])
        if isinstance(expr, ast.Attribute):
            return self.attributes.number(expr.name)
        if isinstance(expr, ast.Literal):
            if isinstance(expr.value, bool) or not isinstance(expr.value, int | float):
                raise self.error(f"expected a number, found {expr.value!r}", expr)
            # Always a float: mixing integer and float parameters gives ClickHouse a Variant.
            return self.params.bind(float(expr.value))
        if isinstance(expr, ast.Binary) and expr.op in ARITHMETIC:
            return arithmetic(expr.op, self.number(expr.left), self.number(expr.right))
        if isinstance(expr, ast.Negate):
            return exp.Neg(this=self.number(expr.operand))
        if isinstance(expr, ast.Call) and expr.name in NUMERIC_FUNCTIONS:
            return self.function(expr)
        return self.dialect.to_number(self.value(expr)[0])

    def boolean(self, expr: ast.Expr) -> exp.Expression:
        if isinstance(expr, ast.Attribute):
            return self.attributes.boolean(expr.name)
        if isinstance(expr, ast.Literal) and isinstance(expr.value, bool):
            return exp.true() if expr.value else exp.false()
        if isinstance(expr, ast.Call) and expr.name == "boolean":
            return self.dialect.to_boolean(self.text(self.only_argument(expr)))
        return self.condition(expr)

    # -- conditions -----------------------------------------------------------------------

    def condition(self, expr: ast.Expr) -> exp.Expression:
        """A boolean SQL expression for a WHERE condition."""
        if isinstance(expr, ast.Binary) and expr.op in ("and", "or"):
            join = exp.and_ if expr.op == "and" else exp.or_
            return exp.paren(join(self.condition(expr.left), self.condition(expr.right),
                                  copy=False), copy=False)
        if isinstance(expr, ast.Not):
            return exp.Not(this=exp.paren(self.condition(expr.operand)))
        if isinstance(expr, ast.Binary) and expr.op in COMPARATORS:
            return self.comparison(expr)
        if isinstance(expr, ast.InList):
            return self.membership(expr)
        if isinstance(expr, ast.InQuery):
            return self.in_subquery(expr)
        if isinstance(expr, ast.Like):
            return self.like(expr)
        if isinstance(expr, ast.IsNull):
            missing = self.missing(expr.operand)
            return exp.Not(this=exp.paren(missing)) if expr.negated else missing
        if isinstance(expr, ast.IsBoolean):
            return self.boolean_test(expr)
        if isinstance(expr, ast.Literal) and isinstance(expr.value, bool):
            return exp.true() if expr.value else exp.false()
        if isinstance(expr, ast.Call) and expr.name == "boolean":
            return exp.EQ(this=self.boolean(expr), expression=exp.true())
        raise self.error("expected a condition (such as attr = 'value')", expr)

    def comparison(self, expr: ast.Binary) -> exp.Expression:
        kind = comparison_kind(expr.left, expr.right)
        if kind == "null":
            missing = self.missing(expr.left if is_null(expr.right) else expr.right)
            return missing if expr.op == "=" else exp.Not(this=exp.paren(missing))
        if kind == "number":
            left, right = self.number(expr.left), self.number(expr.right)
        elif kind == "boolean":
            left, right = self.boolean(expr.left), self.boolean(expr.right)
        else:
            left, right = self.text(expr.left), self.text(expr.right)
        return COMPARATORS[expr.op](this=left, expression=right)

    def membership(self, expr: ast.InList) -> exp.Expression:
        if not expr.items:
            return exp.true() if expr.negated else exp.false()
        numeric = all(isinstance(item, ast.Literal) and isinstance(item.value, int | float)
                      and not isinstance(item.value, bool) for item in expr.items)
        operand = self.number(expr.operand) if numeric else self.text(expr.operand)
        items = [self.number(item) if numeric else self.text(item) for item in expr.items]
        test = exp.In(this=operand, expressions=items)
        return exp.Not(this=exp.paren(test)) if expr.negated else test

    def in_subquery(self, expr: ast.InQuery) -> exp.Expression:
        if self.subquery is None:
            raise self.unsupported("a subquery inside a subquery", expr)
        test = exp.In(this=self.text(expr.operand),
                      query=exp.Subquery(this=self.subquery(expr.query)))
        return exp.Not(this=exp.paren(test)) if expr.negated else test

    def like(self, expr: ast.Like) -> exp.Expression:
        operand = self.text(expr.operand)
        if expr.regex:
            if isinstance(expr.pattern, ast.Literal) and isinstance(expr.pattern.value, str):
                check_regex(expr.pattern.value, self.source, expr.pattern.position)
            test = self.dialect.regex_full_match(operand, self.text(expr.pattern))
        elif isinstance(expr.pattern, ast.Literal) and isinstance(expr.pattern.value, str):
            test = self.dialect.ilike(operand, expr.pattern.value, self.params.bind)
        else:
            raise self.error("LIKE takes a quoted pattern", expr.pattern)
        return exp.Not(this=exp.paren(test)) if expr.negated else test

    def missing(self, expr: ast.Expr) -> exp.Expression:
        if isinstance(expr, ast.Attribute):
            return self.attributes.is_missing(expr.name)
        return exp.Is(this=self.value(expr)[0], expression=exp.Null())

    def boolean_test(self, expr: ast.IsBoolean) -> exp.Expression:
        test = exp.EQ(this=self.boolean(expr.operand),
                      expression=exp.true() if expr.value else exp.false())
        if expr.negated:
            return exp.Not(this=exp.paren(exp.Coalesce(this=test, expressions=[exp.false()])))
        return test

    def cases(self, expr: ast.Cases) -> exp.Expression:
        """FACET CASES: the label of the first matching case (NULL when none match)."""
        whens = []
        for index, (condition, label) in enumerate(expr.cases):
            name = label if label is not None else f"case {index + 1}"
            whens.append(exp.If(this=self.condition(condition), true=self.params.bind(name)))
        otherwise = self.text(expr.otherwise) if expr.otherwise is not None else None
        return exp.Case(ifs=whens, default=otherwise)

    # -- functions ------------------------------------------------------------------------

    def only_argument(self, call: ast.Call, count: int = 1) -> ast.Expr:
        if len(call.args) < count:
            raise self.error(f"{call.spelling}() needs {count} argument(s)", call)
        return call.args[0]

    def function(self, call: ast.Call) -> exp.Expression:
        """A non-aggregate function call."""
        from trailguard.nrql.functions import compile_function  # one module per concern

        return compile_function(self, call)


TEXT_FUNCTIONS = frozenset({"lower", "upper", "concat", "substring", "capture", "aparse",
                            "string", "if", "eventtype", "getfield", *TIME_FORMATS})


PREDICATES = (ast.InList, ast.InQuery, ast.Like, ast.IsNull, ast.IsBoolean, ast.Not)


def is_condition(expr: ast.Expr) -> bool:
    """True for predicates (comparisons, IN, LIKE, IS, NOT, AND/OR of those)."""
    if isinstance(expr, PREDICATES):
        return True
    if isinstance(expr, ast.Binary):
        if expr.op in COMPARATORS:
            return True
        if expr.op in ("and", "or"):
            return is_condition(expr.left) or is_condition(expr.right)
    return isinstance(expr, ast.Literal) and isinstance(expr.value, bool)


def is_fallback(expr: ast.Expr) -> bool:
    """`a OR b` between values: the first that has a value (`totalTime OR duration OR 0`)."""
    return isinstance(expr, ast.Binary) and expr.op == "or" and not is_condition(expr)


def arithmetic(op: str, left: exp.Expression, right: exp.Expression) -> exp.Expression:
    """`left op right`; dividing by zero gives NULL, as NRQL shows no value."""
    if op in "/%":
        right = exp.Nullif(this=right, expression=exp.Literal.number(0))
    return exp.paren(ARITHMETIC[op](this=left, expression=right), copy=False)


def as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def is_null(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.Literal) and expr.value is None


def comparison_kind(left: ast.Expr, right: ast.Expr) -> str:
    """Which type a comparison is made in, decided by its literal side (if any)."""
    for side in (right, left):
        if is_null(side):
            return "null"
        if isinstance(side, ast.Literal):
            if isinstance(side.value, bool):
                return "boolean"
            return "number" if isinstance(side.value, int | float) else "text"
        if isinstance(side, ast.Binary | ast.Negate) or (
                isinstance(side, ast.Call) and side.name in NUMERIC_FUNCTIONS):
            return "number"
    return "text"


# RE2 (what both backends run) lacks some of Python's syntax; spotted here so the user
# gets a positioned NrqlError instead of a backend failure. Escapes and [classes] are
# blanked out first, so `\++` or `[*+]` are not mistaken for a possessive `a++`.
_ESCAPE_OR_CLASS = re.compile(r"(\\.)|\[\^?\]?(?:\\.|[^\]\\])*\]", re.DOTALL)
_NOT_RE2 = (
    (re.compile(r"\(\?<?[=!]"), "no lookahead or lookbehind"),
    (re.compile(r"\\[1-9]|\(\?P="), "no backreferences"),
    (re.compile(r"\(\?[>#(]"), "no atomic groups, comments or conditionals"),
    (re.compile(r"[*+?}]\+"), "no possessive quantifiers such as a++"),
    (re.compile(r"\(\?[-imsU]*[aLux]"), "inline flags are only i, m, s and U"),
)
_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")
MAX_REPEAT = 1000   # RE2's limit on {n,m}


def check_regex(pattern: str, source: str, position: int) -> None:
    """Reject a pattern the backend's RE2 would fail on, naming where it is."""
    try:
        with warnings.catch_warnings():   # "possible nested set": RE2 reads it as Python does
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
    except re.error as error:
        raise NrqlError(f"invalid regular expression: {error}", source, position) from None
    # Escapes keep their letter (`\1` stays visible as a backreference), classes vanish.
    blanked = _ESCAPE_OR_CLASS.sub(lambda match: match.group(1) or "c", pattern)
    blanked = re.sub(r"\\[^1-9]", "e", blanked)
    for check, reason in _NOT_RE2:
        if check.search(blanked):
            raise NrqlError(f"regular expressions here are RE2: {reason}", source, position)
    for low, high in _REPEAT.findall(blanked):
        if int(low) > MAX_REPEAT or (high and int(high) > MAX_REPEAT):
            raise NrqlError(f"regular expressions here are RE2: repeat counts are at most "
                            f"{MAX_REPEAT}", source, position)
    total, counts = _nested_repeats(blanked)
    if total > MAX_REPEAT:
        raise NrqlError(f"regular expressions here are RE2: repeat counts inside one another "
                        f"multiply to at most {MAX_REPEAT}, found {' inside '.join(counts)} "
                        f"({total:,})", source, position)


def _nested_repeats(blanked: str) -> tuple[int, list[str]]:
    """The largest product of {n,m} counts nested inside one another, and those counts
    (outermost first). RE2 refuses a pattern whose product exceeds 1000 (its
    RepetitionWalker divides 1000 by each count, m, or n for `{n,}`), as DuckDB's
    "invalid repetition size" shows for `(a{1000}){1000}`."""
    groups: list[tuple[int, list[str]]] = [(1, [])]   # per open group: its worst chain
    atom: tuple[int, list[str]] = (1, [])             # the chain of what a count follows
    index = 0
    while index < len(blanked):
        char, found = blanked[index], _REPEAT.match(blanked, index)
        if found:
            high = found.group(2)
            count = max(1, int(high) if high else int(found.group(1)))
            atom = (atom[0] * count, [found.group(0), *atom[1]])
            groups[-1] = max(groups[-1], atom, key=lambda chain: chain[0])
            index = found.end()
            continue
        if char == "(":
            groups.append((1, []))
        elif char == ")" and len(groups) > 1:
            atom = groups.pop()
            groups[-1] = max(groups[-1], atom, key=lambda chain: chain[0])
            index += 1
            continue
        atom = (1, [])
        index += 1
    return groups[0]


def named_group_index(pattern: str) -> int:
    """The capture group capture() returns: the first named one, else the first."""
    try:
        compiled = re.compile(pattern)
    except re.error:
        return 1
    if compiled.groupindex:
        return min(compiled.groupindex.values())
    return 1
