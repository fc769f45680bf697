"""Flatten nested JSON into dotted attribute names, the way New Relic Logs does."""

from __future__ import annotations

from typing import Any

import orjson

from trailguard.errors import IngestError
from trailguard.events import Scalar

# Limits on one event's shape. Real CloudTrail records and GuardDuty findings stay far
# below them (depth ~12, a few hundred attributes); past them a document is refused with
# a message naming the limit, never truncated. MAX_DEPTH also keeps every later step
# (orjson serialises at most 255 levels) safe.
MAX_DEPTH = 100
MAX_ATTRIBUTES = 10_000
MAX_NAME_CHARS = 1_024
# Integers from here on (either sign) are kept as their digits: no column type holds
# them exactly.
_WIDE = 2**63

try:
    # The common case in C (setup.py builds it where a compiler is found); it hands any
    # document it does not fully handle back to the walk below.
    from trailguard.ingest._cflatten import flatten_plain as _flatten_plain
except ImportError:
    _flatten_plain = None


def flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Scalar]:
    """Return `document` as flat attributes, or raise `IngestError` past a limit.

    Objects become dotted names (`detail.service.serviceName`). Arrays keep their
    raw JSON under their own name and each element under its index
    (`resources.0.ARN`), so both `resources LIKE '%bucket%'` and exact element
    queries work. JSON nulls are left out, as New Relic does. The walk recurses at
    most MAX_DEPTH levels, so no nesting can exhaust Python's stack.
    """
    if _flatten_plain is not None and not prefix:
        plain = _flatten_plain(document, orjson.dumps, MAX_DEPTH, MAX_ATTRIBUTES, MAX_NAME_CHARS)
        if plain is not None:
            return plain
    return flatten_in_python(document, prefix)


def flatten_in_python(document: dict[str, Any], prefix: str = "") -> dict[str, Scalar]:
    """`flatten` without the C fast path (which must give the same results)."""
    flat: dict[str, Scalar] = {}
    _walk(flat, document, prefix, 0)
    return flat


def _walk(flat: dict[str, Scalar], value: Any, name: str, depth: int) -> None:
    # The hot path of ingest (every attribute of every event passes here), so the
    # common cases (ASCII strings, 64-bit numbers, booleans) are handled inline.
    if depth >= MAX_DEPTH:
        raise IngestError(f"{_where(name)} nests deeper than the limit of {MAX_DEPTH} levels")
    prefix = f"{name}." if name else ""
    if isinstance(value, dict):
        items: Any = value.items()
    else:
        if name:
            try:
                _add(flat, name, orjson.dumps(value).decode())
            except orjson.JSONEncodeError as exc:
                raise IngestError(f"{_where(name)} cannot be kept as JSON: {exc}") from exc
        items = enumerate(value)
    for key, child in items:
        if type(key) is str:
            if not key.isascii():
                _check_unicode(key, f"{name}.{key}")
            child_name = prefix + key
        else:
            child_name = f"{prefix}{key}"
        kind = type(child)
        if kind is dict or kind is list:
            _walk(flat, child, child_name, depth + 1)
        elif child is None:
            continue  # JSON nulls are left out, as New Relic does
        elif (0 < len(child_name) <= MAX_NAME_CHARS and len(flat) < MAX_ATTRIBUTES
              and (kind is bool or kind is float
                   or (kind is str and child.isascii())
                   or (kind is int and -_WIDE < child < _WIDE))):
            flat[child_name] = child
        elif isinstance(child, dict | list):  # subclasses, from callers other than JSON
            _walk(flat, child, child_name, depth + 1)
        elif child_name:
            # Limitation: a scalar under a top-level "" key has no attribute name; it is
            # kept in `message` only.
            _add(flat, child_name, child)


def _add(flat: dict[str, Scalar], name: str, value: Scalar) -> None:
    # Names need no Unicode check of their own: every key was checked in `_walk`.
    if len(name) > MAX_NAME_CHARS:
        raise IngestError(f"attribute name {name[:60]!r}... is {len(name)} characters; "
                          f"the limit is {MAX_NAME_CHARS}")
    if type(value) is str:
        if not value.isascii():
            _check_unicode(value, name)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _WIDE:
        # Beyond 64 bits no column type holds it exactly; keep the digits.
        value = str(value)
    flat[name] = value
    if len(flat) > MAX_ATTRIBUTES:
        raise IngestError(f"event has more than {MAX_ATTRIBUTES} attributes, the limit "
                          "per event (arrays count one attribute per element)")


def _check_unicode(text: str, name: str) -> None:
    """Refuse lone UTF-16 surrogates (`"\\ud800"` in JSON): no store can keep them."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise IngestError(f"{_where(name)} holds {exc.object[exc.start:exc.end]!r}, a lone "
                          "UTF-16 surrogate escape, which is not valid Unicode") from exc


def _where(name: str) -> str:
    return f"attribute {name[:200]!r}" if name else "the document"
