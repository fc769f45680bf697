"""Non-aggregate NRQL functions (concat, if, capture, aparse, dateOf, ...) -> SQL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlglot import exp

from trailguard.nrql import ast
from trailguard.nrql.dialects import TIME_FORMATS
from trailguard.nrql.expressions import MATH, arithmetic, check_regex, named_group_index

if TYPE_CHECKING:
    from trailguard.nrql.expressions import ExpressionCompiler


def compile_function(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    """SQL for a row-level function; unknown ones are `NrqlUnsupportedError`."""
    handler = _HANDLERS.get(call.name)
    if handler is None:
        if call.name in MATH:
            return exp.Anonymous(this=MATH[call.name],
                                 expressions=[compiler.number(compiler.only_argument(call))])
        if call.name in TIME_FORMATS:
            return compiler.dialect.format_time(compiler.number(compiler.only_argument(call)),
                                                call.name)
        raise compiler.unsupported(f"function {call.spelling}()", call)
    return handler(compiler, call)


def _case(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    builder = exp.Lower if call.name == "lower" else exp.Upper
    return builder(this=compiler.text(compiler.only_argument(call)))


def _concat(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    if not call.args:
        raise compiler.error("concat() needs at least one argument", call)
    # NRQL leaves out null arguments instead of making the whole result null.
    parts = [exp.Coalesce(this=compiler.text(arg), expressions=[exp.Literal.string("")])
             for arg in call.args]
    return exp.Concat(expressions=parts, safe=True)


def _substring(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    text = compiler.text(compiler.only_argument(call, 2))
    start = compiler.number(call.args[1])
    # NRQL counts from 0, and from the end when negative; SQL counts from 1.
    one = exp.Literal.number(1)
    from_end = exp.Add(this=exp.Length(this=text.copy()),
                       expression=exp.Add(this=start.copy(), expression=one.copy()))
    negative = exp.LT(this=start, expression=exp.Literal.number(0))
    first = exp.Case(ifs=[exp.If(this=negative, true=from_end)],
                     default=exp.Add(this=start.copy(), expression=one))
    first = compiler.dialect.to_integer(first)
    if len(call.args) > 2:
        length = compiler.dialect.to_integer(compiler.number(call.args[2]))
        return exp.Substring(this=text, start=first, length=length)
    return exp.Substring(this=text, start=first)


def _length(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    return exp.Length(this=compiler.text(compiler.only_argument(call)))


def _numeric(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    argument = compiler.only_argument(call)
    if isinstance(argument, ast.Attribute):
        # A number stored as a number, or a string that reads as one.
        return exp.Coalesce(this=compiler.number(argument),
                            expressions=[compiler.dialect.to_number(compiler.text(argument))])
    return compiler.dialect.to_number(compiler.text(argument))


def _string(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    argument = compiler.only_argument(call)
    precision = dict(call.named).get("precision")
    if precision is None:
        return compiler.text(argument)
    digits = _whole_number(compiler, precision, call)
    rounded = exp.Round(this=compiler.number(argument), decimals=exp.Literal.number(digits))
    return compiler.dialect.to_text(rounded)


def _boolean(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    return compiler.boolean(call)


def _round(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    number = compiler.number(compiler.only_argument(call))
    if len(call.args) < 2:
        return exp.Round(this=number)
    nearest = compiler.number(call.args[1])  # round(x, 5): to the nearest multiple of 5
    scaled = exp.Round(this=arithmetic("/", number, nearest))
    return exp.paren(exp.Mul(this=scaled, expression=nearest.copy()))


def _power(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    compiler.only_argument(call, 2)
    return exp.Pow(this=compiler.number(call.args[0]), expression=compiler.number(call.args[1]))


def _mod(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    compiler.only_argument(call, 2)
    return arithmetic("%", compiler.number(call.args[0]), compiler.number(call.args[1]))


def _if(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    condition = compiler.condition(compiler.only_argument(call, 2))
    branches = list(call.args[1:3])
    numeric = all(_is_numeric(branch) for branch in branches)
    convert = compiler.number if numeric else compiler.text
    otherwise = convert(branches[1]) if len(branches) > 1 else None
    return exp.Case(ifs=[exp.If(this=condition, true=convert(branches[0]))], default=otherwise)


def _is_numeric(expr: ast.Expr) -> bool:
    if isinstance(expr, ast.Literal):
        return isinstance(expr.value, int | float) and not isinstance(expr.value, bool)
    return isinstance(expr, ast.Binary | ast.Negate)


def _capture(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    text = compiler.text(compiler.only_argument(call, 2))
    pattern = _literal_string(compiler, call.args[1], call)
    check_regex(pattern, compiler.source, call.args[1].position)  # type: ignore[union-attr]
    # capture() must match the whole value, like RLIKE.
    anchored = f"^(?:{pattern})$"
    extracted = compiler.dialect.regex_extract(text, compiler.params.bind(anchored),
                                               named_group_index(pattern))
    return exp.Nullif(this=extracted, expression=exp.Literal.string(""))


def _aparse(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    text = compiler.text(compiler.only_argument(call, 2))
    pattern = _literal_string(compiler, call.args[1], call)
    extracted = compiler.dialect.regex_extract(text, compiler.params.bind(aparse_regex(pattern)),
                                               1)
    return exp.Nullif(this=extracted, expression=exp.Literal.string(""))


def aparse_regex(pattern: str) -> str:
    """An anchor-parse pattern as a regex: `*` captures, `%` skips, case ignored."""
    pieces = []
    for char in pattern:
        if char == "*":
            pieces.append("(.*?)")
        elif char == "%":
            pieces.append(".*?")
        else:
            pieces.append(re.escape(char))
    return "(?i)^" + "".join(pieces) + "$"


def _event_type(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    return exp.column("event_type")


def _get_field(compiler: ExpressionCompiler, call: ast.Call) -> exp.Expression:
    compiler.only_argument(call, 2)
    source, field = call.args[0], call.args[1]
    if not isinstance(source, ast.Attribute) or not isinstance(field, ast.Literal):
        raise compiler.unsupported("getField() of a computed value", call)
    # Compound values are flattened on ingest, so a field is the dotted attribute.
    return compiler.text(ast.Attribute(f"{source.name}.{field.value}", call.position))


def _literal_string(compiler: ExpressionCompiler, expr: ast.Expr, call: ast.Call) -> str:
    if not isinstance(expr, ast.Literal) or not isinstance(expr.value, str):
        raise compiler.error(f"{call.spelling}() takes a quoted pattern", expr)
    return expr.value


def _whole_number(compiler: ExpressionCompiler, expr: ast.Expr, call: ast.Call) -> int:
    if not isinstance(expr, ast.Literal) or not isinstance(expr.value, int) \
            or isinstance(expr.value, bool) or not 0 <= expr.value <= 20:
        raise compiler.error(f"{call.spelling}() precision takes a whole number 0-20", expr)
    return expr.value


_HANDLERS = {
    "lower": _case, "upper": _case, "concat": _concat, "substring": _substring,
    "length": _length, "numeric": _numeric, "string": _string, "boolean": _boolean,
    "round": _round, "pow": _power, "mod": _mod, "if": _if, "capture": _capture,
    "aparse": _aparse, "eventtype": _event_type, "getfield": _get_field,
}
