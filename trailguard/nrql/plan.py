"""What the rows of a compiled statement mean, for `results.py` to shape them."""

from __future__ import annotations

from dataclasses import dataclass, field

from trailguard.nrql.attributes import Decode


@dataclass(slots=True)
class OutputColumn:
    """One key of each result row, read from the SQL column of the same index."""

    key: str
    decode: Decode
    part: str | int | None = None   # a piece of a compound value (percentiles, histogram)
    empty: object = None            # the value shown for an empty TIMESERIES bucket


@dataclass(slots=True)
class Plan:
    """What the rows mean; see `results.build_results`."""

    shape: str                       # "events" | "star" | "aggregate"
    outputs: list[OutputColumn]
    facet_keys: list[str] = field(default_factory=list)
    begin_ms: int = 0
    end_ms: int = 0
    bucket_ms: int | None = None     # TIMESERIES width
    step_ms: int | None = None       # SLIDE BY step (buckets overlap)
    compare_ms: int | None = None    # COMPARE WITH shift
    event_types: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)   # metadata.messages: notes for the user
