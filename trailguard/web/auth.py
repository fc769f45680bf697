"""Key checks for receivers and the API, in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping


def presented_key(headers: Mapping[str, str], names: Iterable[str]) -> str | None:
    """The first key found under any of the header `names`."""
    for name in names:
        value = headers.get(name)
        if value:
            return value
    return None


def key_matches(presented: str | None, expected: str) -> bool:
    """True when `presented` equals `expected`; the comparison time does not leak either."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
