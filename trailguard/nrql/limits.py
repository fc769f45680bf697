"""How deep a query may nest, and chains built shallow, so that neither the recursive
parser nor the compiler (and sqlglot under it) can run out of Python stack.

Both limits are far above real queries: the deepest of the 5,772 New Relic quickstart
queries has 6 levels of parentheses and, with `+` chains built balanced, an expression
tree 16 levels deep. Each level costs the compiler and sqlglot up to ~12 Python frames
(of the default 1,000), the parser up to 12.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterator, Sequence

from trailguard.errors import NrqlError
from trailguard.nrql import ast
from trailguard.nrql.tokens import Token

# Parentheses, function calls, cases(), subqueries, NOT and minus signs inside one another.
MAX_NESTING = 40
# Operators and functions inside one another once parsed (a chain of `-` counts each).
MAX_DEPTH = 50

NESTING_REASON = (f"the query nests too deeply (at most {MAX_NESTING} levels of parentheses, "
                  "function calls, CASES, subqueries, NOT or minus signs)")
DEPTH_REASON = (f"the query is too deep (at most {MAX_DEPTH} operators, functions and "
                "subqueries inside one another; group long chains of - or / in parentheses)")

# Operators whose chains may be regrouped: (a AND b) AND c is a AND (b AND c).
ASSOCIATIVE = frozenset({"and", "or", "+", "*"})


def balanced(op: str, operands: Sequence[ast.Expr], positions: Sequence[int]) -> ast.Expr:
    """`operands[0] op operands[1] op ...` as a tree log2(n) deep instead of n deep.

    `positions[i]` is where the operator between operands i and i+1 stands. Chains of
    up to three keep the left-to-right shape a left-associative parser gives them.
    """
    if len(operands) == 1:
        return operands[0]
    middle = (len(operands) + 1) // 2
    left = balanced(op, operands[:middle], positions[:middle - 1])
    right = balanced(op, operands[middle:], positions[middle:])
    return ast.Binary(op, left, right, positions[middle - 1])


def check_depth(query: ast.Query, source: str, tokens: Sequence[Token]) -> None:
    """Raise `NrqlError` at the first node nested deeper than `MAX_DEPTH`.

    Iterative on purpose: a recursive walk would fail on the very trees it guards against.
    """
    stack: list[tuple[object, int]] = [(query, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _error_at(DEPTH_REASON, source, tokens, getattr(node, "position", 0))
        stack.extend((child, depth + 1) for child in _children(node))


def _children(node: object) -> Iterator[object]:
    """The syntax-tree nodes directly below `node` (through lists and tuples)."""
    pending = [getattr(node, field.name) for field in dataclasses.fields(node)]  # type: ignore
    while pending:
        value = pending.pop()
        if isinstance(value, list | tuple):
            pending.extend(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            yield value


def _error_at(reason: str, source: str, tokens: Sequence[Token], position: int) -> NrqlError:
    """An NrqlError naming the token that starts at `position` (or the one before it)."""
    index = max(0, bisect.bisect_right([token.position for token in tokens], position) - 1)
    token = tokens[index]
    return NrqlError(f"{reason}, found {token.describe()}", source, token.position)
