"""Flatten nested JSON into dotted attribute names, the way New Relic Logs does."""

from __future__ import annotations

from typing import Any

import orjson

from trailguard.events import Scalar


def flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Scalar]:
    """Return `document` as flat attributes.

    Objects become dotted names (`detail.service.serviceName`). Arrays keep their
    raw JSON under their own name and each element under its index
    (`resources.0.ARN`), so both `resources LIKE '%bucket%'` and exact element
    queries work. JSON nulls are left out, as New Relic does.
    """
    flat: dict[str, Scalar] = {}
    _flatten_into(flat, document, prefix)
    return flat


def _flatten_into(flat: dict[str, Scalar], value: Any, name: str) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _flatten_into(flat, child, f"{name}.{key}" if name else str(key))
        return

    if isinstance(value, list):
        if name:
            flat[name] = orjson.dumps(value).decode()
        for index, child in enumerate(value):
            _flatten_into(flat, child, f"{name}.{index}" if name else str(index))
        return

    if value is None or not name:
        return
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        # Beyond 64 bits no column type holds it exactly; keep the digits.
        value = str(value)
    flat[name] = value
