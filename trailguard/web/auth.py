"""Key checks for receivers and the API, in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

API_KEY_HEADERS = ("x-api-key", "api-key")


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


def api_key_refusal(request: Request, api_key: str) -> Response | None:
    """None when the request carries the API key; else the 401 (missing) or 403 answer."""
    presented = presented_key(request.headers, API_KEY_HEADERS)
    if key_matches(presented, api_key):
        return None
    status = 401 if not presented else 403
    return JSONResponse({"error": "missing X-Api-Key header" if status == 401
                         else "X-Api-Key rejected"}, status_code=status)
