"""The NRQL syntax tree. Every node remembers where in the query it started."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    position: int


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int | float | bool | None
    position: int


@dataclass(frozen=True, slots=True)
class Star:
    position: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; `where` holds `filter(count(*), WHERE ...)`-style conditions."""

    name: str                      # lower-cased
    args: tuple[Expr, ...]
    position: int
    named: tuple[tuple[str, Expr], ...] = ()
    where: Expr | None = None
    steps: tuple[tuple[Expr, str | None], ...] = ()   # funnel(x, WHERE .. AS 'a', ...)
    spelling: str = ""             # as written, for result keys such as `uniqueCount`


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic, comparison or logic: op is one of + - * / = != < <= > >= and or."""

    op: str
    left: Expr
    right: Expr
    position: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    position: int


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Expr
    position: int


@dataclass(frozen=True, slots=True)
class InList:
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool
    position: int


@dataclass(frozen=True, slots=True)
class Like:
    operand: Expr
    pattern: Expr
    negated: bool
    regex: bool                    # RLIKE
    position: int


@dataclass(frozen=True, slots=True)
class IsNull:
    operand: Expr
    negated: bool
    position: int


@dataclass(frozen=True, slots=True)
class IsBoolean:
    operand: Expr
    value: bool
    negated: bool
    position: int


@dataclass(frozen=True, slots=True)
class InQuery:
    """`attr IN (FROM ... SELECT uniques(x))`: membership in a subquery's values."""

    operand: Expr
    query: Query
    negated: bool
    position: int


@dataclass(frozen=True, slots=True)
class Cases:
    """`FACET CASES (WHERE c AS 'label', ...) [OR attr]`: the first matching case names a row."""

    cases: tuple[tuple[Expr, str | None], ...]
    otherwise: Expr | None
    position: int


Expr = (Attribute | Literal | Star | Call | Binary | Not | Negate | InList | Like | IsNull
        | IsBoolean | InQuery | Cases)


@dataclass(frozen=True, slots=True)
class SelectItem:
    expr: Expr
    alias: str | None
    position: int
    text: str = ""                 # the item as written, the result key of an expression


@dataclass(frozen=True, slots=True)
class RelativeTime:
    """`n unit ago`, kept as milliseconds before now."""

    milliseconds: int
    position: int


@dataclass(frozen=True, slots=True)
class AbsoluteTime:
    epoch_ms: int
    position: int
    text: str | None = None        # the date string as written, when it was one


TimePoint = Union[RelativeTime, AbsoluteTime, "NamedTime"]


@dataclass(slots=True)
class Query:
    select: list[SelectItem]
    event_types: list[str]
    where: Expr | None = None
    facets: list[SelectItem] = field(default_factory=list)
    since: TimePoint | None = None
    until: TimePoint | None = None
    limit: int | None = None       # None: the default for the query shape
    limit_max: bool = False
    limit_asked: int | None = None  # a LIMIT above MAX_LIMIT as written (it was lowered)
    timeseries: int | str | None = None   # bucket in ms, "auto", "max"
    slide: int | str | None = None        # SLIDE BY step in ms, "auto", "max"
    compare_ms: int | None = None         # COMPARE WITH n unit ago
    offset: int = 0
    # (expr, descending); None: no ASC/DESC written (ascending rows, descending facets)
    order_by: list[tuple[Expr, bool | None]] = field(default_factory=list)
    timezone: str | None = None
    source: Query | None = None           # FROM (inner query): nested aggregation
    position: int = 0
    # Where each clause's keyword stands ("since", "until", "timeseries", "slide",
    # "compare"; "timezone": the zone string), so errors about a clause point at it.
    clauses: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NamedTime:
    """A calendar reference resolved against the clock when the query runs.

    `name` is `now`, `today`, `yesterday`, a weekday (`monday`), or `this <unit>` /
    `last <unit>`; `at` is an optional time of day (`SINCE monday AT '09:00'`).
    """

    name: str
    position: int
    at: str | None = None
