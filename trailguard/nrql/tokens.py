"""NRQL text -> tokens, each with the character position it starts at."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from trailguard.errors import NrqlError


class Kind(Enum):
    NAME = "name"            # keyword or attribute name; keywords are matched case-insensitively
    QUOTED_NAME = "quoted"   # `backtick quoted` attribute name
    STRING = "string"
    REGEX = "regex"          # r'...'
    NUMBER = "number"
    VARIABLE = "variable"    # {{dashboard_variable}}
    SYMBOL = "symbol"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str        # the value: unquoted for strings and names
    position: int    # offset of the token's first character in the query

    def is_word(self, *words: str) -> bool:
        """True when this is a bare name equal (ignoring case) to one of `words`."""
        return self.kind is Kind.NAME and self.text.lower() in words

    def describe(self) -> str:
        if self.kind is Kind.END:
            return "end of query"
        if self.kind is Kind.STRING:
            return f"string '{self.text}'"
        if self.kind is Kind.VARIABLE:
            return f"'{{{{{self.text}}}}}'"
        return f"'{self.text}'"


_NAME = re.compile(r"[A-Za-z_$@][A-Za-z0-9_.$@]*")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SYMBOLS = ("!=", "<>", "<=", ">=", "=", "<", ">", "(", ")", ",", "*", "+", "-", "/", "%",
            "[", "]", ":")
_DIGITS = "0123456789"
_DIGITS_SET = set(_DIGITS)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


# The longest of the 5,772 New Relic quickstart queries has 1,469 tokens. Compiling costs
# about 0.3 ms per term, so an unbounded query (the API takes 1 MiB) could hold a worker
# for half a minute; past this many tokens a query is refused.
MAX_TOKENS = 10_000


def tokenize(query: str) -> list[Token]:
    """Split `query` into tokens; raises `NrqlError` naming the offending position."""
    tokens: list[Token] = []
    position = 0
    length = len(query)
    while position < length:
        char = query[position]
        if char.isspace():
            position += 1
            continue
        if query.startswith(("--", "//"), position):
            newline = query.find("\n", position)
            position = length if newline < 0 else newline + 1
            continue
        if query.startswith("/*", position):
            close = query.find("*/", position + 2)
            if close < 0:
                raise NrqlError("unterminated /* comment", query, position)
            position = close + 2
            continue
        token, position = _next_token(query, position)
        tokens.append(token)
        if len(tokens) > MAX_TOKENS:
            raise NrqlError(f"the query is longer than {MAX_TOKENS:,} tokens (words, names, "
                            "values and symbols), the most trailguard compiles", query,
                            token.position)
    tokens.append(Token(Kind.END, "", length))
    return tokens


def _next_token(query: str, position: int) -> tuple[Token, int]:
    char = query[position]
    if char in "rR" and query[position + 1:position + 2] in ("'", '"'):
        text, end = _read_quoted(query, position + 1, raw=True)
        return Token(Kind.REGEX, text, position), end
    if char in "'\"":
        text, end = _read_quoted(query, position, raw=False)
        return Token(Kind.STRING, text, position), end
    if char == "`":
        close = query.find("`", position + 1)
        if close < 0:
            raise NrqlError("unterminated `backtick` name", query, position)
        return Token(Kind.QUOTED_NAME, query[position + 1:close], position), close + 1
    if query.startswith("{{", position):
        close = query.find("}}", position + 2)
        if close < 0:
            raise NrqlError("unterminated {{variable}}", query, position)
        return Token(Kind.VARIABLE, query[position + 2:close].strip(), position), close + 2
    # ASCII digits only: str.isdigit() also accepts '²', which no number pattern matches.
    if char in _DIGITS or (char == "." and query[position + 1:position + 2] in _DIGITS_SET):
        match = _NUMBER.match(query, position)
        assert match is not None
        return Token(Kind.NUMBER, match.group(), position), match.end()
    match = _NAME.match(query, position)
    if match:
        return Token(Kind.NAME, match.group(), position), match.end()
    for symbol in _SYMBOLS:
        if query.startswith(symbol, position):
            return Token(Kind.SYMBOL, symbol, position), position + len(symbol)
    raise NrqlError(f"unexpected character {char!r}", query, position)


def _read_quoted(query: str, start: int, raw: bool) -> tuple[str, int]:
    quote = query[start]
    pieces: list[str] = []
    position = start + 1
    while position < len(query):
        char = query[position]
        if char == "\\" and position + 1 < len(query):
            following = query[position + 1]
            if raw:
                pieces.append(following if following == quote else char + following)
            else:
                pieces.append(_ESCAPES.get(following, following))
            position += 2
            continue
        if char == quote:
            return "".join(pieces), position + 1
        pieces.append(char)
        position += 1
    raise NrqlError("unterminated string", query, start)
