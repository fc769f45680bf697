"""The C split of hot attributes builds exactly the rows the Python loop builds."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailguard.events import LOG, Event
from trailguard.generate import generate_cloudtrail, generate_findings
from trailguard.ingest.documents import cloudtrail_event, log_event
from trailguard.store import arrow_rows
from trailguard.store.arrow_rows import events_to_table

T0 = 1_700_000_000_000

needs_c = pytest.mark.skipif(arrow_rows._split_hot is None,
                             reason="the C split is not built (no compiler at install)")


def both_ways(events: list[Event], monkeypatch: pytest.MonkeyPatch):
    native = events_to_table(events)
    with monkeypatch.context() as python_only:
        python_only.setattr(arrow_rows, "_split_hot", None)
        plain = events_to_table(events)
    return native, plain


# Values of every kind a hot column may be offered, around the 2**53 edge.
_values = (st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=5)
           | st.integers(min_value=-2**54, max_value=2**54)
           | st.sampled_from([2**53, 2**53 + 1, -2**53, -2**53 - 1, 0]))
_names = st.sampled_from(["detail.severity", "detail.service.count", "eventName", "message",
                          "detail.type", "other", "another.name"])


@needs_c
@settings(max_examples=300)
@given(st.lists(st.dictionaries(_names, _values, max_size=6), min_size=1, max_size=5))
def test_any_attributes_split_as_in_python(rows):
    events = [Event(LOG, T0 + n, {k: v for k, v in row.items() if v is not None}, f"k{n}")
              for n, row in enumerate(rows)]
    with pytest.MonkeyPatch.context() as monkeypatch:
        native, plain = both_ways(events, monkeypatch)

    assert native.equals(plain)


@needs_c
def test_generated_findings_and_cloudtrail_split_as_in_python(monkeypatch):
    findings = generate_findings(5, T0, T0 + 3_600_000, 100)
    trail = generate_cloudtrail(5, T0, T0 + 3_600_000, 400)
    events = [log_event(orjson.loads(orjson.dumps(f)), T0) for f in findings]
    events += [cloudtrail_event(record) for record in trail]

    native, plain = both_ways(events, monkeypatch)

    assert native.equals(plain)
    assert native.column("a_eventname").null_count < native.num_rows  # columns were filled


@needs_c
def test_the_c_split_refuses_a_malformed_slot_table():
    with pytest.raises(TypeError, match="slot"):
        arrow_rows._split_hot({"eventName": "x"}, {"eventName": ("not a list", False)}, 0)
    with pytest.raises(IndexError, match="row"):
        arrow_rows._split_hot({"eventName": "x"}, {"eventName": ([None], False)}, 3)
