"""Structured log lines: one event per line, whatever a request puts in a value."""

from __future__ import annotations

import logging

import pytest

from trailguard.logs import KeyValueFormatter


def line_for(value: str) -> str:
    record = logging.LogRecord("trailguard.test", logging.WARNING, __file__, 1, "refused",
                               None, None)
    record.fields = {"request_id": value}
    return KeyValueFormatter().format(record)


@pytest.mark.parametrize(("value", "written"), [
    ("plain", "request_id=plain"),
    ("two words", 'request_id="two words"'),
    ("a\nts=forged", 'request_id="a\\nts=forged"'),
    ("a\rts=forged", 'request_id="a\\u000dts=forged"'),
    ("a\u2028ts=forged", 'request_id="a\\u2028ts=forged"'),
    ("bell\x07", 'request_id="bell\\u0007"'),
    ('quote" back\\', 'request_id="quote\\" back\\\\"'),
])
def test_a_value_cannot_break_or_forge_a_log_line(value: str, written: str) -> None:
    line = line_for(value)

    assert line.endswith(written)
    assert len(line.splitlines()) == 1
